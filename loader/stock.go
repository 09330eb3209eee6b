package loader

import (
	"errors"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/internal/kallsyms"
	"github.com/cgpeak/cgpeak/internal/kbtf"
)

// ProbeStocks says whether summary mode can read the per-CPU stocks here,
// by loading a program that reads them (not attaching it): the kernel's
// struct memcg_stock_pcp must match one of the layouts cgpeak.bpf.c knows
// (CO-RE), memcg_stock and __per_cpu_offset must be in kallsyms, and the
// verifier must take the program.
func ProbeStocks(kernelTypes *btf.Spec) Answer {
	k := kernelInfo{types: kernelTypes}
	syms, err := kallsyms.Load()
	if err == nil || errors.Is(err, kallsyms.ErrHidden) {
		k.syms = syms
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return Answer{Known: true, Detail: "raising RLIMIT_MEMLOCK: " + err.Error()}
	}
	var refill function
	for _, f := range functions {
		if f.name == "refill_stock" {
			refill = f
		}
	}
	for i := range backends {
		b := &backends[i]
		if !b.probe(k).OK || b.needsSyms && k.syms == nil {
			continue
		}
		sym := b.resolve(k, refill)
		if sym == "" {
			return Answer{Known: true, Detail: "no refill_stock to trace in this kernel"}
		}
		spec, err := bpf.LoadStocks()
		if err != nil {
			return Answer{Detail: "reading the embedded BPF object: " + err.Error()}
		}
		prog := b.programs(refill)[0]
		for name := range spec.Programs {
			if name != prog {
				delete(spec.Programs, name)
			}
		}
		b.prepare(spec.Programs[prog], sym)
		if err := spec.Variables["ncpus"].Set(uint32(1)); err != nil {
			return Answer{Detail: "configuring the BPF object: " + err.Error()}
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, kbtf.Options(kernelTypes))
		if err != nil {
			return Answer{Known: true, Detail: "the program that reads them does not load: " + err.Error()}
		}
		coll.Close()
		return Answer{OK: true, Known: true, Detail: "struct memcg_stock_pcp matches a known layout (CO-RE), memcg_stock in kallsyms, the program loads"}
	}
	return Answer{Detail: "no backend to load the program that reads them with"}
}

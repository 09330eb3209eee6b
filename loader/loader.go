// Package loader loads cgpeak's charge tracer into the kernel, attaches it
// with the best backend the kernel allows (fentry/fexit, else
// kprobe/kretprobe), and reads its events.
package loader

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
)

// Backends.
const (
	Fentry = "fentry"
	Kprobe = "kprobe"
	Auto   = "auto"
)

// function is one traced kernel function and its programs per backend.
type function struct {
	name    string   // what the trace calls it
	symbols []string // kernel names, newest first
	fentry  []string // programs for the fentry backend
	kprobe  string
	kret    string
	lose    string // what the trace cannot see without it
}

var functions = []function{
	{"try_charge_memcg", []string{"try_charge_memcg", "try_charge"}, []string{"fexit_try_charge"}, "kprobe_try_charge", "kretprobe_try_charge",
		"charge requests: pages served from the per-CPU stock are invisible"},
	{"page_counter_try_charge", []string{"page_counter_try_charge"}, []string{"fexit_pc_try_charge"}, "kprobe_pc_try_charge", "kretprobe_pc_try_charge",
		"batched counter charges: the counter's usage and watermark"},
	{"page_counter_charge", []string{"page_counter_charge"}, []string{"fexit_pc_charge"}, "kprobe_pc_charge", "kretprobe_pc_charge",
		"forced charges past the limit"},
	{"page_counter_uncharge", []string{"page_counter_uncharge"}, []string{"fexit_pc_uncharge"}, "kprobe_pc_uncharge", "kretprobe_pc_uncharge",
		"uncharges: frees and stock drains"},
	{"refill_stock", []string{"refill_stock"}, []string{"fentry_refill_stock"}, "kprobe_refill_stock", "",
		"stock refills: the pre-charged surplus of each batch"},
	{"drain_stock", []string{"drain_stock"}, []string{"fentry_drain_stock", "fexit_drain_stock"}, "kprobe_drain_stock", "kretprobe_drain_stock",
		"stock drains: a drain looks like a free"},
}

// Options for Open.
type Options struct {
	CgroupID  uint64 // inode of the memcg's directory in the memory hierarchy
	Backend   string // Auto, Fentry or Kprobe
	KernelBTF string // BTF file for kernels without /sys/kernel/btf/vmlinux
	// Summary: requests served from a CPU's stock are kept in the kernel
	// (Tracer.Summary) instead of emitted: a few events per batch, not one
	// per page. No kernel stacks are taken.
	Summary bool
	// Descendants: also trace the cgroups below the target; the counter
	// figures stay the target's own.
	Descendants bool
	// Batch is MEMCG_CHARGE_BATCH on this kernel (summary mode needs it).
	Batch uint64
	// PerRequest: in summary mode, follow the stocks by probing every
	// charge request even where they can be read from the kernel (tests of
	// the fallback).
	PerRequest bool
	// WalkEveryStack: in per-charge mode, walk the kernel stack of every
	// request instead of once per call path (tests compare the two).
	WalkEveryStack bool
}

// Function reports how one kernel function is traced.
type Function struct {
	Name    string `json:"name"`
	Symbol  string `json:"symbol,omitempty"`
	Missing string `json:"missing,omitempty"` // why it is not traced and what the trace cannot see
	// Unneeded: present but left alone in this mode, and why.
	Unneeded string `json:"unneeded,omitempty"`
}

// Tracer is an attached charge tracer.
type Tracer struct {
	Backend   string
	Functions []Function
	// StocksRead: summary mode reads the per-CPU stocks from the kernel at
	// counter and stock calls, so no program runs on a request the stock
	// serves. Otherwise StocksNote says why not (the summary then probes
	// every request).
	StocksRead bool
	StocksNote string
	coll       *ebpf.Collection
	links      []link.Link
	rd         *ringbuf.Reader
	kinds      map[uint64][2]string // stack key -> kind, caller
	ksyms      *ksyms
}

// Event is one traced call.
type Event struct {
	analysis.Event
	Fn      string // the traced function
	Counter string // "memory", or "memsw" (v1) / "swap" (v2) for the other counter of the memcg
	Gfp     uint32 // charge requests: the gfp mask
	Stack   uint64 // charge requests: key of the kernel stack (Tracer.Kind), 0 if none
}

var fnNames = map[uint8]string{1: "try_charge_memcg", 2: "page_counter_try_charge", 3: "page_counter_charge", 4: "page_counter_uncharge", 5: "refill_stock", 6: "drain_stock"}

// Open loads and attaches the tracer for one memcg. Nothing stays loaded or
// attached when it fails.
func Open(o Options) (t *Tracer, err error) {
	if o.CgroupID == 0 {
		return nil, errors.New("no cgroup to trace")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK: %w (run as root)", err)
	}
	kernelTypes, err := loadBTF(o.KernelBTF)
	if err != nil {
		return nil, err
	}
	backend := o.Backend
	if backend == "" || backend == Auto {
		backend = ProbeBackend(kernelTypes)
		if backend == "" {
			return nil, errors.New("this kernel allows neither fentry nor kprobe programs: see cgpeak probe")
		}
	}
	if backend != Fentry && backend != Kprobe {
		return nil, fmt.Errorf("unknown backend %q: use auto, fentry or kprobe", backend)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return nil, fmt.Errorf("this kernel has no BPF ring buffer (Linux 5.8+), which charge tracing needs: %w", err)
	}
	syms, err := kallsyms()
	if err != nil && backend == Kprobe {
		return nil, err
	}
	stocks, note := o.Summary && !o.Descendants && !o.PerRequest, ""
	if o.Descendants && o.Summary {
		note = "descendants are traced"
	} else if o.PerRequest {
		note = "asked to probe every request"
	}
	t, err = open(o, backend, kernelTypes, syms, stocks)
	if err != nil && stocks {
		// The stocks cannot be located, or the kernel would not take the
		// programs that read them: probe every request instead.
		note = err.Error()
		t, err = open(o, backend, kernelTypes, syms, false)
	}
	if err != nil {
		return nil, err
	}
	t.StocksNote = note
	return t, nil
}

// open loads and attaches the programs once, reading the stocks or not.
func open(o Options, backend string, kernelTypes *btf.Spec, syms map[string]bool, stocks bool) (t *Tracer, err error) {
	spec, err := bpf.LoadCgpeak()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	if err := spec.Variables["target_cgid"].Set(o.CgroupID); err != nil {
		return nil, fmt.Errorf("configuring the BPF object: %w", err)
	}
	if o.Descendants {
		if err := spec.Variables["descendants"].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("configuring the BPF object: %w", err)
		}
	}
	if o.Summary {
		if err := spec.Variables["summary"].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("configuring the BPF object: %w", err)
		}
	}
	if o.WalkEveryStack {
		if err := spec.Variables["walk_every"].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("configuring the BPF object: %w", err)
		}
	}
	if stocks {
		if err := stockReading(spec, kernelTypes, o.Batch); err != nil {
			return nil, err
		}
	}
	t = &Tracer{Backend: backend, kinds: map[uint64][2]string{}, StocksRead: stocks}
	keep := map[string]bool{}
	attachTo := map[string]string{} // program -> symbol
	for _, f := range functions {
		sym := ""
		for _, s := range f.symbols {
			if backend == Fentry && hasFunc(kernelTypes, s) || backend == Kprobe && syms[s] {
				sym = s
				break
			}
		}
		if sym == "" {
			t.Functions = append(t.Functions, Function{Name: f.name, Missing: "not in this kernel (renamed or inlined): no " + f.lose})
			continue
		}
		if stocks && f.name == "try_charge_memcg" {
			t.Functions = append(t.Functions, Function{Name: f.name, Symbol: sym, Unneeded: "summary mode reads the per-CPU stocks instead of probing every request"})
			continue
		}
		t.Functions = append(t.Functions, Function{Name: f.name, Symbol: sym})
		progs := f.fentry
		if backend == Kprobe {
			progs = []string{f.kprobe}
			if f.kret != "" {
				progs = append(progs, f.kret)
			}
		}
		for _, p := range progs {
			keep[p] = true
			attachTo[p] = sym
			if backend == Fentry {
				spec.Programs[p].AttachTo = sym
			}
		}
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernelTypes}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the verifier rejected cgpeak's programs: %+v", ve)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("loading BPF programs: %w (needs root or CAP_BPF+CAP_PERFMON, and lockdown off for %s)", err, backend)
		}
		return nil, fmt.Errorf("loading BPF programs: %w", err)
	}
	t.coll = coll
	// A failed attach returns t nil before this runs: close the tracer made
	// here, not the result.
	defer func(made *Tracer) {
		if err != nil {
			made.Close()
			t = nil
		}
	}(t)
	for name, prog := range coll.Programs {
		var l link.Link
		switch {
		case backend == Fentry:
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		case strings.HasPrefix(name, "kretprobe_"):
			l, err = link.Kretprobe(attachTo[name], prog, nil)
		default:
			l, err = link.Kprobe(attachTo[name], prog, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("attaching %s to %s: %w", name, attachTo[name], err)
		}
		t.links = append(t.links, l)
	}
	if t.rd, err = ringbuf.NewReader(coll.Maps["events"]); err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return t, nil
}

// Missing lists what the trace cannot see on this kernel.
func (t *Tracer) Missing() []string {
	var m []string
	for _, f := range t.Functions {
		if f.Missing != "" {
			m = append(m, f.Name+": "+f.Missing)
		}
	}
	return m
}

// Read returns the next event; after Flush it returns ringbuf.ErrFlushed
// once the events already in the buffer are read.
//
// The programs wake the reader only once a batch has piled up, so Read polls
// on a short deadline too: events never wait long, however slowly they come.
func (t *Tracer) Read() (Event, error) {
	for {
		t.rd.SetDeadline(time.Now().Add(pollInterval))
		rec, err := t.rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return Event{}, err
		}
		return decode(rec.RawSample)
	}
}

const pollInterval = 50 * time.Millisecond

// Flush makes Read return what the buffer holds, then ringbuf.ErrFlushed:
// the end of a trace once the workload is gone.
func (t *Tracer) Flush() error { return t.rd.Flush() }

// Lost counts the events the kernel dropped because the ring buffer was full.
func (t *Tracer) Lost() (uint64, error) {
	var per []uint64
	if err := t.coll.Maps["lost"].Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("reading the lost-event counter: %w", err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// Missed counts the calls of traced functions whose program did not run:
// kprobes the kernel skipped (another probe was running on that CPU, or no
// kretprobe instance was free) and programs skipped to avoid recursion. Each
// is an event the trace lacks, so the caller must treat it like a lost one.
// The counters exist from Linux 5.12 (programs) and 6.7 (kprobe links);
// older kernels report 0 for what they cannot count.
func (t *Tracer) Missed() (map[string]uint64, error) {
	m := map[string]uint64{}
	for name, p := range t.coll.Programs {
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("reading the statistics of %s: %w", name, err)
		}
		if st.RecursionMisses > 0 {
			m[name] += st.RecursionMisses
		}
	}
	for _, l := range t.links {
		info, err := l.Info()
		if err != nil {
			continue
		}
		if pe := info.PerfEvent(); pe != nil {
			if kp := pe.Kprobe(); kp != nil && kp.Missed > 0 {
				m[kp.Function] += kp.Missed
			}
		}
	}
	return m, nil
}

// Cost sums what the kernel counted of the programs' own runs: how many
// and their time in the kernel. Both stay 0 unless kernel.bpf_stats_enabled
// is set (counting costs two clock reads a run, so the kernel leaves it
// off); the trampolines' and kprobes' own entry and exit are not included.
func (t *Tracer) Cost() (runs uint64, spent time.Duration, err error) {
	for name, p := range t.coll.Programs {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, fmt.Errorf("reading the statistics of %s: %w", name, err)
		}
		runs += st.RunCount
		spent += st.Runtime
	}
	return runs, spent, nil
}

// Summary reads what the programs kept per CPU in summary mode.
func (t *Tracer) Summary() (analysis.Summary, error) {
	var per []bpf.CgpeakCpuState
	if err := t.coll.Maps["states"].Lookup(uint32(0), &per); err != nil {
		return analysis.Summary{}, fmt.Errorf("reading the per-CPU summary: %w", err)
	}
	s := analysis.Summary{CPUs: map[int]analysis.SummaryCPU{}}
	for cpu, st := range per {
		if st.Requests == 0 && st.Wm == 0 && st.MaxReal == 0 && st.Pending == 0 {
			continue
		}
		s.CPUs[cpu] = analysis.SummaryCPU{FromStock: st.Requests, FromStockPages: st.Pages, Pending: st.Pending,
			MaxReal: st.MaxReal, MaxRealTime: st.MaxRealTs, Watermark: st.Wm, WatermarkReal: st.WmReal, WatermarkTime: st.WmTs}
	}
	return s, nil
}

// Close detaches and unloads everything.
func (t *Tracer) Close() error {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
	if t.rd != nil {
		t.rd.Close()
	}
	if t.coll != nil {
		t.coll.Close()
	}
	return nil
}

func loadBTF(path string) (*btf.Spec, error) {
	if path != "" {
		s, err := btf.LoadSpec(path)
		if err != nil {
			return nil, fmt.Errorf("reading --kernel-btf %s: %w", path, err)
		}
		return s, nil
	}
	s, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("reading kernel BTF: %w (this kernel has no /sys/kernel/btf/vmlinux: pass --kernel-btf FILE)", err)
	}
	return s, nil
}

func hasFunc(s *btf.Spec, name string) bool {
	var fn *btf.Func
	return s != nil && s.TypeByName(name, &fn) == nil
}

// kallsyms lists the kernel's text symbols; a static function that was
// inlined everywhere has none.
func kallsyms() (map[string]bool, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	defer f.Close()
	syms := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && (fs[1] == "t" || fs[1] == "T") {
			syms[fs[2]] = true
		}
	}
	return syms, sc.Err()
}

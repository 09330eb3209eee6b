package loader

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/cgpeak/cgpeak/internal/kallsyms"
	"github.com/cgpeak/cgpeak/internal/kernel"
)

// Backends.
const (
	Fentry = "fentry"
	Kprobe = "kprobe"
	Auto   = "auto"
)

// kernelInfo is what backends resolve functions and probe against.
type kernelInfo struct {
	types *btf.Spec       // kernel BTF
	syms  *kallsyms.Table // nil when kallsyms could not be read
}

// backend is one way of running the tracer's programs on the kernel's
// functions. Open tries them in the order of backends for Auto; a new kind
// (another attach type, or another object of programs) is one more entry.
type backend struct {
	name string
	// probe says whether the kernel runs this backend's programs at all.
	probe func(k kernelInfo) Answer
	// resolve finds the kernel's name for a traced function (tried newest
	// first), "" if this backend cannot reach any of them.
	resolve func(k kernelInfo, f function) string
	// programs names the programs that trace f.
	programs func(f function) []string
	// prepare sets what a program needs before loading.
	prepare func(p *ebpf.ProgramSpec, symbol string)
	// attach runs a loaded program on the kernel function.
	attach func(name string, p *ebpf.Program, symbol string) (link.Link, error)
	// needsSyms: the backend cannot work without kallsyms.
	needsSyms bool
}

var backends = []backend{
	{
		name:  Fentry,
		probe: func(k kernelInfo) Answer { return ProbeFentry(k.types) },
		resolve: func(k kernelInfo, f function) string {
			for _, s := range f.symbols {
				if hasFunc(k.types, s) {
					return s
				}
			}
			return ""
		},
		programs: func(f function) []string { return f.fentry },
		prepare:  func(p *ebpf.ProgramSpec, symbol string) { p.AttachTo = symbol },
		attach: func(_ string, p *ebpf.Program, _ string) (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: p})
		},
	},
	{
		name:  Kprobe,
		probe: func(kernelInfo) Answer { return ProbeKprobe() },
		resolve: func(k kernelInfo, f function) string {
			for _, s := range f.symbols {
				if k.syms.Has(s) {
					return s
				}
			}
			return ""
		},
		programs: func(f function) []string {
			if f.kret == "" {
				return []string{f.kprobe}
			}
			return []string{f.kprobe, f.kret}
		},
		prepare: func(*ebpf.ProgramSpec, string) {},
		attach: func(name string, p *ebpf.Program, symbol string) (link.Link, error) {
			if strings.HasPrefix(name, "kretprobe_") {
				return link.Kretprobe(symbol, p, nil)
			}
			return link.Kprobe(symbol, p, nil)
		},
		needsSyms: true,
	},
}

func findBackend(name string) *backend {
	for i := range backends {
		if backends[i].name == name {
			return &backends[i]
		}
	}
	return nil
}

// Backends names the backends Open accepts besides Auto, in the order Auto
// tries them (the tracepoint backend, an object of its own, last).
func Backends() []string {
	var n []string
	for _, b := range backends {
		n = append(n, b.name)
	}
	return append(n, Tracepoint)
}

func hasFunc(s *btf.Spec, name string) bool {
	var fn *btf.Func
	return s != nil && s.TypeByName(name, &fn) == nil
}

// autoOrder is the order Auto tries the backends in (indexes into
// backends) on a kernel with this preemption model. fentry costs less, and
// on kernels that do not preempt inside the kernel it misses nothing. On a
// preemptible kernel the trampoline runs fexit programs with preemption
// enabled and counts a program as running on its CPU from entry to exit: a
// task preempted there (by the tick, in the body or, with the body's
// preemption disabled, as soon as it is enabled again) makes every other
// task entering that program on that CPU a recursion, skipped, until it runs
// again; in the VMs a quarter to nearly half of the charge requests of four processes at
// once were lost that way on 7.3 (docs/tracer.md). A kprobe's program runs
// with preemption disabled from the probe to its end, so there kprobes go
// first.
func autoOrder(model, _ string) []int {
	var first, rest []int
	for i, b := range backends {
		if b.name == Kprobe && kernel.Preemptible(model) {
			first = append(first, i)
		} else {
			rest = append(rest, i)
		}
	}
	return append(first, rest...)
}

// autoWhy says why Auto picked b.
func autoWhy(b *backend, model, src string) string {
	if b == nil {
		return ""
	}
	switch {
	case model == "":
		return "auto: the preemption model could not be read; fentry first"
	case kernel.Preemptible(model):
		return fmt.Sprintf("auto: kprobe first, the kernel preempts (%s, %s): fentry programs lose calls to preemption", model, src)
	}
	return fmt.Sprintf("auto: fentry first, the kernel does not preempt in the kernel (%s, %s)", model, src)
}

package loader

import (
	"errors"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/cgpeak/cgpeak/internal/kbtf"
)

// Answer is a feature probe's result: supported, not, or inconclusive.
type Answer struct {
	OK     bool
	Known  bool   // false: the probe could not tell
	Detail string // why, in words
}

var (
	fentryOnce   sync.Once
	fentryAnswer Answer
)

// ProbeFentry loads and attaches a do-nothing fexit program on
// page_counter_uncharge, present in every kernel cgpeak supports. Cached for
// the life of the process.
func ProbeFentry(kernelTypes *btf.Spec) Answer {
	fentryOnce.Do(func() { fentryAnswer = probeFentry(kernelTypes) })
	return fentryAnswer
}

func probeFentry(kernelTypes *btf.Spec) Answer {
	if kernelTypes == nil {
		return Answer{Known: true, Detail: "no kernel BTF, which fentry needs"}
	}
	return probeProgram(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFExit, AttachTo: "page_counter_uncharge"}, kernelTypes,
		func(p *ebpf.Program) (link.Link, error) { return link.AttachTracing(link.TracingOptions{Program: p}) },
		"an fexit program", "fentry/fexit programs (EPERM before the verifier: lockdown, or a policy)", false)
}

// probeProgram loads a do-nothing program of spec's type and attaches it
// with attach. refused names what an EPERM refuses; attachKnown: a failure
// to attach answers the question (else it is inconclusive).
func probeProgram(spec *ebpf.ProgramSpec, kernelTypes *btf.Spec, attach func(*ebpf.Program) (link.Link, error), what, refused string, attachKnown bool) Answer {
	spec.License = "GPL"
	spec.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	prog, err := ebpf.NewProgramWithOptions(spec, kbtf.Options(kernelTypes).Programs)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return Answer{Known: true, Detail: "the kernel refuses " + refused}
		}
		return Answer{Known: errors.Is(err, ebpf.ErrNotSupported), Detail: "loading " + what + " failed: " + err.Error()}
	}
	defer prog.Close()
	l, err := attach(prog)
	if err != nil {
		return Answer{Known: attachKnown, Detail: "attaching " + what + " failed: " + err.Error()}
	}
	l.Close()
	return Answer{OK: true, Known: true, Detail: what + " loads and attaches"}
}

// ProbeKprobe reports whether the kernel offers kprobes.
func ProbeKprobe() Answer {
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err == nil {
		return Answer{OK: true, Known: true, Detail: "kprobe PMU present"}
	}
	for _, p := range []string{"/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return Answer{OK: true, Known: true, Detail: "tracefs kprobe_events present"}
		}
	}
	return Answer{Known: true, Detail: "no kprobe PMU and no kprobe_events: the kernel is built without CONFIG_KPROBES"}
}

// ProbeBackend picks the backend Open's Auto picks: the first of Backends
// that works here, else the memcg stat tracepoints, else "".
func ProbeBackend(kernelTypes *btf.Spec) string {
	for _, b := range backends {
		if b.probe(kernelInfo{types: kernelTypes}).OK {
			return b.name
		}
	}
	if ProbeTracepoint(kernelTypes).OK {
		return Tracepoint
	}
	return ""
}

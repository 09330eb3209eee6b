package loader

import (
	"errors"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
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
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFExit, AttachTo: "page_counter_uncharge", License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	}, ebpf.ProgramOptions{KernelTypes: kernelTypes})
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return Answer{Known: true, Detail: "the kernel refuses fentry/fexit programs (EPERM before the verifier: lockdown, or a policy)"}
		}
		return Answer{Known: errors.Is(err, ebpf.ErrNotSupported), Detail: "loading an fexit program failed: " + err.Error()}
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		return Answer{Known: false, Detail: "attaching an fexit program failed: " + err.Error()}
	}
	l.Close()
	return Answer{OK: true, Known: true, Detail: "an fexit program loads and attaches"}
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
// that works here, else "".
func ProbeBackend(kernelTypes *btf.Spec) string {
	for _, b := range backends {
		if b.probe(kernelInfo{types: kernelTypes}).OK {
			return b.name
		}
	}
	return ""
}

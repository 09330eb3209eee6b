package loader

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/trace"
)

// haveTaskRegs: the kernel lets tracing programs read a task's user
// registers (bpf_task_pt_regs, 5.15+), which the user call path cache keys
// on; without it every request's user stack is walked.
func haveTaskRegs() bool {
	for _, fn := range []asm.BuiltinFunc{asm.FnGetCurrentTaskBtf, asm.FnTaskPtRegs} {
		if features.HaveProgramHelper(ebpf.Kprobe, fn) != nil {
			return false
		}
	}
	return true
}

// UserStack returns a charge request's user stack by its key in the
// event, innermost first; truncated when the walk filled its buffer. ok is
// false when the stack is not stored (the map was full).
func (t *Tracer) UserStack(key uint64) (frames []trace.UserFrame, truncated, ok bool) {
	m := t.coll.Maps[bpf.ChargesMapUstacks]
	if m == nil || key == 0 {
		return nil, false, false
	}
	var b bpf.ChargesUstackBuf
	if m.Lookup(key, &b) != nil {
		return nil, false, false
	}
	for _, f := range b.Frames[:min(int(b.N), len(b.Frames))] {
		switch f.Status {
		case statusBuildID:
			frames = append(frames, trace.UserFrame{BuildID: hex.EncodeToString(f.BuildId[:]), Offset: f.Offset})
		case statusIP:
			if f.Offset == 0 { // the walk ended on a null frame pointer's return address
				return frames, false, true
			}
			frames = append(frames, trace.UserFrame{IP: f.Offset})
		default:
			return frames, false, true
		}
	}
	return frames, b.N >= uint64(len(b.Frames)), true
}

// The kernel's enum bpf_stack_build_id_status: a frame with a build ID and
// offset, or only its address.
const (
	statusBuildID = 1
	statusIP      = 2
)

// KernelFrames names a charge request's kernel stack by its key, innermost
// first from the charge function (the frames above it are the tracer's own
// trampoline): kallsyms names, 0x... where there is none.
func (t *Tracer) KernelFrames(key uint64) []string {
	var b bpf.ChargesStackBuf
	if m := t.coll.Maps["stacks"]; key == 0 || m == nil || m.Lookup(key, &b) != nil {
		return nil
	}
	var out []string
	for _, ip := range b.Ips {
		if ip == 0 {
			break
		}
		if n := t.syms.Names([]uint64{ip}); len(n) == 1 {
			out = append(out, n[0])
		} else {
			out = append(out, fmt.Sprintf("0x%x", ip))
		}
	}
	for i, f := range out {
		if strings.HasPrefix(f, "try_charge") {
			return out[i:]
		}
	}
	return out
}

// UserStackCounts is how the requests' user stacks were taken (each request
// once in Walked, Reused, Failed or NotUser).
type UserStackCounts struct {
	Walked, Reused, Failed, NotUser, Truncated uint64
}

// UserStacks sums the kernel's per-CPU counts; zero outside per-charge mode.
func (t *Tracer) UserStacks() (UserStackCounts, error) {
	var c UserStackCounts
	m := t.coll.Maps[bpf.ChargesMapUstackStats]
	if m == nil {
		return c, nil
	}
	for i, dst := range []*uint64{&c.Walked, &c.Reused, &c.Failed, &c.NotUser, &c.Truncated} {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("reading the user stack counts: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return c, nil
}

package loader

import (
	"bytes"
	"fmt"
	"unsafe"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
)

// The C enums, as bpf2go generated them, in the names traces use.
var (
	ops = map[uint8]analysis.Op{
		uint8(bpf.ChargesOpOP_CHARGE):           analysis.OpCharge,
		uint8(bpf.ChargesOpOP_COUNTER_CHARGE):   analysis.OpCounterCharge,
		uint8(bpf.ChargesOpOP_COUNTER_UNCHARGE): analysis.OpCounterUncharge,
		uint8(bpf.ChargesOpOP_REFILL):           analysis.OpRefill,
		uint8(bpf.ChargesOpOP_DRAIN):            analysis.OpDrain,
	}
	fnNames = map[uint8]string{
		uint8(bpf.ChargesFnFN_TRY_CHARGE):    "try_charge_memcg",
		uint8(bpf.ChargesFnFN_PC_TRY_CHARGE): "page_counter_try_charge",
		uint8(bpf.ChargesFnFN_PC_CHARGE):     "page_counter_charge",
		uint8(bpf.ChargesFnFN_PC_UNCHARGE):   "page_counter_uncharge",
		uint8(bpf.ChargesFnFN_REFILL_STOCK):  "refill_stock",
		uint8(bpf.ChargesFnFN_DRAIN_STOCK):   "drain_stock",
	}
)

// decode reads one ring-buffer record through the generated struct event.
// Records are 8-byte aligned in the ring buffer, as the struct needs.
func (t *Tracer) decode(b []byte) (analysis.Event, error) {
	var r bpf.Event
	if len(b) < int(unsafe.Sizeof(r)) {
		return analysis.Event{}, fmt.Errorf("short event: %d bytes, want %d", len(b), unsafe.Sizeof(r))
	}
	r = *(*bpf.Event)(unsafe.Pointer(&b[0]))
	op, ok := ops[r.Op]
	if !ok {
		return analysis.Event{}, fmt.Errorf("event with unknown op %d", r.Op)
	}
	e := analysis.Event{Time: r.Ts, CPU: int(r.Cpu), PID: int(r.Pid), TID: int(r.Tid), Op: op, Fn: fnNames[r.Fn],
		Pages: r.Pages, Usage: r.Usage, Watermark: r.Watermark,
		Failed: r.Flags&uint8(bpf.ChargesFlagFLAG_FAILED) != 0, Forced: r.Flags&uint8(bpf.ChargesFlagFLAG_FORCED) != 0,
		Gfp: r.Gfp, Stack: r.Stack, UStackKey: r.Ustack, Consumed: uint64(r.Consumed), Cgroup: r.Cgid, Stocked: uint64(r.Stocked), Real: int64(r.Real)}
	if op == analysis.OpCharge && r.FromCpu != r.Cpu {
		from := int(r.FromCpu)
		e.FromCPU = &from
	}
	switch bpf.ChargesCounterKind(r.Counter) {
	case bpf.ChargesCounterKindCOUNTER_MEMORY:
		e.Counter = analysis.CounterMemory
	case bpf.ChargesCounterKindCOUNTER_MEMSW:
		e.Counter = t.swap
	}
	comm := unsafe.Slice((*byte)(unsafe.Pointer(&r.Comm[0])), len(r.Comm))
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	e.Comm = string(comm)
	return e, nil
}

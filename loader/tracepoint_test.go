package loader

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
)

// decodeTP reads struct tp_event as the compiler laid it out, and a
// negative delta is a stat taken out.
func TestDecodeTPMatchesGeneratedLayout(t *testing.T) {
	if n := binary.Size(bpf.MemcgtpTpEvent{}); n != tpEventSize {
		t.Fatalf("struct tp_event is %d bytes, decodeTP reads %d", n, tpEventSize)
	}
	for _, c := range []struct {
		delta int32
		op    analysis.Op
		pages uint64
	}{{3, analysis.OpStatAdd, 3}, {-512, analysis.OpStatSub, 512}} {
		in := bpf.MemcgtpTpEvent{Ts: 1, Usage: 128, Watermark: 192, Real: 100, Cgid: 77, Delta: c.delta, Item: 17, Cpu: 3, Pid: 4, Tid: 5, Fn: 2, Kind: 1}
		copy(in.Comm[:], []int8{'t', 'o', 'u', 'c', 'h'})
		var buf bytes.Buffer
		if err := binary.Write(&buf, binary.LittleEndian, in); err != nil {
			t.Fatal(err)
		}
		e, err := decodeTP(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		want := analysis.Event{Time: 1, CPU: 3, PID: 4, TID: 5, Comm: "touch", Op: c.op, Pages: c.pages, Usage: 128, Watermark: 192, Kind: "anon", Cgroup: 77, Real: 100,
			Fn: "mod_memcg_lruvec_state", Counter: "memory"}
		if e != want {
			t.Errorf("got %+v\nwant %+v", e, want)
		}
	}
	if _, err := decodeTP(make([]byte, 10)); err == nil {
		t.Error("short sample accepted")
	}
}

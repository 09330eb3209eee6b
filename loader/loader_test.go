package loader

import (
	"bytes"
	"encoding/binary"
	"os"
	"syscall"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/cgroup"
)

// decode must agree with the layout bpf2go generated from the C struct.
func TestDecodeMatchesGeneratedLayout(t *testing.T) {
	if n := binary.Size(bpf.CgpeakEvent{}); n != eventSize {
		t.Fatalf("struct event is %d bytes, decode reads %d", n, eventSize)
	}
	in := bpf.CgpeakEvent{Ts: 1, Pages: 64, Usage: 128, Watermark: 192, Cpu: 3, Pid: 4, Tid: 5, Op: uint8(analysis.OpCounterCharge), Counter: 2, Fn: 3, Flags: flagForced, Gfp: 0xcc0, Stack: 0x1234567890, Cgid: 77, Stocked: 60, Real: -3}
	copy(in.Comm[:], []int8{'t', 'o', 'u', 'c', 'h'})
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, in); err != nil {
		t.Fatal(err)
	}
	e, err := decode(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Event: analysis.Event{Time: 1, CPU: 3, PID: 4, TID: 5, Comm: "touch", Op: analysis.OpCounterCharge, Pages: 64, Usage: 128, Watermark: 192, Forced: true, Cgroup: 77, Stocked: 60, Real: -3},
		Fn: "page_counter_charge", Counter: "memsw", Gfp: 0xcc0, Stack: 0x1234567890}
	if e != want {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
	if _, err := decode(buf.Bytes()[:10]); err == nil {
		t.Error("short sample accepted")
	}
}

// On the VM kernels every traced function exists for both backends, and
// Close leaves nothing attached.
func TestOpenFindsEveryFunction(t *testing.T) {
	spec, _ := btf.LoadKernelSpec()
	var bs []string
	if ProbeFentry(spec).OK {
		bs = append(bs, Fentry)
	}
	if ProbeKprobe().OK {
		bs = append(bs, Kprobe)
	}
	if len(bs) == 0 {
		if os.Getenv("CGPEAK_VM") != "" {
			t.Fatal("the VM kernel offers neither fentry nor kprobes")
		}
		t.Skip("this kernel offers neither fentry nor kprobes; tested in the VMs")
	}
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	var st syscall.Stat_t
	if err := syscall.Stat(leaf.Path, &st); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		tr, err := Open(Options{CgroupID: st.Ino, Backend: b})
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if m := tr.Missing(); len(m) > 0 {
			t.Errorf("%s: not traced on this kernel: %v", b, m)
		}
		for _, f := range tr.Functions {
			t.Logf("%s: %s -> %s", b, f.Name, f.Symbol)
		}
		tr.Close()
		// Summary mode reads the stocks on every kernel cgpeak supports
		// (5.10 to 7.x have memcg_stock in their BTF and kallsyms).
		tr, err = Open(Options{CgroupID: st.Ino, Backend: b, Summary: true, Batch: 64})
		if err != nil {
			t.Fatalf("%s summary: %v", b, err)
		}
		if !tr.StocksRead {
			t.Errorf("%s summary: the stocks are not read: %s", b, tr.StocksNote)
		}
		for _, f := range tr.Functions {
			if f.Name == "try_charge_memcg" && f.Unneeded == "" {
				t.Errorf("%s summary: try_charge_memcg is probed though the stocks are read", b)
			}
		}
		tr.Close()
	}
	if _, err := Open(Options{CgroupID: st.Ino, Backend: bs[0], KernelBTF: "/nonexistent"}); err == nil {
		t.Error("a missing --kernel-btf file was accepted")
	}
}

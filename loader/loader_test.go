package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kernel"
)

// A record written as the C struct reads back field for field, with the
// counter named for the cgroup version.
func TestDecode(t *testing.T) {
	in := bpf.Event{Ts: 1, Pages: 64, Usage: 128, Watermark: 192, Cpu: 3, Pid: 4, Tid: 5, Op: uint8(bpf.ChargesOpOP_COUNTER_CHARGE),
		Counter: uint8(bpf.ChargesCounterKindCOUNTER_MEMSW), Fn: uint8(bpf.ChargesFnFN_PC_CHARGE), Flags: uint8(bpf.ChargesFlagFLAG_FORCED),
		Gfp: 0xcc0, Stack: 0x1234567890, Consumed: 9, Cgid: 77, Stocked: 60, Real: -3}
	copy(in.Comm[:], []int8{'t', 'o', 'u', 'c', 'h'})
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, in); err != nil {
		t.Fatal(err)
	}
	want := analysis.Event{Time: 1, CPU: 3, PID: 4, TID: 5, Comm: "touch", Op: analysis.OpCounterCharge, Fn: "page_counter_charge", Counter: "memsw",
		Pages: 64, Usage: 128, Watermark: 192, Forced: true, Gfp: 0xcc0, Stack: 0x1234567890, Consumed: 9, Cgroup: 77, Stocked: 60, Real: -3}
	tr := &Tracer{swap: analysis.CounterMemsw}
	if e, err := tr.decode(buf.Bytes()); err != nil || e != want {
		t.Errorf("got %+v %v\nwant %+v", e, err, want)
	}
	tr.swap = analysis.CounterSwap
	if e, _ := tr.decode(buf.Bytes()); e.Counter != "swap" {
		t.Errorf("cgroup v2: counter %q, want swap", e.Counter)
	}
	if _, err := tr.decode(buf.Bytes()[:10]); err == nil {
		t.Error("short sample accepted")
	}
	buf.Bytes()[44] = 99 // op
	if _, err := tr.decode(buf.Bytes()); err == nil {
		t.Error("unknown op accepted")
	}
}

// The three objects write one struct event, and decode names every value
// of the C enums: both read from the objects' own BTF, not from Go.
func TestObjectsShareTheEvent(t *testing.T) {
	load := map[string]func() (*ebpf.CollectionSpec, error){"charges": bpf.LoadCharges, "summary": bpf.LoadSummary, "stocks": bpf.LoadStocks}
	var first *btf.Struct
	for name, f := range load {
		spec, err := f()
		if err != nil {
			t.Fatal(err)
		}
		var ev *btf.Struct
		if err := spec.Types.TypeByName("event", &ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ev.Size != uint32(binary.Size(bpf.Event{})) {
			t.Errorf("%s: struct event is %d bytes, the Go type %d", name, ev.Size, binary.Size(bpf.Event{}))
		}
		if first == nil {
			first = ev
		} else if !reflect.DeepEqual(memberLayout(first), memberLayout(ev)) {
			t.Errorf("%s: struct event differs: %v vs %v", name, memberLayout(ev), memberLayout(first))
		}
		for enum, named := range map[string]func(uint8) bool{
			"op": func(v uint8) bool { _, ok := ops[v]; return ok },
			"fn": func(v uint8) bool { _, ok := fnNames[v]; return ok },
		} {
			var en *btf.Enum
			if err := spec.Types.TypeByName(enum, &en); err != nil {
				t.Fatalf("%s: enum %s: %v", name, enum, err)
			}
			for _, v := range en.Values {
				if !named(uint8(v.Value)) {
					t.Errorf("%s: enum %s value %s (%d) has no name in decode", name, enum, v.Name, v.Value)
				}
			}
		}
	}
}

func memberLayout(s *btf.Struct) []string {
	var out []string
	for _, m := range s.Members {
		out = append(out, fmt.Sprintf("%s@%d", m.Name, m.Offset))
	}
	return out
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
		tr, err = Open(Options{CgroupID: st.Ino, Backend: b, Summary: true, Batch: kernel.ChargeBatch(kernel.Release()).Pages})
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

// A call nested in another on the same thread (an interrupt charging or
// freeing memory while a task is inside a traced function): the kprobe
// frames give each return its own call's arguments, leave the outer frame
// to the outer return when the nested call was not kept, and count a call
// nested too deep. Run in the kernel, on the programs' own save and take.
func TestKprobeNesting(t *testing.T) {
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Skip("cannot raise RLIMIT_MEMLOCK:", err)
	}
	spec, err := bpf.LoadCharges()
	if err != nil {
		t.Fatal(err)
	}
	for name := range spec.Programs {
		if name != "test_nesting" {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if errors.Is(err, os.ErrPermission) {
		t.Skip("no BPF here (not root):", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if _, err := coll.Programs["test_nesting"].Run(&ebpf.RunOptions{Context: make([]byte, 8)}); err != nil {
		t.Fatal(err)
	}
	var got [5]uint64
	if err := coll.Variables["nest_result"].Get(&got); err != nil {
		t.Fatal(err)
	}
	// the unkept call's return takes nothing; the kept nested call's return
	// gets 2, the outer's 1; nothing is left; one call too deep is counted.
	if want := [5]uint64{0, 2, 1, 0, 1}; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

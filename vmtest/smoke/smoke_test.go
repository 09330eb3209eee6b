package smoke

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kallsyms"
)

// chargeFunc is the memcg charge function of this kernel: try_charge_memcg
// from 5.14, try_charge before.
func chargeFunc(t *testing.T) string {
	syms, err := kallsyms.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"try_charge_memcg", "try_charge"} {
		if syms.Has(name) {
			return name
		}
	}
	t.Fatal("neither try_charge_memcg nor try_charge in /proc/kallsyms")
	return ""
}

// counter returns a program that adds one to slot 0 of m each time it runs.
func counter(typ ebpf.ProgramType, attach ebpf.AttachType, to string, m *ebpf.Map) *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Type: typ, AttachType: attach, AttachTo: to, License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	}
}

// touchInCgroup runs the touch workload for n pages in a fresh leaf cgroup;
// charges to the root cgroup skip try_charge_memcg, so a leaf is needed.
func touchInCgroup(t *testing.T, n string) {
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Fatalf("memory cgroup: %v", err)
	}
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	touch := os.Getenv("CGPEAK_TEST_TOUCH")
	if touch == "" {
		touch = filepath.Join(t.TempDir(), "touch")
		if out, err := exec.Command("gcc", "-O1", "-static", "-o", touch, "../../testdata/touch/touch.c").CombinedOutput(); err != nil {
			t.Fatalf("building touch: %v\n%s", err, out)
		}
	}
	// The shell joins the leaf, then becomes the workload.
	c := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" "$3"`, "sh", leaf.Path, touch, n)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("workload: %v\n%s", err, out)
	}
}

// inVM: the harness's kernels have kprobes and fentry, so there a missing
// one is a failure, never a skip.
var inVM = os.Getenv("CGPEAK_VM") != ""

func TestChargeFunctionFires(t *testing.T) {
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	fn := chargeFunc(t)
	const pages = 1000
	for _, backend := range []string{"kprobe", "fentry"} {
		t.Run(backend, func(t *testing.T) {
			m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var spec *ebpf.ProgramSpec
			if backend == "kprobe" {
				spec = counter(ebpf.Kprobe, ebpf.AttachNone, "", m)
			} else {
				spec = counter(ebpf.Tracing, ebpf.AttachTraceFEntry, fn, m)
			}
			prog, err := ebpf.NewProgram(spec)
			if err != nil {
				if backend == "fentry" && errors.Is(err, os.ErrPermission) && !inVM {
					t.Skipf("this kernel refuses fentry programs (%v); cgpeak falls back to kprobes", err)
				}
				t.Fatalf("loading the %s program: %v", backend, err)
			}
			defer prog.Close()
			var l link.Link
			if backend == "kprobe" {
				if _, serr := os.Stat("/sys/bus/event_source/devices/kprobe"); serr != nil && !inVM {
					t.Skipf("this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices)")
				}
				l, err = link.Kprobe(fn, prog, nil)
			} else {
				l, err = link.AttachTracing(link.TracingOptions{Program: prog})
			}
			if err != nil {
				t.Fatalf("attaching %s to %s: %v", backend, fn, err)
			}
			touchInCgroup(t, "1000")
			l.Close()
			var n uint64
			if err := m.Lookup(uint32(0), &n); err != nil {
				t.Fatal(err)
			}
			// Every fault charges through fn, whether the per-CPU stock serves it or not.
			t.Logf("%s on %s fired %d times for %d touched pages", backend, fn, n, pages)
			if n < pages {
				t.Errorf("%s on %s fired %d times, want at least %d (one per touched page)", backend, fn, n, pages)
			}
		})
	}
}

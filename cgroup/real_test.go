package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/internal/kernel"
)

// On the real hierarchy of this machine (v1 on the development hosts, v1 or
// v2 in the VMs as the harness chose).
func TestFindMemoryOnThisMachine(t *testing.T) {
	h := memoryOrSkip(t)
	if mode := os.Getenv("CGPEAK_VM_MODE"); mode != "" && h.V2 != (mode != "v1") {
		t.Errorf("found v2=%v at %s, but the VM mounted memory on %s", h.V2, h.Mount, mode)
	}
	b, err := os.ReadFile(filepath.Join(h.Self, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !has(strings.Fields(string(b)), strconv.Itoa(os.Getpid())) {
		t.Errorf("%s does not hold this process", h.Self)
	}
}

func TestLeafLifecycle(t *testing.T) {
	h := memoryOrSkip(t)
	l, err := NewLeaf(h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(l.Path), NamePrefix) {
		t.Errorf("leaf %s does not carry the cgpeak prefix", l.Path)
	}
	if err := l.SetLimits(64<<20, -1); err != nil {
		t.Fatal(err)
	}
	// A tree of two sleepers inside the leaf.
	c := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && { sleep 30 & exec sleep 31; }`, "sh", l.Path)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if p, _ := l.Procs(); len(p) >= 2 {
			break
		}
		exec.Command("sleep", "0.02").Run()
	}
	if p, _ := l.Procs(); len(p) < 2 {
		t.Fatalf("procs in leaf: %v", p)
	}
	f := l.Read()
	if !f.HavePeak && h.V2 && !kernel.Since(kernel.Release(), kernel.PeakFile) && strings.Contains(strings.Join(f.Missing, " "), "needs Linux 5.19+") {
		t.Logf("this kernel has no memory.peak (before 5.19), and Read says so: %v", f.Missing)
	} else if !f.HavePeak || f.PeakBytes == 0 {
		t.Errorf("no peak read from a leaf holding processes: %+v", f)
	}
	if err := l.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait()
	if p, _ := l.Procs(); len(p) != 0 {
		t.Errorf("after Kill: %v", p)
	}
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Path); !os.IsNotExist(err) {
		t.Errorf("leaf still there: %v", err)
	}
}

// memoryOrSkip finds the memory controller; only outside the VMs (which
// always mount one) may a machine lack it.
func memoryOrSkip(t *testing.T) Hierarchy {
	t.Helper()
	h, err := FindMemory()
	if err != nil {
		if os.Getenv("CGPEAK_VM_MODE") != "" {
			t.Fatalf("the VM mounts a memory controller, yet: %v", err)
		}
		t.Skipf("no memory cgroup controller on this machine: %v", err)
	}
	return h
}

package kpeak

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/cgroup"
)

// A workload touching exactly n pages in a fresh v2 cgroup: the watermark
// read by BPF is at least those pages, equals memory.peak where the kernel
// has it (5.19+), and the usage read beside it equals memory.current.
func TestWatermarkIsThePeak(t *testing.T) {
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Skipf("no memory cgroup controller: %v", err)
	}
	if !h.V2 {
		t.Skip("the memory controller is on cgroup v1 here, which has memory.max_usage_in_bytes; the watermark reader serves v2 (tested in the VMs)")
	}
	if os.Geteuid() != 0 {
		t.Skip("loading BPF needs root")
	}
	touch := os.Getenv("CGPEAK_TEST_TOUCH")
	if touch == "" {
		dir := t.TempDir()
		touch = filepath.Join(dir, "touch")
		if out, err := exec.Command("gcc", "-O1", "-static", "-o", touch, "../../testdata/touch/touch.c").CombinedOutput(); err != nil {
			t.Fatalf("building touch: %v\n%s", err, out)
		}
	}
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	page := uint64(os.Getpagesize())
	const n = 3000
	if out, err := exec.Command(touch, strconv.Itoa(n), leaf.Path).CombinedOutput(); err != nil {
		t.Fatalf("touch: %v: %s", err, out)
	}
	r, err := Read(leaf.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	cur := readUint(t, filepath.Join(leaf.Path, "memory.current"))
	t.Logf("%d pages touched: watermark %d pages, usage %d pages (via %s), memory.current %d pages", n, r.WatermarkPages, r.UsagePages, r.Via, cur/page)
	if r.WatermarkPages < n {
		t.Errorf("watermark %d pages, below the %d pages touched", r.WatermarkPages, n)
	}
	if r.UsagePages*page != cur {
		t.Errorf("usage %d pages (%d B), memory.current %d B", r.UsagePages, r.UsagePages*page, cur)
	}
	if _, err := os.Stat(filepath.Join(leaf.Path, "memory.peak")); err == nil {
		if p := readUint(t, filepath.Join(leaf.Path, "memory.peak")); p != r.WatermarkPages*page {
			t.Errorf("watermark %d B, memory.peak %d B: want them equal", r.WatermarkPages*page, p)
		}
	} else {
		t.Logf("no memory.peak on this kernel: only the touched pages bound the watermark here")
	}
}

// A cgroup the program never sees (not the one read) is refused, not
// answered with another cgroup's figures.
func TestOtherCgroupNotRead(t *testing.T) {
	h, err := cgroup.FindMemory()
	if err != nil || !h.V2 || os.Geteuid() != 0 {
		t.Skip("needs root and the memory controller on cgroup v2 (the VMs)")
	}
	// The hierarchy's root has no memory.current: the handler never runs.
	_, err = Read(h.Mount, "")
	if err == nil || !strings.Contains(err.Error(), "memory.current") {
		t.Errorf("reading the root: err %v, want a failure naming memory.current", err)
	}
}

func readUint(t *testing.T, p string) uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

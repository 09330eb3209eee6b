package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
)

// v2Root returns the cgroup2 mount holding the memory controller, skipping
// where memory lives on v1 (the development machines; the VMs cover v2).
func v2Root(t *testing.T) string {
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Skipf("no memory cgroup controller: %v", err)
	}
	if !h.V2 {
		t.Skip("the memory controller is on cgroup v1 here; the v2 rules are tested in the VMs (make vmtest)")
	}
	if filepath.Clean(h.Self) != filepath.Clean(h.Mount) {
		t.Skip("these tests build their own cgroup tree from the v2 root; run them as the VM harness does")
	}
	return h.Mount
}

// mkcg makes a cgroup for the test and removes it (and what it holds) after.
func mkcg(t *testing.T, path string) string {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l := &cgroup.Leaf{Path: path}
		_ = l.Kill()
		_ = l.Remove()
	})
	return path
}

// runIn starts cgpeak from inside cgroup dir, as a user in a systemd scope would.
func runIn(t *testing.T, cgpeak, dir string, args ...string) (string, int) {
	t.Helper()
	sh := `echo $$ > "$1/cgroup.procs" && shift && exec "$@"`
	c := exec.Command("sh", append([]string{"-c", sh, "sh", dir, cgpeak}, args...)...)
	out, err := c.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func prefixed(t *testing.T, dir string) []string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), cgroup.NamePrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// From a non-root cgroup that holds cgpeak itself, v2's no-internal-processes
// rule forbids enabling memory for a child: the leaf must go beside it, in a
// parent that holds no process, and memory.peak must still be the workload's.
func TestV2LeafBesideOwnCgroup(t *testing.T) {
	root := v2Root(t)
	cgpeak, touch := build(t)
	id := strconv.Itoa(os.Getpid())

	// outer grants memory to its children already; outer2 does not, so
	// cgpeak must enable it there itself.
	for _, enabled := range []bool{true, false} {
		outer := mkcg(t, filepath.Join(root, "vmtest-outer-"+id+"-"+strconv.FormatBool(enabled)))
		if enabled {
			if err := os.WriteFile(filepath.Join(outer, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
				t.Fatal(err)
			}
		}
		self := mkcg(t, filepath.Join(outer, "self"))
		report := filepath.Join(t.TempDir(), "r.json")
		out, code := runIn(t, cgpeak, self, "run", "--json", "-o", report, "--", touch, "500")
		if code != 0 {
			t.Fatalf("memory enabled above=%v: exit %d: %s", enabled, code, out)
		}
		r := readReport(t, report)
		if filepath.Dir(r.Cgroup) != outer {
			t.Errorf("leaf %s, want it beside cgpeak's own cgroup, in %s", r.Cgroup, outer)
		}
		page := uint64(os.Getpagesize())
		if r.PeakBytes == nil || r.PeakSource != "memory.peak" && r.PeakSource != kpeak.WatermarkSource || *r.PeakBytes < 500*page {
			t.Errorf("peak %v from %q, want memory.peak (or the watermark before 5.19) >= 500 pages", r.PeakBytes, r.PeakSource)
		}
		b, _ := os.ReadFile(filepath.Join(outer, "cgroup.subtree_control"))
		if !strings.Contains(string(b), "memory") {
			t.Errorf("%s/cgroup.subtree_control = %q, want memory enabled", outer, b)
		}
		if left := prefixed(t, outer); len(left) > 0 {
			t.Errorf("left behind in %s: %v", outer, left)
		}
	}
}

// Where the only place for a leaf holds processes, cgpeak must refuse in one
// line naming the fix, with the cgroup exit code, leaving nothing behind.
func TestV2InternalProcessRefused(t *testing.T) {
	root := v2Root(t)
	cgpeak, _ := build(t)
	busy := mkcg(t, filepath.Join(root, "vmtest-busy-"+strconv.Itoa(os.Getpid())))
	self := mkcg(t, filepath.Join(busy, "self"))
	sleeper := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec sleep 60`, "sh", busy)
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(filepath.Join(busy, "cgroup.procs")); len(b) > 0 {
			break
		}
		exec.Command("sleep", "0.02").Run()
	}
	out, code := runIn(t, cgpeak, self, "run", "--", "true")
	if code != exitCgroup {
		t.Errorf("exit %d, want %d (cgroup error): %s", code, exitCgroup, out)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(out, "internal processes") || !strings.Contains(out, "systemd-run") {
		t.Errorf("want one line explaining the no-internal-processes rule and the fix, got:\n%s", out)
	}
	if left := prefixed(t, busy); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fake v2 tree in a temp dir: the kernel's files are plain files here, so
// this checks what cgpeak writes and how it reads, not the kernel.
func TestFakeV2Leaf(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := Hierarchy{V2: true, Mount: root, Self: root}
	l, err := NewLeaf(h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(l.Path), NamePrefix) {
		t.Errorf("leaf name %s lacks %s", l.Path, NamePrefix)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "cgroup.subtree_control")); string(b) != "+memory" {
		t.Errorf("subtree_control = %q, want +memory", b)
	}
	files := map[string]string{
		"memory.peak":      "1048576\n",
		"memory.swap.peak": "0\n",
		"memory.current":   "4096\n",
		"memory.stat":      "anon 802816\nfile 0\nkernel 98304\n",
		"memory.events":    "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(l.Path, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SetLimits(16<<20, 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Path, "memory.max")); string(b) != "16777216" {
		t.Errorf("memory.max = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Path, "memory.swap.max")); string(b) != "0" {
		t.Errorf("memory.swap.max = %q", b)
	}
	f := l.Read()
	if !f.HavePeak || f.PeakBytes != 1048576 || f.PeakFile != "memory.peak" {
		t.Errorf("peak: %+v", f)
	}
	if f.CurrentBytes != 4096 || f.Stat["anon"] != 802816 || f.Events["oom_kill"] != 1 {
		t.Errorf("figures: %+v", f)
	}
	if len(f.Missing) != 0 {
		t.Errorf("nothing should be missing: %v", f.Missing)
	}
}

// A kernel before 5.19 has no memory.peak: the figure is reported missing, with why.
func TestFakeV2NoPeak(t *testing.T) {
	l := &Leaf{H: Hierarchy{V2: true}, Path: t.TempDir()}
	f := l.Read()
	if f.HavePeak || len(f.Missing) == 0 || !strings.Contains(f.Missing[0], "memory.peak") {
		t.Errorf("want memory.peak reported missing: %+v", f)
	}
}

func TestFakeV1Leaf(t *testing.T) {
	l := &Leaf{H: Hierarchy{}, Path: t.TempDir()}
	for k, v := range map[string]string{
		"memory.max_usage_in_bytes":       "8192\n",
		"memory.memsw.max_usage_in_bytes": "12288\n",
		"memory.oom_control":              "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory.failcnt":                  "5\n",
	} {
		if err := os.WriteFile(filepath.Join(l.Path, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := l.Read()
	if f.PeakBytes != 8192 || f.PeakFile != "memory.max_usage_in_bytes" || f.SwapPeakBytes != 12288 {
		t.Errorf("v1 peaks: %+v", f)
	}
	if f.Events["oom_kill"] != 2 || f.Events["max"] != 5 {
		t.Errorf("v1 events: %v", f.Events)
	}
	if err := l.SetLimits(-1, 0); err == nil {
		t.Error("v1 --swap-max without --memory-max: want an error")
	}
}

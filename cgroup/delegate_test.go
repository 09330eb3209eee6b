package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// On a real v2 hierarchy: a cgroup holding only this process is used as a
// delegated subtree (this process moves into a leaf of its own, memory is
// enabled for the children, the run's leaf has memory files) and Close puts
// everything back as it was.
func TestDelegatedSubtreeRoundTrip(t *testing.T) {
	h := memoryOrSkip(t)
	if !h.V2 {
		t.Skip("memory is on cgroup v1 here: delegated subtrees are a v2 thing")
	}
	origin := h.Self
	parent, _ := h.Parent()
	if err := enableMemory(parent); err != nil {
		t.Skipf("cannot give memory to a test cgroup here: %v", err)
	}
	dir := filepath.Join(parent, fmt.Sprintf("deleg-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	defer func() {
		_ = os.WriteFile(filepath.Join(origin, "cgroup.procs"), pid, 0)
		_ = os.Remove(dir)
	}()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		t.Fatal(err)
	}
	here := func() string {
		now, err := FindMemory()
		if err != nil {
			t.Fatal(err)
		}
		return now.Self
	}
	s, err := delegate(Hierarchy{V2: true, Mount: h.Mount, Self: dir}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if now := here(); filepath.Dir(now) != dir || !strings.HasPrefix(filepath.Base(now), NamePrefix) {
		t.Errorf("after delegate this process is in %s, want a leaf of its own in %s", now, dir)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); !strings.Contains(string(b), "memory") {
		t.Errorf("memory not enabled below %s: %q", dir, b)
	}
	l, err := NewLeaf(s.H)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(l.Path) != dir {
		t.Errorf("leaf %s not in the subtree %s", l.Path, dir)
	}
	if _, err := os.Stat(filepath.Join(l.Path, "memory.current")); err != nil {
		t.Errorf("the run's leaf has no memory controller: %v", err)
	}
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if now := here(); now != dir {
		t.Errorf("after Close this process is in %s, want %s back", now, dir)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); strings.TrimSpace(string(b)) != "" {
		t.Errorf("Close left controllers enabled in %s: %q", dir, b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("Close left %s in %s", e.Name(), dir)
		}
	}
}

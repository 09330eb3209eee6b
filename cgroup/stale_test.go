package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

func TestParseStartTime(t *testing.T) {
	// A command name with spaces and parentheses: fields count after the last ')'.
	stat := "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
	if v, err := parseStartTime(stat); err != nil || v != 987654 {
		t.Errorf("got %d, %v; want 987654", v, err)
	}
	if _, err := parseStartTime("4242 (x) S 1"); err == nil {
		t.Error("a short stat line was accepted")
	}
}

// A leaf belongs to the process that has its pid and its start time, under
// whatever name that process runs.
func TestOwnerGone(t *testing.T) {
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	pid := live.Process.Pid
	start, err := startTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		gone bool
	}{
		{fmt.Sprintf("%s%d-t%d-5-0", NamePrefix, pid, start), false},  // its owner, named "sleep"
		{fmt.Sprintf("%s%d-t%d-5-0", NamePrefix, pid, start+1), true}, // the pid reused by another process
		{fmt.Sprintf("%s%d-t%d-5-0", NamePrefix, dead.Process.Pid, 1), true},
		{fmt.Sprintf("%s%d-5-0", NamePrefix, dead.Process.Pid), true}, // an older name, owner gone
		{fmt.Sprintf("%s%d-5-0", NamePrefix, pid), false},             // an older name, pid alive: cannot tell, kept
		{fmt.Sprintf("%s%d-t1-5-0", NamePrefix, os.Getpid()), false},  // this process's own
		{"cgpeak-x-1", false},
		{"other-1", false},
	} {
		if got := ownerGone(c.name); got != c.gone {
			t.Errorf("%s: gone %v, want %v", c.name, got, c.gone)
		}
	}
}

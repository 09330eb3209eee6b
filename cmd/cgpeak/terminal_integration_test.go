package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
)

// tmuxRun starts command in a detached tmux session of a known size and
// returns a function that captures the screen, and one that ends it.
func tmuxRun(t *testing.T, command string) (capture func() string, stop func()) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed here (the VMs have none): the terminal views are checked on the host, where CI installs tmux")
	}
	name := fmt.Sprintf("cgpeak-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "45", command+"; sleep 30").CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	capture = func() string {
		out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", name).Output()
		return string(out)
	}
	stop = func() { exec.Command("tmux", "kill-session", "-t", name).Run() }
	return capture, stop
}

// waitScreen polls the screen until ok accepts it.
func waitScreen(t *testing.T, capture func() string, what string, ok func(string) bool) string {
	t.Helper()
	var s string
	for i := 0; i < 100; i++ {
		if s = capture(); ok(s) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the screen never showed %s:\n%s", what, s)
	return ""
}

// On a terminal, a series of runs draws a progress bar on stderr and clears
// it before the report.
func TestProgressBarOnTerminal(t *testing.T) {
	cgpeak, _ := build(t)
	capture, stop := tmuxRun(t, cgpeak+" run --runs 4 'sleep 0.5'")
	defer stop()
	bar := regexp.MustCompile(`\[#+\.+\] [1-3]/4 sleep 0\.5`)
	waitScreen(t, capture, "a progress bar", func(s string) bool { return bar.MatchString(s) })
	s := waitScreen(t, capture, "the report", func(s string) bool { return strings.Contains(s, "(4 runs, each in a fresh cgroup)") })
	if bar.MatchString(s) || strings.Contains(s, "] 4/4") {
		t.Errorf("the bar was left on the screen:\n%s", s)
	}
}

// On a terminal, watch redraws a screen with labelled figures and a history
// graph of memory.current.
func TestWatchScreenOnTerminal(t *testing.T) {
	cgpeak, touch := build(t)
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.Mount, fmt.Sprintf("watch-screen-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	work := exec.Command(touch, "3000", dir)
	work.Env = append(os.Environ(), "TOUCH_STEPS=3", "TOUCH_PAUSE_MS=700")
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	defer work.Process.Kill()
	capture, stop := tmuxRun(t, cgpeak+" watch --interval 100ms --cgroup "+dir)
	defer stop()
	graph := regexp.MustCompile(`[▁▂▃▄▅▆▇█]{5,}`)
	s := waitScreen(t, capture, "the watch screen with a rising graph", func(s string) bool {
		return strings.Contains(s, "cgpeak watch: "+dir) && graph.MatchString(s) && strings.ContainsAny(s, "▅▆▇█") && strings.ContainsAny(s, "▁▂▃")
	})
	for _, want := range []string{"current", "peak", "limit", "memory.stat"} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "cgpeak watch:") != 1 {
		t.Errorf("the screen was not redrawn in place:\n%s", s)
	}
	work.Wait()
	for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	waitScreen(t, capture, "the end of the watch", func(s string) bool {
		return strings.Contains(s, "watch ended after") && strings.Contains(s, "cgroup removed")
	})
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
)

// A workload that moves itself into a cgroup and raises its usage in four
// steps of 1000 pages: cgpeak watch sees each step, its peak never falls,
// and it ends by itself when the cgroup is removed.
func TestWatchFollowsSteps(t *testing.T) {
	cgpeak, touch := build(t)
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.Mount, fmt.Sprintf("watch-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	w := exec.Command(cgpeak, "watch", "--cgroup", dir, "--interval", "100ms", "--json")
	out, _ := w.StdoutPipe()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Process.Kill()
	lines := make(chan WatchSample, 1000)
	first := make(chan struct{})
	// Read to the end before Wait: Wait closes the pipe once the process
	// has exited, and lines not yet read (the last, "cgroup removed") are lost.
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		for n := 0; sc.Scan(); n++ {
			if n == 0 {
				close(first)
			}
			var s WatchSample
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Errorf("line %q: %v", sc.Text(), err)
			}
			lines <- s
		}
		close(lines)
	}()
	// Once watch is sampling (it may first load BPF to read the peak of a
	// kernel without memory.peak).
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("cgpeak watch printed no sample")
	}
	work := exec.Command(touch, "4000", dir)
	work.Env = append(os.Environ(), "TOUCH_STEPS=4", "TOUCH_PAUSE_MS=500")
	if b, err := work.CombinedOutput(); err != nil {
		t.Fatalf("workload: %v %s", err, b)
	}
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-read:
	case <-time.After(30 * time.Second):
		t.Fatal("cgpeak watch did not end when its cgroup went away")
	}
	if err := w.Wait(); err != nil {
		t.Fatalf("cgpeak watch: %v", err)
	}
	page := uint64(os.Getpagesize())
	var samples []WatchSample
	for s := range lines {
		samples = append(samples, s)
	}
	if len(samples) < 10 || samples[len(samples)-1].Ended != "cgroup removed" {
		t.Fatalf("%d samples, last %+v", len(samples), samples[len(samples)-1])
	}
	steps := map[uint64]int{}
	var peak uint64
	for _, s := range samples[:len(samples)-1] {
		if k := s.UsageBytes / page / 1000; s.UsageBytes/page%1000 < 500 {
			steps[k]++
		}
		if s.PeakBytes != nil {
			if *s.PeakBytes < peak {
				t.Errorf("peak fell from %d to %d", peak, *s.PeakBytes)
			}
			peak = *s.PeakBytes
		}
		if _, ok := s.Stat[map[bool]string{true: "anon", false: "rss"}[h.V2]]; !ok {
			t.Errorf("sample without the anon/rss breakdown: %+v", s.Stat)
		}
	}
	for k := uint64(1); k <= 4; k++ {
		if steps[k] == 0 {
			t.Errorf("no sample at step %d (%d pages); seen %v", k, k*1000, steps)
		}
	}
	if peak < 4000*page {
		t.Errorf("peak %d below the 4000 pages touched", peak)
	}
}

// watch refuses bad input in one line with a distinct code.
func TestWatchErrors(t *testing.T) {
	cgpeak, _ := build(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{nil, exitUsage},
		{[]string{"--pid", "1", "--cgroup", "/"}, exitUsage},
		{[]string{"--pid", "1", "--interval", "1ms"}, exitUsage},
		{[]string{"--pid", "1", "extra"}, exitUsage},
		{[]string{"--pid", "999999999"}, exitCgroup},
		{[]string{"--cgroup", "no-such-cgroup-here"}, exitCgroup},
	} {
		wantOneLineError(t, cgpeak, append([]string{"watch"}, c.args...), c.code)
	}
}

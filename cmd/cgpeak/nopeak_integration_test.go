package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
	"github.com/cgpeak/cgpeak/trace"
)

// needNoPeakFile skips where the kernel has memory.peak, or memory is on v1
// (which has memory.max_usage_in_bytes): there is nothing to stand in for.
// internal/kpeak checks the watermark against memory.peak where both exist.
func needNoPeakFile(t *testing.T) {
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Skipf("no memory cgroup controller: %v", err)
	}
	if !h.V2 {
		t.Skip("memory is on cgroup v1 here, which always has memory.max_usage_in_bytes")
	}
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		t.Fatal(err)
	}
	has := leaf.HasPeakFile()
	leaf.Remove()
	if has {
		t.Skip("this kernel has memory.peak (5.19+): no stand-in needed")
	}
}

// On cgroup v2 before 5.19, cgpeak run reports the memcg's watermark, read
// by BPF, as the cgroup peak: at least the pages touched, and equal to the
// most the traced counter ever held (the trace's usage, read in the kernel
// at each counter charge).
func TestRunPeakWithoutPeakFile(t *testing.T) {
	needNoPeakFile(t)
	cgpeak, touch := build(t)
	page := uint64(os.Getpagesize())
	const n = 3000
	tf := filepath.Join(t.TempDir(), "t.jsonl")
	r, code := runJSON(t, cgpeak, "--trace-output", tf, "--", touch, "3000")
	if code != 0 || r.PeakBytes == nil {
		t.Fatalf("exit %d, peak %v, missing %v", code, r.PeakBytes, r.Missing)
	}
	if r.PeakSource != kpeak.WatermarkSource {
		t.Errorf("peak source %q, want %q", r.PeakSource, kpeak.WatermarkSource)
	}
	if *r.PeakBytes < n*page {
		t.Errorf("peak %d B, below the %d pages touched", *r.PeakBytes, n)
	}
	var maxUsage uint64
	f, err := os.Open(tf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := trace.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ev.OtherCounter() {
			maxUsage = max(maxUsage, ev.Usage)
		}
	}
	t.Logf("%d pages touched: peak %d pages (%s), traced max of usage %d pages", n, *r.PeakBytes/page, r.PeakSource, maxUsage)
	if maxUsage*page != *r.PeakBytes {
		t.Errorf("peak %d pages, traced max of the counter's usage %d pages: want them equal", *r.PeakBytes/page, maxUsage)
	}
	if r.PeakLowerBoundBytes != nil {
		t.Errorf("a sampled lower bound beside the kernel's peak: %d B", *r.PeakLowerBoundBytes)
	}
}

// Without BPF there is no kernel peak: the report says so and offers the
// sampled memory.current as a lower bound, labelled as one, never as the
// cgroup peak. The workload holds its pages long enough to be sampled.
func TestRunNoPeakWithoutBPF(t *testing.T) {
	needNoPeakFile(t)
	cgpeak, touch := build(t)
	page := uint64(os.Getpagesize())
	out := filepath.Join(t.TempDir(), "r.json")
	c := exec.Command(cgpeak, "run", "--json", "-o", out, "--", touch, "3000")
	c.Env = append(os.Environ(), "CGPEAK_PEAK_NO_BPF=1", "TOUCH_STEPS=2", "TOUCH_PAUSE_MS=200")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	r := readReport(t, out)
	if r.PeakBytes != nil {
		t.Errorf("a cgroup peak %d B from %q without memory.peak or BPF", *r.PeakBytes, r.PeakSource)
	}
	if !strings.Contains(strings.Join(r.Missing, " "), "keeps no memory.peak") {
		t.Errorf("missing %v: want it to say the kernel keeps no peak", r.Missing)
	}
	if r.PeakLowerBoundBytes == nil || !strings.Contains(r.PeakLowerBoundSource, "lower bound") || !strings.Contains(r.PeakLowerBoundSource, "10ms") {
		t.Fatalf("lower bound %v (%q): want one, labelled with its interval", r.PeakLowerBoundBytes, r.PeakLowerBoundSource)
	}
	if *r.PeakLowerBoundBytes < 3000*page {
		t.Errorf("lower bound %d pages: the workload held 3000 pages for 200 ms, sampled every 10 ms", *r.PeakLowerBoundBytes/page)
	}
	c = exec.Command(cgpeak, "run", "--", touch, "10")
	c.Env = append(os.Environ(), "CGPEAK_PEAK_NO_BPF=1")
	b, _ := c.CombinedOutput()
	if strings.Contains(string(b), "cgroup peak memory") || !strings.Contains(string(b), "cgroup peak, lower bound") {
		t.Errorf("text report shows a kernel peak or no lower bound:\n%s", b)
	}
}

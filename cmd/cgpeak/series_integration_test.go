package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/series"
)

// Two commands of known size, three runs each: every run has its own cgroup,
// the statistics hold the runs' own figures, the comparison names the faster
// and the lighter, and each export reads back in the obvious tool's format.
func TestSeriesStatsAndExports(t *testing.T) {
	cgpeak, touch := build(t)
	dir := t.TempDir()
	j, c, m, out := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.md"), filepath.Join(dir, "r.txt")
	small, big := touch+" 100", touch+" 5000"
	cmd := exec.Command(cgpeak, "run", "--runs", "3", "--warmup", "1", "--output", out, "--export-json", j, "--export-csv", c, "--export-markdown", m, small, big)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var rep SeriesReport
	raw, _ := os.ReadFile(j)
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Results) != 2 {
		t.Fatalf("export-json: %v\n%s", err, raw)
	}
	page := float64(os.Getpagesize())
	seen := map[string]bool{}
	for i, r := range rep.Results {
		n := []float64{100, 5000}[i]
		if r.Runs != 3 || len(r.Each) != 3 || r.PeakBytes == nil {
			t.Fatalf("%s: %d runs, %d kept, peak %v", r.Command, r.Runs, len(r.Each), r.PeakBytes)
		}
		var sum, lo, hi float64 = 0, math.Inf(1), math.Inf(-1)
		for _, e := range r.Each {
			if seen[e.Cgroup] {
				t.Errorf("cgroup %s used twice", e.Cgroup)
			}
			seen[e.Cgroup] = true
			p := float64(*e.PeakBytes)
			sum, lo, hi = sum+p, math.Min(lo, p), math.Max(hi, p)
			if p < n*page {
				t.Errorf("%s: peak %v below the %v pages touched", r.Command, p, n)
			}
		}
		if math.Abs(r.PeakBytes.Mean-sum/3) > 1 || r.PeakBytes.Min != lo || r.PeakBytes.Max != hi {
			t.Errorf("%s: peak statistics %+v from runs mean %v min %v max %v", r.Command, *r.PeakBytes, sum/3, lo, hi)
		}
	}
	if rep.Results[1].PeakBytes.Mean < rep.Results[0].PeakBytes.Mean+4000*page {
		t.Errorf("the 5000-page command's peak %v is not ~4900 pages above the 100-page one's %v", rep.Results[1].PeakBytes.Mean, rep.Results[0].PeakBytes.Mean)
	}

	f, _ := os.Open(c)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(series.CSVHeader, ",") {
		t.Fatalf("export-csv: %v %q", err, rows)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, row := range rows[1:] {
		r := rep.Results[i]
		mean, _ := strconv.ParseFloat(row[col["cgroup_peak_mean_bytes"]], 64)
		wall, _ := strconv.ParseFloat(row[col["wall_mean_s"]], 64)
		if row[col["command"]] != r.Command || row[col["runs"]] != "3" || math.Abs(mean-r.PeakBytes.Mean) > 1 || wall != r.WallSeconds.Mean {
			t.Errorf("csv row %q disagrees with the JSON export", row)
		}
	}

	md, _ := os.ReadFile(m)
	lines := strings.Split(strings.TrimSpace(string(md)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "|:---") || !strings.Contains(lines[2], small) || !strings.Contains(lines[3], big) || !strings.Contains(string(md), "| 1.00 ± ") {
		t.Errorf("export-markdown:\n%s", md)
	}
	text, _ := os.ReadFile(out)
	// Under emulation the shell's start can be longer than the small
	// command's whole run: with it taken off, the fastest mean is zero and
	// no ratio is given.
	ratio := "times faster than"
	if rep.Results[rep.Fastest()].Mean <= 0 {
		ratio = "no time ratio with"
	}
	if !strings.Contains(string(text), ratio) || !strings.Contains(string(text), "(3 runs, each in a fresh cgroup)") {
		t.Errorf("report:\n%s", text)
	}
	h, _ := cgroup.FindMemory()
	parent, _ := h.Parent()
	if left := cgroup.LeavesOf(parent, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// Bad series flags fail in one line with the usage exit code.
func TestSeriesErrors(t *testing.T) {
	cgpeak, _ := build(t)
	for _, args := range [][]string{
		{"--runs", "0", "true"},
		{"--warmup", "-1", "true"},
		{"  "},
		{"true", "--", "false"},
		{"--runs", "2", "--prepare", "exit 3", "true"},
	} {
		wantOneLineError(t, cgpeak, append([]string{"run"}, args...), exitUsage)
	}
}

// SIGTERM in the middle of a series kills the running workload, makes no
// further run, and leaves no cgroup and no process behind.
func TestSeriesInterrupted(t *testing.T) {
	cgpeak, _ := build(t)
	h, _ := cgroup.FindMemory()
	parent, _ := h.Parent()
	c := exec.Command(cgpeak, "run", "--runs", "5", "--export-json", filepath.Join(t.TempDir(), "r.json"), "sleep 0.4; exec sleep 30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Into the first run's second sleep: this cgpeak's own workload, found in
	// its own leaf (other tests run sleeps of their own at the same time).
	var workload []int
	for i := 0; i < 400 && len(workload) == 0; i++ {
		for _, p := range leafProcs(parent, c.Process.Pid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); string(b) == "sleep\x0030\x00" {
				workload = append(workload, p)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(workload) == 0 {
		t.Fatal("the first run's 'sleep 30' never appeared in its cgroup")
	}
	c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("cgpeak after SIGTERM: %v, want exit 143 (128+SIGTERM)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(parent, cgroup.NamePrefix+strconv.Itoa(c.Process.Pid)+"-*")); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if alive := living(workload); len(alive) > 0 {
		t.Errorf("the workload survives: pids %v", alive)
	}
}

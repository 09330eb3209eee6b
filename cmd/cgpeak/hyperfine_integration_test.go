package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// hyperfineLayout is what tools written for hyperfine's --export-json read
// (its scripts: plot_whisker, plot_histogram, welch_ttest, plot_parametrized).
type hyperfineLayout struct {
	Results []struct {
		Command    string            `json:"command"`
		Mean       *float64          `json:"mean"`
		Stddev     *float64          `json:"stddev"`
		Median     *float64          `json:"median"`
		User       *float64          `json:"user"`
		System     *float64          `json:"system"`
		Min        *float64          `json:"min"`
		Max        *float64          `json:"max"`
		Times      []float64         `json:"times"`
		ExitCodes  []int             `json:"exit_codes"`
		Parameters map[string]string `json:"parameters"`
		Peaks      []uint64          `json:"cgroup_peaks_bytes"`
	} `json:"results"`
}

// A hyperfine command line, unchanged but for the program's name: a
// parameter list, -N, setup/prepare/conclude/cleanup, an exported JSON that
// hyperfine's tools read, and a box plot.
func TestHyperfineCommandLine(t *testing.T) {
	cgpeak, touch := build(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "hooks.log")
	j, svg := filepath.Join(dir, "h.json"), filepath.Join(dir, "h.svg")
	hook := func(what string) string { return "sh -c 'echo " + what + " {pages} >> " + log + "'" }
	args := []string{"run", "-N", "--runs", "3", "--warmup", "1", "-L", "pages", "100,2000",
		"--setup", hook("setup"), "--prepare", hook("prepare"), "--conclude", hook("conclude"), "--cleanup", hook("cleanup"),
		"--export-json", j, "--export-plot", svg, "-o", filepath.Join(dir, "out.txt"), touch + " {pages}"}
	if b, err := exec.Command(cgpeak, args...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var h hyperfineLayout
	raw, _ := os.ReadFile(j)
	if err := json.Unmarshal(raw, &h); err != nil || len(h.Results) != 2 {
		t.Fatalf("export-json: %v\n%s", err, raw)
	}
	page := uint64(os.Getpagesize())
	for i, r := range h.Results {
		n := []string{"100", "2000"}[i]
		if r.Command != touch+" "+n || !reflect.DeepEqual(r.Parameters, map[string]string{"pages": n}) {
			t.Errorf("result %d: command %q parameters %v", i, r.Command, r.Parameters)
		}
		if r.Mean == nil || r.Stddev == nil || r.Median == nil || r.User == nil || r.System == nil || r.Min == nil || r.Max == nil {
			t.Fatalf("result %d lacks one of hyperfine's fields:\n%s", i, raw)
		}
		if len(r.Times) != 3 || !reflect.DeepEqual(r.ExitCodes, []int{0, 0, 0}) || len(r.Peaks) != 3 {
			t.Errorf("result %d: times %v exit codes %v peaks %v, want 3 each", i, r.Times, r.ExitCodes, r.Peaks)
		}
		var sum, lo float64 = 0, r.Times[0]
		for _, v := range r.Times {
			sum += v
			lo = min(lo, v)
		}
		if d := sum/3 - *r.Mean; d > 1e-12 || d < -1e-12 || lo != *r.Min {
			t.Errorf("result %d: mean %v min %v do not agree with times %v", i, *r.Mean, *r.Min, r.Times)
		}
		// Each run touched its pages in a cgroup of its own.
		want := []uint64{100, 2000}[i] * page
		for _, p := range r.Peaks {
			if p < want {
				t.Errorf("result %d: cgroup peak %d below the %d bytes touched", i, p, want)
			}
		}
	}
	// hooks: setup and cleanup once per command, prepare and conclude once
	// per run, warm-up included, each with its parameter filled in.
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		count[l]++
	}
	for _, n := range []string{"100", "2000"} {
		for what, want := range map[string]int{"setup": 1, "prepare": 4, "conclude": 4, "cleanup": 1} {
			if count[what+" "+n] != want {
				t.Errorf("%s ran %d times for pages=%s, want %d (log %v)", what, count[what+" "+n], n, want, count)
			}
		}
	}
	// The same JSON through a script written for hyperfine's layout.
	// The VMs' guest has no python; the host suite runs this part.
	py, err := exec.LookPath("python3")
	if err != nil && os.Getenv("CGPEAK_VM") == "" {
		t.Fatal("python3 reads the export as hyperfine's scripts do: install it (apt-get install python3)")
	}
	if err == nil {
		script := `import json,sys,statistics
r=json.load(open(sys.argv[1]))["results"]
for x in r: assert abs(statistics.mean(x["times"])-x["mean"])<1e-12, x
print(" ".join(x["command"].split()[-1] for x in r))`
		out, err := exec.Command(py, "-c", script, j).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "100 2000" {
			t.Errorf("python over the export: %v: %s", err, out)
		}
	}
	// One box per command in each panel: wall time and cgroup peak.
	sb, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(sb, new(struct{})); err != nil {
		t.Errorf("export-plot is not well-formed: %v", err)
	}
	if n := strings.Count(string(sb), `class="box"`); n != 4 {
		t.Errorf("%d boxes in the plot, want 2 commands x 2 panels", n)
	}
}

// Times come from the launcher around the command: never less than what the
// command sleeps; through a shell, the shell's start is measured and taken
// off, and said so.
func TestSeriesTimesAndShell(t *testing.T) {
	cgpeak, _ := build(t)
	dir := t.TempDir()
	j := filepath.Join(dir, "n.json")
	if b, err := exec.Command(cgpeak, "run", "-N", "--runs", "3", "--export-json", j, "sleep 0.05").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var rep SeriesReport
	raw, _ := os.ReadFile(j)
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Shell != nil {
		t.Errorf("-N ran through a shell: %+v", rep.Shell)
	}
	for _, v := range rep.Results[0].Times {
		if v < 0.05 {
			t.Errorf("-N: a run of sleep 0.05 took %v s", v)
		}
	}
	if rep.Results[0].Each[0].WallSource == "" {
		t.Error("a run's wall time does not say where it came from")
	}
	out := filepath.Join(dir, "s.txt")
	j = filepath.Join(dir, "s.json")
	if b, err := exec.Command(cgpeak, "run", "--runs", "3", "--export-json", j, "-o", out, "sleep 0.05").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	raw, _ = os.ReadFile(j)
	rep = SeriesReport{}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	sh := rep.Shell
	if sh == nil || sh.Runs < 1 || sh.WallSeconds <= 0 || sh.CgroupPeakBytes == nil {
		t.Fatalf("shell cost not measured: %+v", sh)
	}
	for _, v := range rep.Results[0].Times {
		if v < 0.05-sh.WallSeconds {
			t.Errorf("shell: a run of sleep 0.05 took %v s with %v s of shell taken off", v, sh.WallSeconds)
		}
	}
	text, _ := os.ReadFile(out)
	if !strings.Contains(string(text), "taken off every time above") {
		t.Errorf("the report does not say the shell's time was taken off:\n%s", text)
	}
}

// Without -i a failing command ends the series with its code; with -i it is
// measured like any other. --input feeds a file to the command.
func TestSeriesFailureAndInput(t *testing.T) {
	cgpeak, _ := build(t)
	c := exec.Command(cgpeak, "run", "-N", "--runs", "2", "false")
	b, err := c.CombinedOutput()
	if c.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "--ignore-failure") || strings.Count(strings.TrimSpace(string(b)), "\n") != 0 {
		t.Errorf("a failing command without -i: %v: %q", err, b)
	}
	j := filepath.Join(t.TempDir(), "i.json")
	c = exec.Command(cgpeak, "run", "-N", "-i", "--runs", "2", "--export-json", j, "false")
	if b, _ := c.CombinedOutput(); c.ProcessState.ExitCode() != 1 {
		t.Errorf("with -i: exit %d, want the command's 1: %s", c.ProcessState.ExitCode(), b)
	}
	var h hyperfineLayout
	raw, _ := os.ReadFile(j)
	if err := json.Unmarshal(raw, &h); err != nil || len(h.Results) != 1 || !reflect.DeepEqual(h.Results[0].ExitCodes, []int{1, 1}) {
		t.Errorf("with -i: %v %s", err, raw)
	}
	in := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(in, []byte("from the input file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c = exec.Command(cgpeak, "run", "-N", "--runs", "2", "--show-output", "-q", "--input", in, "cat")
	if b, err := c.Output(); err != nil || string(b) != "from the input file\nfrom the input file\n" {
		t.Errorf("--input: %v: %q", err, b)
	}
}

// Without --runs a series fills hyperfine's minimum time within
// --min-runs/--max-runs.
func TestSeriesRunCount(t *testing.T) {
	cgpeak, _ := build(t)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"-m", "2", "-M", "3", "sleep 0.01"}, 3},     // 3 s would take 300 runs: capped
		{[]string{"-m", "2", "sleep 1.1"}, 3},                 // 3 s / 1.1 s: 3 runs
		{[]string{"--runs", "2", "-m", "5", "sleep 0.01"}, 2}, // --runs wins
	} {
		j := filepath.Join(t.TempDir(), "c.json")
		args := append([]string{"run", "-N", "--export-json", j}, c.args...)
		if b, err := exec.Command(cgpeak, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c.args, err, b)
		}
		var h hyperfineLayout
		raw, _ := os.ReadFile(j)
		if err := json.Unmarshal(raw, &h); err != nil || len(h.Results[0].Times) != c.want {
			t.Errorf("%v: %v %d runs, want %d", c.args, err, len(h.Results[0].Times), c.want)
		}
	}
}

// Traced series compare corrected peaks too: a workload touching N pages
// beside one touching 3N has about a third of its corrected peak (start-up
// pages aside), said in the summary and in the JSON.
func TestSeriesComparesCorrectedPeaks(t *testing.T) {
	if !tracingHere(t) {
		t.Skip("no charge tracing backend on this kernel (see cgpeak probe)")
	}
	cgpeak, touch := build(t)
	const n = 2048
	j := filepath.Join(t.TempDir(), "c.json")
	out, err := exec.Command(cgpeak, "run", "-N", "--trace", "--runs", "3", "--export-json", j,
		touch+" "+strconv.Itoa(n), touch+" "+strconv.Itoa(3*n)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var rep SeriesReport
	raw, _ := os.ReadFile(j)
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Comparisons) != 1 {
		t.Fatalf("%v: %s", err, raw)
	}
	c := rep.Comparisons[0]
	// Results keep the commands' order; c.Index is the one compared with
	// the fastest, which is the small one unless timing says otherwise.
	small, big := rep.Results[0], rep.Results[1]
	if c.Corrected == nil || small.CorrectedBytes == nil || big.CorrectedBytes == nil {
		t.Fatalf("no corrected-peak comparison: %+v", c)
	}
	// Ratio is this command's mean over the fastest's, whichever that is.
	want := big.CorrectedBytes.Mean / small.CorrectedBytes.Mean
	if rep.Results[c.Index] == small {
		want = 1 / want
	}
	if d := c.Corrected.Ratio - want; d > 1e-9 || d < -1e-9 {
		t.Errorf("corrected ratio %v, means give %v", c.Corrected.Ratio, want)
	}
	if !strings.Contains(string(out), "times its corrected peak (traced charges") {
		t.Errorf("the summary does not compare corrected peaks:\n%s", out)
	}
	page := float64(os.Getpagesize())
	if r := (big.CorrectedBytes.Mean - 3*n*page) / (small.CorrectedBytes.Mean - n*page); small.CorrectedBytes.Mean < n*page || r < 0.5 || r > 2 {
		t.Errorf("corrected peaks %v and %v bytes for %d and %d pages: start-up pages differ by %vx", small.CorrectedBytes.Mean, big.CorrectedBytes.Mean, n, 3*n, r)
	}
}

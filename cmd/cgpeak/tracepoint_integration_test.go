package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/cgpeak/cgpeak/internal/replay"
	"github.com/cgpeak/cgpeak/loader"
	"github.com/cgpeak/cgpeak/trace"
)

// The tracepoint backend on a workload touching exactly n pages: real use
// peaks within a few pages of n (the program's own binary, stack and page
// tables are the rest), the watermark it read is the kernel's peak file,
// the header says what it cannot see, and the saved trace replays to the
// same answer. Where fentry works too (7.x), it runs the same workload and
// the two corrected peaks agree.
func TestTracepointBackend(t *testing.T) {
	spec, _ := btf.LoadKernelSpec()
	if a := loader.ProbeTracepoint(spec); !a.OK {
		t.Skipf("no memcg stat tracepoints to trace with here: %s", a.Detail)
	}
	cgpeak, touch := build(t)
	page := uint64(os.Getpagesize())
	fentry := loader.ProbeFentry(spec).OK
	for _, n := range []uint64{1000, 25600} {
		for _, mode := range []string{"summary", "charges"} {
			t.Run(strconv.FormatUint(n, 10)+"/"+mode, func(t *testing.T) {
				tf := filepath.Join(t.TempDir(), "t.jsonl")
				args := []string{"--backend", "tracepoint", "--trace-output", tf}
				if mode == "charges" {
					args = append(args, "--trace-charges")
				}
				r, code := runJSON(t, cgpeak, append(args, "--", touch, strconv.FormatUint(n, 10))...)
				if code != 0 || r.Trace == nil || r.PeakBytes == nil {
					t.Fatalf("exit %d, trace %v, peak %v, missing %v", code, r.Trace, r.PeakBytes, r.Missing)
				}
				x := r.Trace
				t.Logf("n=%d %s: %s peak %d pages, traced watermark %d, corrected peak %d pages, %d events; %s",
					n, mode, r.PeakSource, *r.PeakBytes/page, x.WatermarkBytes/page, x.CorrectedPeakBytes/page, x.Events, x.Explanation)
				if x.Backend != loader.Tracepoint {
					t.Errorf("backend %q", x.Backend)
				}
				if x.WatermarkBytes != *r.PeakBytes {
					t.Errorf("traced watermark %d B, %s %d B: want them equal", x.WatermarkBytes, r.PeakSource, *r.PeakBytes)
				}
				if c := x.CorrectedPeakBytes / page; c < n || c > n+160 {
					t.Errorf("corrected peak %d pages for %d touched: want within [n, n+160]", c, n)
				}
				if a := x.Kinds["anon"].Pages; a < n {
					t.Errorf("anon pages added %d, below the %d touched (kinds %v)", a, n, x.Kinds)
				}
				h := traceHeader(t, tf)
				if h.Backend != loader.Tracepoint || len(h.CannotSee) == 0 {
					t.Errorf("header backend %q, cannot_see %v", h.Backend, h.CannotSee)
				}
				sameReport(t, x, explainFile(t, cgpeak, tf))
				if !fentry || mode != "summary" {
					return
				}
				f, code := runJSON(t, cgpeak, "--backend", "fentry", "--trace", "--", touch, strconv.FormatUint(n, 10))
				if code != 0 || f.Trace == nil {
					t.Fatalf("fentry: exit %d", code)
				}
				d := int64(f.Trace.CorrectedPeakBytes/page) - int64(x.CorrectedPeakBytes/page)
				t.Logf("fentry on the same workload: corrected peak %d pages (%+d)", f.Trace.CorrectedPeakBytes/page, d)
				if d < -tracepointBound || d > tracepointBound {
					t.Errorf("corrected peaks: fentry %d pages, tracepoint %d: want within %d pages", f.Trace.CorrectedPeakBytes/page, x.CorrectedPeakBytes/page, tracepointBound)
				}
			})
		}
	}
}

// tracepointBound is how far the tracepoint backend's corrected peak may be
// from fentry's on the same workload, in pages: charges not yet in a
// statistic, and the run-to-run difference of what starting a program costs.
const tracepointBound = 32

func traceHeader(t *testing.T, path string) trace.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := trace.NewReader(f)
	if err != nil {
		t.Fatalf("no header in %s: %v", path, err)
	}
	return rd.Header
}

// withTracepoint adds the tracepoint backend to bs where the kernel lets it
// run, and skips the test where no backend can.
func withTracepoint(t *testing.T, bs []string) []string {
	spec, _ := btf.LoadKernelSpec()
	if loader.ProbeTracepoint(spec).OK {
		bs = append(bs, loader.Tracepoint)
	}
	if len(bs) == 0 {
		t.Skip("this kernel offers neither fentry, kprobes nor memcg tracepoints (see cgpeak probe); charge tracing is tested in the VMs")
	}
	return bs
}

// explainFile is `cgpeak explain --json` of a trace file.
func explainFile(t *testing.T, cgpeak, tf string) *replay.Report {
	t.Helper()
	out, err := exec.Command(cgpeak, "explain", "--json", tf).Output()
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	var ex replay.Report
	if err := json.Unmarshal(out, &ex); err != nil {
		t.Fatal(err)
	}
	return &ex
}

// sameReport checks that a live trace's report and the report `cgpeak
// explain` makes of the file that trace wrote agree on every field both
// carry: one report type, built in one place, from the same events.
func sameReport(t *testing.T, live, replayed *replay.Report) {
	t.Helper()
	l, r := jsonFields(t, live), jsonFields(t, replayed)
	// Only a live trace knows these; only a replay has a file and a schema
	// of its own (the live report is nested in its run's).
	for _, k := range []string{"trace_output", "not_traced", "program_runs", "program_seconds", "backend_note", "stocks_note"} {
		delete(l, k)
	}
	for _, k := range []string{"schema", "trace"} {
		delete(r, k)
	}
	if _, ok := l["breakdown"]; !ok || len(l) < 25 {
		t.Fatalf("live report has only %d fields, no breakdown: %v", len(l), l)
	}
	for k, v := range l {
		if w, ok := r[k]; !ok {
			t.Errorf("%s: live %s, absent from the replay", k, v)
		} else if string(v) != string(w) {
			t.Errorf("%s: live %s, replayed %s", k, v, w)
		}
	}
	for k, v := range r {
		if _, ok := l[k]; !ok {
			t.Errorf("%s: replayed %s, absent from the live report", k, v)
		}
	}
}

func jsonFields(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A trace of the tracepoint backend says what it records and what it
// cannot in every place that used to contradict it: the live report's
// "charged for" names statistics, not the kernel stacks it has none of, and
// a profile of such a trace is refused in one line with its own exit code
// instead of an empty table (issue 25, item 6).
func TestTracepointTraceHasNoStacks(t *testing.T) {
	spec, _ := btf.LoadKernelSpec()
	if a := loader.ProbeTracepoint(spec); !a.OK {
		t.Skipf("no memcg stat tracepoints to trace with here: %s", a.Detail)
	}
	cgpeak, touch := build(t)
	tf := filepath.Join(t.TempDir(), "t.trace")
	out, err := exec.Command(cgpeak, "run", "--backend", "tracepoint", "--trace-charges", "--trace-output", tf, "--", touch, "200").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "(pages added to each memory.stat statistic)") || strings.Contains(string(out), "by the kernel stack of each request") {
		t.Errorf("the report claims stacks the backend has not:\n%s", out)
	}
	for _, flag := range [][]string{{"--top", "5"}, {"--flame", filepath.Join(t.TempDir(), "f.svg")}} {
		wantOneLineError(t, cgpeak, append(append([]string{"explain"}, flag...), tf), exitNoStacks)
	}
}

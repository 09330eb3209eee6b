package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/internal/replay"
)

var update = flag.Bool("update", false, "rewrite the golden explanations of testdata/traces")

// Traces recorded in the VMs (6.1 and 7.3) and on a cgroup v1 host (6.18, the
// tracepoint backend; touchN: N pages touched on CPU 0)
// replay offline to their committed explanations, and the replay holds the
// kernel's own figures: the traced watermark is the memory.peak read at the
// end, and the corrected peak lies between the touched pages and it. A trace
// named "unseen" lacks calls the kernel made (recorded on 7.3 with kprobes:
// a stock drain and 65 pages of uncharges never reached the probes): the
// replay must notice, follow the kernel, and mark the result incomplete.
func TestExplainGoldenTraces(t *testing.T) {
	traces, _ := filepath.Glob("../../testdata/traces/*.jsonl")
	if len(traces) < 2 {
		t.Fatalf("want the recorded traces of both VM kernels, found %v", traces)
	}
	for _, tf := range traces {
		t.Run(filepath.Base(tf), func(t *testing.T) {
			f, err := os.Open(tf)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ex, pts, err := replay.Trace(f, filepath.Base(tf), true)
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`touch(\d+)`).FindStringSubmatch(tf)
			if m == nil {
				t.Fatalf("%s: name the trace after its workload (touchN)", tf)
			}
			n, _ := strconv.ParseUint(m[1], 10, 64)
			unseen := strings.Contains(tf, "unseen")
			if ex.Exact == unseen || (ex.Resyncs > 0) != unseen {
				t.Errorf("complete %v with %d resyncs (%v)", ex.Exact, ex.Resyncs, ex.Incomplete)
			}
			if ex.PeakBytes == nil || ex.WatermarkBytes != *ex.PeakBytes {
				t.Errorf("watermark %d, memory.peak %v", ex.WatermarkBytes, ex.PeakBytes)
			}
			if ex.CorrectedPeakBytes < n*ex.PageSize || ex.CorrectedPeakBytes > ex.WatermarkBytes {
				t.Errorf("corrected peak %d outside [%d pages, watermark %d]", ex.CorrectedPeakBytes, n, ex.WatermarkBytes)
			}
			var buf bytes.Buffer
			writeTraceReport(&buf, ex)
			writeTimeline(&buf, pts)
			golden := strings.TrimSuffix(tf, ".jsonl") + ".explain.txt"
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/cgpeak/ -run Golden -args -update to record it)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("explanation of %s changed:\n%s\nwant:\n%s", tf, buf.String(), want)
			}
		})
	}
}

// A malformed trace is an error naming its line, with its own exit code.
func TestExplainMalformed(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"type":"header","schema":1,"batch_pages":64,"page_size":4096}`+"\n"+`{"t":1,"op":"charge","pages":1}`+"\n{\n"), 0o644)
	if code := explainCmd([]string{bad}); code != exitBadTrace {
		t.Errorf("exit %d, want %d", code, exitBadTrace)
	}
	f, _ := os.Open(bad)
	defer f.Close()
	if _, _, err := replay.Trace(f, bad, false); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v, want one naming line 3", err)
	}
}

// A trace cut short (no end line) is marked incomplete, never exact.
func TestExplainTruncated(t *testing.T) {
	b, err := os.ReadFile("../../testdata/traces/bookworm-touch196.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	ex, _, err := replay.Trace(strings.NewReader(strings.Join(lines[:len(lines)/2], "")), "cut", false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeTraceReport(&out, ex)
	if ex.Exact || !strings.Contains(out.String(), "INCOMPLETE") {
		t.Errorf("a cut trace reads as complete:\n%s", out.String())
	}
}

const testHeader = `{"type":"header","schema":1,"kernel":"6.1.0","batch_pages":64,"page_size":4096,"backend":"fentry","mode":"charges"}`

// Absurd figures are refused with the line that holds them, never printed
// as nonsense (issue 11, item 7).
func TestExplainRefusesAbsurdFigures(t *testing.T) {
	for _, c := range []struct{ name, trace, line string }{
		{"pages 2^63", testHeader + "\n" + `{"t":1,"cpu":0,"op":"counter_charge","pages":9223372036854775808,"usage":1,"watermark":1}`, "line 2"},
		{"usage 2^64-1", testHeader + "\n" + `{"t":1,"cpu":0,"op":"charge","pages":1}` + "\n" + `{"t":2,"cpu":0,"op":"counter_uncharge","pages":1,"usage":18446744073709551615}`, "line 3"},
		{"page_size 2^64-1", strings.Replace(testHeader, `"page_size":4096`, `"page_size":18446744073709551615`, 1), "line 1"},
		{"page_size 3", strings.Replace(testHeader, `"page_size":4096`, `"page_size":3`, 1), "line 1"},
		{"negative cpu", testHeader + "\n" + `{"t":1,"cpu":-1,"op":"charge","pages":1}`, "line 2"},
		{"peak 2^64-1", testHeader + "\n" + `{"type":"end","events":0,"lost":0,"cgroup_peak_bytes":18446744073709551615}`, "line 2"},
	} {
		p := filepath.Join(t.TempDir(), "t.jsonl")
		os.WriteFile(p, []byte(c.trace+"\n"), 0o644)
		if code := explainCmd([]string{"--json", p}); code != exitBadTrace {
			t.Errorf("%s: exit %d, want %d", c.name, code, exitBadTrace)
		}
		_, _, err := replay.Trace(strings.NewReader(c.trace+"\n"), c.name, false)
		if err == nil || !strings.Contains(err.Error(), c.line) {
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.line)
		}
	}
}

// A trace whose end reports 5000 lost events of a 1 MiB watermark printed
// "800 KiB ± 3.74 GiB": now the range it prints stays within the watermark
// (per-charge mode keeps no maximum in the kernel), and a per-request
// summary, whose kernel side kept the maximum, prints it as exact.
func TestExplainLostEventsWithinWatermark(t *testing.T) {
	for mode, want := range map[string]string{
		"charges": "corrected peak           800.0 KiB (between 0 B and 1.00 MiB: 5000 calls missed)",
		"summary": "corrected peak           808.0 KiB (exact all the same: the kernel kept what it is taken from, whatever the 5000 calls missed or lost)",
	} {
		b, err := os.ReadFile("../../testdata/traces/bookworm-seed-" + mode + "-touch196.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		tr := regexp.MustCompile(`("type":"end","events":\d+,"lost":)0`).ReplaceAllString(string(b), "${1}5000")
		ex, _, err := replay.Trace(strings.NewReader(tr), mode, false)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		writeTraceReport(&buf, ex)
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%s: report\n%s\nwant it to say %q", mode, buf.String(), want)
		}
	}
}

// The timeline's legend names the files of the trace's own cgroup version:
// a v1 trace's counter is read in memory.usage_in_bytes and
// memory.max_usage_in_bytes, which have no memory.current or memory.peak.
func TestPlotLegendNamesTheTracesFiles(t *testing.T) {
	for tf, want := range map[string][2]string{
		"../../testdata/traces/host-v1-tracepoint-touch25600-skipped-others.jsonl": {"memory.max_usage_in_bytes", "memory.peak"},
		"../../testdata/traces/bookworm-touch196.jsonl":                            {"memory.peak", "max_usage_in_bytes"},
	} {
		svg := filepath.Join(t.TempDir(), "t.svg")
		if code := explainCmd([]string{"--plot", svg, "--json", tf}); code != 0 {
			t.Fatalf("%s: exit %d", tf, code)
		}
		b, _ := os.ReadFile(svg)
		if !strings.Contains(string(b), "(what "+want[0]+" reads)") || strings.Contains(string(b), want[1]+" reads") {
			t.Errorf("%s: the legend does not name %s alone", tf, want[0])
		}
	}
}

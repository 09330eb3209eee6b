package series

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

type run Figures

func (r run) SeriesFigures() Figures { return Figures(r) }

func peak(v uint64) *uint64 { return &v }

// The policy on runs whose figures the test chose: the statistics are those
// of the figures, a peak off by less than the stocks hold is no outlier and
// one off by more is, and failed runs are counted.
func TestSummarizePolicy(t *testing.T) {
	const stock = 64 * 4096 * 2
	mk := func(peaks ...uint64) []run {
		var rs []run
		for i, p := range peaks {
			rs = append(rs, run{Wall: 1, User: 0.5, Sys: 0.1, MaxRSS: 4096, Peak: peak(p), PeakSource: "memory.peak", ExitCode: i % 2})
		}
		return rs
	}
	base := uint64(100 << 20)
	near := Summarize("near", mk(base, base+4096, base+8192, base+4096, base, base+stock/2), stock)
	if near.PeakBytes == nil || near.PeakBytes.Median != float64(base+4096) || near.PeakBytes.Max != float64(base+stock/2) {
		t.Fatalf("peak statistics %+v", near.PeakBytes)
	}
	for _, w := range near.Warnings {
		if strings.Contains(w, "cgroup peaks are outliers") {
			t.Errorf("a peak within the stocks' reach called an outlier: %q", w)
		}
	}
	far := Summarize("far", mk(base, base+4096, base+8192, base+4096, base, base+4*stock), stock)
	found := false
	for _, w := range far.Warnings {
		found = found || strings.Contains(w, "1 of 6 cgroup peaks are outliers (runs 6)")
	}
	if !found {
		t.Errorf("a peak 4 stocks off not flagged: %q", far.Warnings)
	}
	if !strings.Contains(strings.Join(far.Warnings, "|"), "3 of 6 runs exited non-zero") || len(far.ExitCodes) != 6 {
		t.Errorf("failed runs not counted: %q %v", far.Warnings, far.ExitCodes)
	}
	if far.WallSeconds.Mean != 1 || far.WallSeconds.Stddev != 0 || far.Runs != 6 || far.CorrectedBytes != nil {
		t.Errorf("wall %+v runs %d corrected %v", far.WallSeconds, far.Runs, far.CorrectedBytes)
	}
	rep := &Report[run]{Results: []*Result[run]{far, near}}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 3 || rows[1][0] != "far" || rows[2][len(rows[2])-1] != "3" {
		t.Errorf("csv %v %q", err, rows)
	}
}

// A first run far slower, or far heavier, than the rest is called what it
// most often is, a cold cache, with hyperfine's remedies; an outlier later
// in the series keeps the general warning.
func TestColdFirstRun(t *testing.T) {
	const stock = 64 * 4096 * 2
	mk := func(walls []float64, peaks []uint64) []run {
		var rs []run
		for i := range walls {
			rs = append(rs, run{Wall: walls[i], Peak: peak(peaks[i]), PeakSource: "memory.peak"})
		}
		return rs
	}
	base := uint64(10 << 20)
	flat := []uint64{base, base, base, base, base, base}
	has := func(ws []string, s string) bool { return strings.Contains(strings.Join(ws, "|"), s) }
	cold := Summarize("cold", mk([]float64{0.5, 0.1, 0.1, 0.1, 0.1, 0.1}, flat), stock)
	if !has(cold.Warnings, "the first run took much longer") || !has(cold.Warnings, "--warmup N") || !has(cold.Warnings, "drop_caches") || has(cold.Warnings, "other programs") {
		t.Errorf("a slow first run: %q", cold.Warnings)
	}
	late := Summarize("late", mk([]float64{0.1, 0.1, 0.5, 0.1, 0.1, 0.1}, flat), stock)
	if has(late.Warnings, "first run") || !has(late.Warnings, "1 of 6 wall times are statistical outliers (runs 3): other programs") {
		t.Errorf("a slow third run: %q", late.Warnings)
	}
	fast := Summarize("fast", mk([]float64{0.01, 0.1, 0.1, 0.1, 0.1, 0.1}, flat), stock)
	if has(fast.Warnings, "first run") {
		t.Errorf("a fast first run called cold: %q", fast.Warnings)
	}
	heavy := Summarize("heavy", mk([]float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, []uint64{base + 8*stock, base, base, base + 4096, base, base}), stock)
	if !has(heavy.Warnings, "the first run's cgroup peak stands out (4096 KiB above the median)") || has(heavy.Warnings, "cgroup peaks are outliers") {
		t.Errorf("a heavy first run: %q", heavy.Warnings)
	}
}

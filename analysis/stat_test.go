package analysis

import (
	"strings"
	"testing"
)

// A tracepoint trace: real use is what the events (and the kernel side's
// per-CPU summary) say; an exiting process's unmaps, which lower real use
// while usage still stands at the watermark, do not lower the explanation.
func TestStatTraceRealUse(t *testing.T) {
	m := NewModel(64, true)
	ev := func(op Op, kind string, pages, usage, wm uint64, real int64) {
		m.Apply(Event{Time: uint64(m.events + 1), CPU: 0, Op: op, Kind: kind, Pages: pages, Usage: usage, Watermark: wm, Real: real})
	}
	ev(OpStatAdd, "kernel", 1, 64, 64, 1)
	ev(OpStatAdd, "anon", 69, 128, 128, 70)
	ev(OpStatSub, "anon", 69, 128, 128, 1) // the exit's unmap, before the uncharge
	r := m.Result()
	if r.CorrectedPeak.Pages != 70 || r.Watermark != 128 {
		t.Fatalf("corrected peak %d, watermark %d; want 70, 128", r.CorrectedPeak.Pages, r.Watermark)
	}
	if a := r.AtWatermark; a == nil || a.InUse != 70 || a.StockTotal != 58 {
		t.Fatalf("at the watermark %+v, want 70 in use and 58 elsewhere", a)
	}
	if r.Totals.RequestedPages != 70 || r.Totals.UnchargedPages != 69 || r.Kinds["anon"].Pages != 69 || r.Kinds["kernel"].Pages != 1 {
		t.Errorf("totals %+v kinds %+v", r.Totals, r.Kinds)
	}
	if len(r.CPUs) != 0 {
		t.Errorf("per-CPU request stats %+v from stat updates, which are no requests", r.CPUs)
	}
	if ex := Explain(r, "memory.peak", 128*4096, 4096); !strings.Contains(ex, "70 pages in use") {
		t.Errorf("explanation %q", ex)
	}

	// The kernel side saw more than it emitted: a higher peak and more
	// real use at the watermark on CPU 1, and the pages by statistic.
	m.ApplySummary(Summary{Stats: true, CPUs: map[int]SummaryCPU{
		0: {MaxReal: 70, Watermark: 128, WatermarkReal: 50, StatAdded: 70, StatRemoved: 69, StatKinds: map[string]uint64{"anon": 69, "kernel": 1}},
		1: {MaxReal: 75, MaxRealTime: 9, Watermark: 128, WatermarkReal: 72, WatermarkTime: 9, StatAdded: 5, StatKinds: map[string]uint64{"file": 5}},
	}})
	r = m.Result()
	if r.CorrectedPeak.Pages != 75 || r.CorrectedPeak.Time != 9 {
		t.Errorf("corrected peak %+v, want 75 pages at 9", r.CorrectedPeak)
	}
	if a := r.AtWatermark; a == nil || a.InUse != 72 || a.StockTotal != 56 {
		t.Errorf("at the watermark %+v, want 72 in use and 56 elsewhere", a)
	}
	if r.Totals.RequestedPages != 75 || r.Totals.UnchargedPages != 69 || r.Kinds["file"].Pages != 5 || r.Kinds["anon"].Pages != 69 {
		t.Errorf("totals %+v kinds %+v", r.Totals, r.Kinds)
	}
}

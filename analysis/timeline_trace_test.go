package analysis_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/trace"
)

// Every recorded trace replayed with a timeline of at most 4 intervals (28
// points) against the same replay keeping every step: the bound holds after
// each event, and the plot's peaks are the same.
func TestTimelineBoundedRecorded(t *testing.T) {
	traces, _ := filepath.Glob("../testdata/traces/*.jsonl")
	if len(traces) == 0 {
		t.Fatal("no recorded traces in testdata/traces")
	}
	for _, tf := range traces {
		t.Run(filepath.Base(tf), func(t *testing.T) {
			f, err := os.Open(tf)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rd, err := trace.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			bounded, every := analysis.NewModelBins(rd.Header.Batch, 4), analysis.NewModelBins(rd.Header.Batch, 0)
			for _, m := range []*analysis.Model{bounded, every} {
				if rd.Header.Attached {
					m.Attached()
				}
				if rd.Header.StocksRead {
					m.StocksRead()
				}
			}
			for {
				e, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if e.OtherCounter() {
					continue
				}
				bounded.Apply(e)
				every.Apply(e)
				if n := bounded.TimelineHeld(); n > 28 {
					t.Fatalf("the timeline holds %d points, bound 28", n)
				}
			}
			if rd.End != nil && rd.End.Summary != nil {
				bounded.ApplySummary(*rd.End.Summary)
				every.ApplySummary(*rd.End.Summary)
			}
			b, e := bounded.Result().Timeline, every.Result().Timeline
			if len(e.Points) > 28 && b.Interval == 0 {
				t.Fatalf("%d steps, none thinned", len(e.Points))
			}
			t.Logf("%d steps, %d kept at intervals of %d ns", len(e.Points), len(b.Points), b.Interval)
			analysis.SameExtremes(t, e.Points, b.Points)
		})
	}
}

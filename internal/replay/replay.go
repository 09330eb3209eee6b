// Package replay explains a saved charge trace offline: it streams the
// trace through the model of the counter and the per-CPU stocks and says how
// the cgroup's peak splits into real use and stocked pages, and whether the
// trace was a full record. No root, no BPF: a saved trace gives the same
// answer on any machine.
package replay

import (
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/report"
	"github.com/cgpeak/cgpeak/trace"
)

// Explanation is what a saved trace says about its cgroup's peak (`cgpeak
// explain --json`); byte figures, stable names (docs/json.md).
type Explanation struct {
	Schema             int               `json:"schema"`
	Trace              string            `json:"trace"`
	Kernel             string            `json:"kernel"`
	Backend            string            `json:"backend"`
	Mode               string            `json:"mode"`
	StocksRead         bool              `json:"stocks_read,omitempty"` // a summary whose events carry the kernel's stocks
	BatchPages         uint64            `json:"batch_pages"`
	PageSize           uint64            `json:"page_size"`
	Events             uint64            `json:"events"`
	Lost               uint64            `json:"lost_events"`
	Missed             map[string]uint64 `json:"missed_calls,omitempty"`
	Resyncs            uint64            `json:"resyncs"`
	ResyncPages        uint64            `json:"resync_pages"`
	Exact              bool              `json:"exact"` // end line present, nothing lost, missed or resynced: as a live trace's report
	Incomplete         []string          `json:"incomplete,omitempty"`
	PeakBytes          *uint64           `json:"cgroup_peak_bytes,omitempty"`
	PeakSource         string            `json:"cgroup_peak_source,omitempty"`
	WatermarkBytes     uint64            `json:"traced_watermark_bytes"`
	CorrectedPeakBytes uint64            `json:"corrected_peak_bytes"`
	// Within CorrectedPeakErrorBytes of the real peak, from MissedCalls
	// calls missed or lost (analysis.ErrorBound).
	CorrectedPeakErrorBytes uint64                          `json:"corrected_peak_error_bytes"`
	MissedCalls             uint64                          `json:"missed_or_lost_calls"`
	Explanation             string                          `json:"explanation"`
	Breakdown               analysis.Breakdown              `json:"breakdown"`
	PerCPU                  map[int]analysis.CPUStats       `json:"per_cpu"`
	PerProcess              map[int]analysis.ProcStats      `json:"per_process"`
	Kinds                   map[string]analysis.KindStats   `json:"charges_by_kind,omitempty"` // pages requested, by what for
	Cgroups                 map[string]analysis.CgroupStats `json:"per_cgroup,omitempty"`      // descendants: requests per cgroup directory
}

// Trace streams a saved trace through the model and explains its peak;
// with keepTimeline it also returns every step of the replay (for a plot).
// A trace that cannot be read is an error naming its line.
func Trace(r io.Reader, name string, keepTimeline bool) (*Explanation, []analysis.Point, error) {
	rd, err := trace.NewReader(r)
	if err != nil {
		return nil, nil, err
	}
	h := rd.Header
	m := analysis.NewModel(h.Batch, keepTimeline)
	if h.Attached {
		m.Attached()
	}
	if h.StocksRead {
		m.StocksRead()
	}
	var n uint64
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		n++
		if ev := e; !ev.OtherCounter() {
			if ev.Cgroup == 0 {
				ev.Cgroup = h.CgroupID
			}
			m.Apply(ev)
		}
	}
	if rd.End != nil && rd.End.Summary != nil {
		m.ApplySummary(*rd.End.Summary)
	}
	res := m.Result()
	ex := &Explanation{Schema: report.Schema, Trace: name, Kernel: h.Kernel, Backend: h.Backend, Mode: h.Mode, StocksRead: h.StocksRead, BatchPages: h.Batch, PageSize: h.PageSize, Events: n,
		PerCPU: res.CPUs, PerProcess: res.Procs, Kinds: res.Kinds, Resyncs: res.Totals.Resyncs, ResyncPages: res.Totals.ResyncPages}
	var inconsistent []string
	if res.CorrectedPeak.Pages > res.Watermark {
		// Real use never exceeds usage, nor usage the watermark.
		inconsistent = append(inconsistent, fmt.Sprintf("the replayed real use (%d pages) exceeds the traced watermark (%d pages): the trace contradicts itself", res.CorrectedPeak.Pages, res.Watermark))
		res.CorrectedPeak.Pages = res.Watermark
	}
	var overflow bool
	ex.WatermarkBytes, overflow = mulBytes(res.Watermark, h.PageSize)
	if ex.CorrectedPeakBytes, _ = mulBytes(res.CorrectedPeak.Pages, h.PageSize); overflow {
		return nil, nil, fmt.Errorf("the traced watermark of %d pages of %d bytes overflows 64 bits", res.Watermark, h.PageSize)
	}
	var peak uint64
	label := ""
	if rd.End == nil {
		ex.Incomplete = []string{"the trace has no end line (cut short)"}
	} else {
		ex.Lost, ex.Missed = rd.End.Lost, rd.End.Missed
		if rd.End.PeakBytes != nil {
			peak, label = *rd.End.PeakBytes, rd.End.PeakSource
			ex.PeakBytes, ex.PeakSource = rd.End.PeakBytes, label
		}
	}
	if h.Descendants {
		var names map[string]string
		if rd.End != nil {
			names = rd.End.Cgroups
		}
		ex.Cgroups = analysis.CgroupsByName(res.Cgroups, names)
	}
	ex.Incomplete = append(ex.Incomplete, analysis.Incomplete(ex.Lost, ex.Missed, res.Totals)...)
	ex.Incomplete = append(ex.Incomplete, inconsistent...)
	ex.Exact = len(ex.Incomplete) == 0
	b := analysis.ErrorBound(ex.Lost, ex.Missed, res.Totals, h.Batch, h.CPUs)
	ex.CorrectedPeakErrorBytes, ex.MissedCalls = b.Pages*h.PageSize, b.Calls
	ex.Breakdown = analysis.Break(res, label, peak, h.PageSize)
	ex.Explanation = ex.Breakdown.String()
	return ex, res.Timeline, nil
}

// mulBytes is pages x page size; true when it overflows (then the most).
func mulBytes(pages, pageSize uint64) (uint64, bool) {
	hi, lo := bits.Mul64(pages, pageSize)
	if hi != 0 {
		return math.MaxUint64, true
	}
	return lo, false
}

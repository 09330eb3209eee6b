package replay

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/cgpeak/cgpeak/analysis"
)

// Report is what a charge trace says about its cgroup's peak, live (`cgpeak
// run --trace`, `cgpeak trace`: the trace object of their reports) or
// replayed from a file (`cgpeak explain`): one structure, built by
// NewReport, so the two agree on every figure (docs/json.md). Byte
// figures, stable names.
type Report struct {
	Schema      int    `json:"schema,omitempty"` // explain only: there the report is the whole object
	Trace       string `json:"trace,omitempty"`  // explain: the trace file replayed
	Kernel      string `json:"kernel,omitempty"`
	Backend     string `json:"backend"`
	BackendNote string `json:"backend_note,omitempty"` // live, --backend auto: why this one
	Mode        string `json:"mode"`                   // summary, or charges: every charge recorded
	// StocksRead: summary mode read the per-CPU stocks from the kernel, so
	// requests the stocks served are counted in pages only.
	StocksRead  bool              `json:"stocks_read,omitempty"`
	StocksNote  string            `json:"stocks_note,omitempty"` // live summary mode: why the stocks were not read
	BatchPages  uint64            `json:"batch_pages"`
	PageSize    uint64            `json:"page_size"`
	Events      uint64            `json:"events"`
	Lost        uint64            `json:"lost_events"`
	Missed      map[string]uint64 `json:"missed_calls,omitempty"`
	Resyncs     uint64            `json:"resyncs"`
	ResyncPages uint64            `json:"resync_pages"`
	Exact       bool              `json:"exact"` // end seen, nothing lost, missed or resynced
	Incomplete  []string          `json:"incomplete,omitempty"`
	Attached    bool              `json:"attached,omitempty"` // began on a running cgroup: figures cover the traced window
	// The cgroup's own peak the explanation splits (read when the traced
	// run ended), absent where the kernel has none.
	PeakBytes          *uint64 `json:"cgroup_peak_bytes,omitempty"`
	PeakSource         string  `json:"cgroup_peak_source,omitempty"`
	WatermarkBytes     uint64  `json:"traced_watermark_bytes"`
	CorrectedPeakBytes uint64  `json:"corrected_peak_bytes"`
	// The real peak lies between CorrectedPeakLowBytes and
	// CorrectedPeakHighBytes, never outside [0, the watermark]; the
	// corrected peak is inside, within CorrectedPeakErrorBytes of either
	// end, from the MissedCalls calls missed or lost (analysis.PeakRange);
	// the error is 0 when the trace is exact, or where the kernel kept
	// what the peak is taken from.
	CorrectedPeakErrorBytes uint64 `json:"corrected_peak_error_bytes"`
	CorrectedPeakLowBytes   uint64 `json:"corrected_peak_low_bytes"`
	CorrectedPeakHighBytes  uint64 `json:"corrected_peak_high_bytes"`
	MissedCalls             uint64 `json:"missed_or_lost_calls"`
	// Reconciliation: tracepoint traces whose end compared the kernel's
	// flushed statistics with the programs' running sum of them.
	Reconciliation *Reconciliation                 `json:"reconciliation,omitempty"`
	Explanation    string                          `json:"explanation"`
	Breakdown      analysis.Breakdown              `json:"breakdown"`
	PerCPU         map[int]analysis.CPUStats       `json:"per_cpu"`
	PerProcess     map[int]analysis.ProcStats      `json:"per_process"`
	Kinds          map[string]analysis.KindStats   `json:"charges_by_kind,omitempty"` // pages requested, by what for
	Cgroups        map[string]analysis.CgroupStats `json:"per_cgroup,omitempty"`      // descendants: requests per cgroup directory
	Charges        uint64                          `json:"charge_requests"`
	RequestedPages uint64                          `json:"requested_pages"`
	FromStock      uint64                          `json:"served_from_stock"`
	FromStockPages uint64                          `json:"served_from_stock_pages"`
	CounterCharges uint64                          `json:"counter_charges"`
	Forced         uint64                          `json:"forced_charges"`
	Failed         uint64                          `json:"failed_charges"`
	Live
	// The replay's totals, for printing; in JSON as the fields above.
	Totals analysis.Totals `json:"-"`
}

// Reconciliation is the end's comparison of memory.stat with the trace's
// running sum of the same statistics, in pages: drift_pages is what the
// kernel counted and the sum did not (the cgroup's own skipped updates).
type Reconciliation struct {
	StatPages   int64 `json:"memory_stat_pages"`
	TracedPages int64 `json:"traced_sum_pages"`
	DriftPages  int64 `json:"drift_pages"`
}

// Live is what only a live trace knows: where it was written and what the
// tracer could not see or cost.
type Live struct {
	Output  string   `json:"trace_output,omitempty"`
	Missing []string `json:"not_traced,omitempty"`
	// The tracer's own runs and time in the kernel, where the kernel counts
	// them (kernel.bpf_stats_enabled=1); not part of any figure above.
	ProgramRuns    uint64  `json:"program_runs,omitempty"`
	ProgramSeconds float64 `json:"program_seconds,omitempty"`
}

// Facts are what a report needs beside the replay's result: the trace's
// header, what the tracer counted at its end, and the cgroup's own peak.
type Facts struct {
	Trace, Kernel, Backend, BackendNote, Mode string
	StocksRead                                bool
	StocksNote                                string
	Batch, PageSize                           uint64
	// CPUs: how many CPUs may have stocked pages (the error bound's cap;
	// the trace's own CPUs are counted too).
	CPUs     int
	Events   uint64 // every event read, the other counter's too
	Attached bool
	// Descendants: the trace followed the cgroups below too; CgroupNames
	// maps their ids to directories.
	Descendants bool
	CgroupNames map[string]string
	// Ended: the tracer's end was seen (a file's end line), so Lost and
	// Missed are known.
	Ended      bool
	Lost       uint64
	Missed     map[string]uint64
	PeakBytes  *uint64 // nil: no peak file
	PeakSource string
	// Reconcile: tracepoint traces, the end's memory.stat and running sum
	// read at one quiet moment; nil where none was read.
	Reconcile *analysis.Reconciliation
	Live      Live
}

// NewReport builds the report of a trace from the replay's result and the
// facts around it; an error when its byte figures overflow 64 bits.
func NewReport(res analysis.Result, f Facts) (*Report, error) {
	t := res.Totals
	r := &Report{Trace: f.Trace, Kernel: f.Kernel, Backend: f.Backend, BackendNote: f.BackendNote, Mode: f.Mode, StocksRead: f.StocksRead, StocksNote: f.StocksNote,
		BatchPages: f.Batch, PageSize: f.PageSize, Events: f.Events, Lost: f.Lost, Missed: f.Missed, Resyncs: t.Resyncs, ResyncPages: t.ResyncPages,
		Attached: f.Attached, PeakBytes: f.PeakBytes, PerCPU: res.CPUs, PerProcess: res.Procs, Kinds: res.Kinds,
		Charges: t.Requests, RequestedPages: t.RequestedPages, FromStock: t.FromStock, FromStockPages: t.FromStockPages, CounterCharges: t.CounterCharges,
		Forced: t.Forced, Failed: t.Failed, Live: f.Live, Totals: t}
	if f.PeakBytes != nil {
		r.PeakSource = f.PeakSource
	}
	var inconsistent []string
	if res.CorrectedPeak.Pages > res.Watermark {
		// Real use never exceeds usage, nor usage the watermark.
		inconsistent = append(inconsistent, fmt.Sprintf("the replayed real use (%d pages) exceeds the traced watermark (%d pages): the trace contradicts itself", res.CorrectedPeak.Pages, res.Watermark))
		res.CorrectedPeak.Pages = res.Watermark
	}
	var overflow bool
	r.WatermarkBytes, overflow = mulBytes(res.Watermark, f.PageSize)
	if r.CorrectedPeakBytes, _ = mulBytes(res.CorrectedPeak.Pages, f.PageSize); overflow {
		return nil, fmt.Errorf("the traced watermark of %d pages of %d bytes overflows 64 bits", res.Watermark, f.PageSize)
	}
	if !f.Ended {
		r.Incomplete = []string{"the trace has no end line (cut short)"}
	}
	if f.Descendants {
		r.Cgroups = analysis.CgroupsByName(res.Cgroups, f.CgroupNames)
	}
	var ceiling uint64
	if f.PeakBytes != nil && f.PageSize > 0 && !f.Attached && (f.Lost > 0 || len(f.Missed) > 0 || t.Resyncs > 0) {
		// The counter's own maximum over the run (its cgroup was made
		// for it), where the trace may lack the events that raised the
		// watermark last.
		ceiling = *f.PeakBytes / f.PageSize
	}
	pr := analysis.PeakRange(res, f.Lost, f.Missed, ceiling, f.CPUs, f.Reconcile)
	missed := f.Missed
	if c := f.Reconcile; c != nil {
		r.Reconciliation = &Reconciliation{StatPages: c.StatPages, TracedPages: c.RealPages, DriftPages: c.Drift()}
		if c.Drift() == 0 {
			// Every skipped update was another cgroup's (or cancelled
			// out): the kernel's statistics and the trace's sum agree.
			missed = nil
		}
	}
	r.Incomplete = append(r.Incomplete, analysis.Incomplete(f.Lost, missed, t)...)
	r.Incomplete = append(r.Incomplete, inconsistent...)
	r.Exact = len(r.Incomplete) == 0
	res.CorrectedPeak.Pages = pr.Peak
	if r.CorrectedPeakBytes, _ = mulBytes(pr.Peak, f.PageSize); r.Exact && pr.Exact() {
		pr.Calls = 0
	}
	r.CorrectedPeakErrorBytes, r.MissedCalls = pr.Error*f.PageSize, pr.Calls
	r.CorrectedPeakLowBytes, r.CorrectedPeakHighBytes = pr.Low*f.PageSize, pr.High*f.PageSize
	var peak uint64
	if f.PeakBytes != nil {
		peak = *f.PeakBytes
	}
	r.Breakdown = analysis.Break(res, r.PeakSource, peak, f.PageSize)
	r.Explanation = r.Breakdown.String()
	return r, nil
}

// mulBytes is pages x page size; true when it overflows (then the most).
func mulBytes(pages, pageSize uint64) (uint64, bool) {
	hi, lo := bits.Mul64(pages, pageSize)
	if hi != 0 {
		return math.MaxUint64, true
	}
	return lo, false
}

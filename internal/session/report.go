package session

import "github.com/cgpeak/cgpeak/analysis"

// Report is what a live trace saw: the part of a run's report that comes
// from traced charges.
type Report struct {
	Backend     string `json:"backend"`
	BackendNote string `json:"backend_note,omitempty"` // --backend auto: why this one
	Mode        string `json:"mode"`                   // summary, or charges: every charge recorded
	// StocksRead: summary mode read the per-CPU stocks from the kernel, so
	// requests the stocks served are counted in pages only.
	StocksRead         bool                            `json:"stocks_read,omitempty"`
	StocksNote         string                          `json:"stocks_note,omitempty"` // summary mode: why the stocks were not read
	Events             uint64                          `json:"events"`
	Lost               uint64                          `json:"lost_events"`
	Missed             map[string]uint64               `json:"missed_calls,omitempty"`
	Resyncs            uint64                          `json:"resyncs"`
	Exact              bool                            `json:"exact"` // no event lost, missed or resynced
	Incomplete         []string                        `json:"incomplete,omitempty"`
	Attached           bool                            `json:"attached,omitempty"`        // began on a running cgroup: figures cover the traced window
	Kinds              map[string]analysis.KindStats   `json:"charges_by_kind,omitempty"` // pages requested, by what for
	PerCPU             map[int]analysis.CPUStats       `json:"per_cpu"`
	PerProcess         map[int]analysis.ProcStats      `json:"per_process"`
	Cgroups            map[string]analysis.CgroupStats `json:"per_cgroup,omitempty"` // descendants: requests per cgroup directory
	BatchPages         uint64                          `json:"batch_pages"`
	WatermarkBytes     uint64                          `json:"traced_watermark_bytes"`
	CorrectedPeakBytes uint64                          `json:"corrected_peak_bytes"`
	// The corrected peak is within CorrectedPeakErrorBytes of the real peak
	// either way, from the MissedCalls calls missed or lost
	// (analysis.ErrorBound); both 0 when the trace is exact.
	CorrectedPeakErrorBytes uint64 `json:"corrected_peak_error_bytes"`
	MissedCalls             uint64 `json:"missed_or_lost_calls"`
	Explanation             string `json:"explanation"`
	Output                  string `json:"trace_output,omitempty"`
	// The tracer's own runs and time in the kernel, where the kernel counts
	// them (kernel.bpf_stats_enabled=1); not part of any figure above.
	ProgramRuns    uint64   `json:"program_runs,omitempty"`
	ProgramSeconds float64  `json:"program_seconds,omitempty"`
	Missing        []string `json:"not_traced,omitempty"`
	Charges        uint64   `json:"charge_requests"`
	RequestedPages uint64   `json:"requested_pages"`
	FromStock      uint64   `json:"served_from_stock"`
	FromStockPages uint64   `json:"served_from_stock_pages"`
	CounterCharges uint64   `json:"counter_charges"`
	Forced         uint64   `json:"forced_charges"`
	Failed         uint64   `json:"failed_charges"`
	// The replay's full result (timeline, totals), for printing; not in JSON.
	Result   analysis.Result `json:"-"`
	PageSize uint64          `json:"-"`
}

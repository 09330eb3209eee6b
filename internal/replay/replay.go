// Package replay explains a saved charge trace offline: it streams the
// trace through the model of the counter and the per-CPU stocks and says how
// the cgroup's peak splits into real use and stocked pages, and whether the
// trace was a full record. No root, no BPF: a saved trace gives the same
// answer on any machine.
package replay

import (
	"io"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/report"
	"github.com/cgpeak/cgpeak/trace"
)

// Trace streams a saved trace through the model and explains its peak;
// with keepTimeline it also returns the steps of the replay (for a plot),
// in bounded memory (analysis.Timeline).
// A trace that cannot be read is an error naming its line.
func Trace(r io.Reader, name string, keepTimeline bool) (*Report, analysis.Timeline, error) {
	rd, err := trace.NewReader(r)
	if err != nil {
		return nil, analysis.Timeline{}, err
	}
	h := rd.Header
	m := analysis.NewModel(h.Batch, keepTimeline)
	if h.Attached {
		m.Attached()
	}
	if h.StocksRead {
		m.StocksRead()
	}
	if h.Backend == "tracepoint" { // loader.Tracepoint
		m.StatUpdates()
	}
	var n uint64
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, analysis.Timeline{}, err
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
	f := Facts{Trace: name, Kernel: h.Kernel, Backend: h.Backend, Mode: h.Mode, StocksRead: h.StocksRead, Batch: h.Batch, CPUs: h.CPUs, PageSize: h.PageSize,
		Events: n, Attached: h.Attached, Descendants: h.Descendants, Ended: rd.End != nil}
	if e := rd.End; e != nil {
		f.Lost, f.Missed, f.CgroupNames = e.Lost, e.Missed, e.Cgroups
		f.PeakBytes, f.PeakSource = e.PeakBytes, e.PeakSource
		if c := e.Reconciliation; c != nil {
			f.Reconcile = &analysis.Reconciliation{StatPages: c.StatPages, RealPages: c.SumPages}
		}
	}
	res := m.Result()
	rep, err := NewReport(res, f)
	if err != nil {
		return nil, analysis.Timeline{}, err
	}
	rep.Schema = report.Schema
	return rep, res.Timeline, nil
}

package session

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
	"github.com/cgpeak/cgpeak/internal/replay"
)

// RunningReport is a trace of a cgroup that was running before it began
// (`cgpeak trace --json`); stable names (docs/json.md).
type RunningReport struct {
	Schema        int            `json:"schema"`
	Cgroup        string         `json:"cgroup"`
	CgroupVersion int            `json:"cgroup_version"`
	Seconds       float64        `json:"traced_seconds"`
	Ended         string         `json:"ended"` // EndDuration, EndSignal or EndRemoved
	StartBytes    *uint64        `json:"start_usage_bytes,omitempty"`
	PeakBytes     *uint64        `json:"cgroup_peak_bytes,omitempty"`
	PeakSource    string         `json:"cgroup_peak_source,omitempty"`
	CurrentBytes  *uint64        `json:"end_usage_bytes,omitempty"`
	UsageSource   string         `json:"usage_source,omitempty"`
	Trace         *replay.Report `json:"trace"`
	Missing       []string       `json:"missing,omitempty"`
}

// How a trace of a running cgroup ended.
const (
	EndDuration = "duration"
	EndSignal   = "signal"
	EndRemoved  = "cgroup removed"
)

// Running says how to trace a running cgroup.
type Running struct {
	Options
	Schema    int
	Duration  time.Duration // 0: until a signal or the cgroup's removal
	Stop      <-chan os.Signal
	NoPeakBPF bool                 // test switch: behave as where BPF cannot read the watermark
	Started   func(backend string) // called once attached
}

// TraceRunning attaches to target, which was running before, until a signal
// on r.Stop, r.Duration or the cgroup's removal, and reports what it saw.
// A trace file that could not be written is ErrOutput with the report; a
// tracer that could not start is an error with no report.
func TraceRunning(target *cgroup.Leaf, r Running) (*RunningReport, error) {
	rep := &RunningReport{Schema: r.Schema, Cgroup: target.Path, CgroupVersion: 1, UsageSource: "memory.usage_in_bytes"}
	if target.H.V2 {
		rep.CgroupVersion, rep.UsageSource = 2, "memory.current"
	}
	start := target.Read()
	if r.Descendants && !target.H.V2 {
		if b, err := os.ReadFile(filepath.Join(target.Path, "memory.use_hierarchy")); err == nil && strings.TrimSpace(string(b)) == "0" {
			rep.Missing = append(rep.Missing, "descendants in the cgroup's counter: its memory.use_hierarchy is 0 (cgroup v1 before 5.11), so its counter, watermark and peak leave out what its descendants charge")
		}
	}
	o := r.Options
	o.Attached = true
	s, err := Open(target, o)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	if r.Started != nil {
		r.Started(s.Backend())
	}
	v := start.CurrentBytes
	rep.StartBytes = &v
	rep.Ended = wait(target, r)
	rep.Seconds = time.Since(began).Seconds()
	var f cgroup.Figures
	if rep.Ended == EndRemoved {
		rep.Missing = append(rep.Missing, "cgroup figures: the cgroup was removed before tracing ended")
	} else {
		f = target.Read()
		if !f.HavePeak && target.H.V2 {
			if err := kpeak.Watermark(&f, target.Path, r.KernelBTF, r.NoPeakBPF); err != nil {
				f.Missing = append(f.Missing, kpeak.NoPeak(err))
			}
		}
		rep.Missing = append(rep.Missing, f.Missing...)
		if f.HavePeak {
			v := f.PeakBytes
			rep.PeakBytes, rep.PeakSource = &v, f.PeakFile
		}
		v := f.CurrentBytes
		rep.CurrentBytes = &v
	}
	rep.Trace, err = s.Stop(f)
	return rep, err
}

// wait returns how the trace ends: a signal, the duration, or the cgroup
// gone (looked for four times a second).
func wait(target *cgroup.Leaf, r Running) string {
	var timeout <-chan time.Time
	if r.Duration > 0 {
		timeout = time.After(r.Duration)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Stop:
			return EndSignal
		case <-timeout:
			return EndDuration
		case <-tick.C:
			if _, err := os.Stat(filepath.Join(target.Path, "cgroup.procs")); err != nil {
				return EndRemoved
			}
		}
	}
}

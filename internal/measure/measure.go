// Package measure runs a command once in a fresh leaf cgroup and gathers
// everything cgpeak reports of that run: the runner's time and cgroup
// figures, the peak where the kernel keeps none, and the traced charges when
// asked. One run's whole pipeline, for `cgpeak run` and its series.
package measure

import (
	"errors"
	"fmt"
	"os"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
	"github.com/cgpeak/cgpeak/internal/replay"
	"github.com/cgpeak/cgpeak/internal/runas"
	"github.com/cgpeak/cgpeak/internal/runner"
	"github.com/cgpeak/cgpeak/internal/series"
	"github.com/cgpeak/cgpeak/internal/session"
)

// Report is one run's result: the runner's figures, and the traced charges
// when asked; JSON field names are stable (docs/json.md).
type Report struct {
	Schema int `json:"schema"`
	runner.Report
	Trace *replay.Report `json:"trace,omitempty"`
	// WriteFailed: the trace was taken but the file the user named for it
	// could not be written (TraceErr says why).
	WriteFailed bool  `json:"-"`
	TraceErr    error `json:"-"`

	// Where the kernel keeps no peak and BPF cannot read it: the most
	// memory.current was seen at, a lower bound.
	PeakLowerBoundBytes  *uint64 `json:"cgroup_peak_lower_bound_bytes,omitempty"`
	PeakLowerBoundSource string  `json:"cgroup_peak_lower_bound_source,omitempty"`
}

// SeriesFigures gives a series' statistics what they need of a run.
func (r *Report) SeriesFigures() series.Figures {
	f := series.Figures{Wall: r.WallSeconds, User: r.UserSeconds, Sys: r.SysSeconds, MaxRSS: r.MaxRSSBytes, Peak: r.PeakBytes, PeakSource: r.PeakSource, ExitCode: r.ExitCode}
	if r.Trace != nil {
		v := r.Trace.CorrectedPeakBytes
		f.Corrected = &v
	}
	return f
}

// Options say how to run the command.
type Options struct {
	Schema     int   // the report's schema number
	Memory     int64 // memory limit in bytes, -1 for none
	Swap       int64 // swap limit in bytes, -1 for none
	Stdout     *os.File
	Stdin      string // a file for the command's standard input; "" for cgpeak's own
	Stop       <-chan os.Signal
	As         *runas.Identity
	WaitAll    bool              // the run ends when its cgroup is empty (runner.Command.WaitAll)
	Trace      *session.Options  // nil: no charge tracing
	KernelBTF  string            // for the peak's BPF fallback
	NoPeakBPF  bool              // test switch: behave as where BPF cannot read the watermark
	TraceError func(error) error // words a tracing error for the caller (nil: as it is)
}

// Stage is where a run failed before it gave figures.
type Stage int

const (
	StageCgroup  Stage = iota + 1 // the leaf cgroup could not be made or limited
	StageStopped                  // a signal came before the command started
	StageTrace                    // the tracer could not start
	StageInput                    // the input file could not be opened
	StageExec                     // the command could not be executed (Code: 126 or 127)
	StageRun                      // starting or waiting for the command failed
)

// Error is a run that gave no figures.
type Error struct {
	Stage  Stage
	Signal os.Signal // StageStopped
	Code   int       // StageExec: the shell's code for it
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Once runs path with argv once in a fresh leaf cgroup of h, removed after.
// A signal on o.Stop before the command starts ends the run there; once it
// runs, the runner kills it and the report holds the figures so far.
// Removing the leaf can fail after the figures were taken: that error goes
// to warn, the report stands.
func Once(h cgroup.Hierarchy, path string, argv []string, o Options, warn func(error)) (rep *Report, err error) {
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		return nil, &Error{Stage: StageCgroup, Err: err}
	}
	defer func() {
		if rerr := leaf.Remove(); rerr != nil {
			warn(rerr)
		}
	}()
	if err := leaf.SetLimits(o.Memory, o.Swap); err != nil {
		return nil, &Error{Stage: StageCgroup, Err: err}
	}
	select {
	case sig := <-o.Stop:
		return nil, &Error{Stage: StageStopped, Signal: sig, Err: fmt.Errorf("%v before the command started", sig)}
	default:
	}
	word := o.TraceError
	if word == nil {
		word = func(err error) error { return err }
	}
	// The tracer attaches before the command starts, so its first charge
	// is seen.
	var ts *session.Session
	if o.Trace != nil {
		if ts, err = session.Open(leaf, *o.Trace); err != nil {
			return nil, &Error{Stage: StageTrace, Err: word(err)}
		}
	}
	rc := runner.Command{Path: path, Args: argv, Stdout: o.Stdout, Stop: o.Stop, As: o.As, WaitAll: o.WaitAll}
	if o.Stdin != "" {
		in, err := os.Open(o.Stdin)
		if err != nil {
			if ts != nil {
				ts.Abort()
			}
			return nil, &Error{Stage: StageInput, Err: err}
		}
		defer in.Close()
		rc.Stdin = in
	}
	// Where v2 has no memory.peak (before 5.19), BPF reads the watermark
	// when the run ends, else memory.current is sampled meanwhile.
	pf := kpeak.StartFallback(leaf, o.KernelBTF, o.NoPeakBPF)
	rr, err := runner.Run(leaf, rc)
	if err != nil {
		pf.Abort()
		if ts != nil {
			ts.Abort()
		}
		_ = leaf.Kill()
		var xe *runner.ExecError
		if errors.As(err, &xe) {
			return nil, &Error{Stage: StageExec, Code: xe.Code, Err: xe}
		}
		return nil, &Error{Stage: StageRun, Err: err}
	}
	rep = &Report{Schema: o.Schema, Report: *rr}
	FillPeak(pf, rep)
	if ts != nil {
		if rep.Trace, err = ts.Stop(rr.Figures); err != nil {
			if errors.Is(err, session.ErrOutput) {
				// The trace was taken but not written: the figures still show.
				rep.WriteFailed, rep.TraceErr = true, word(err)
			} else {
				rep.Missing = append(rep.Missing, "part of the charge trace: "+word(err).Error())
			}
		}
	}
	return rep, nil
}

// FillPeak puts the fallback's peak into the report, or, without BPF, the
// sampled lower bound, and says why there is no peak.
func FillPeak(p *kpeak.Fallback, rep *Report) {
	if p == nil {
		return
	}
	f := &rep.Figures
	low := p.Finish(f)
	rep.Missing = kpeak.DropPeakMissing(rep.Missing)
	if low == nil {
		v := f.PeakBytes
		rep.PeakBytes, rep.PeakSource = &v, f.PeakFile
		return
	}
	rep.Missing = append(rep.Missing, f.Missing[len(f.Missing)-1])
	rep.PeakLowerBoundBytes, rep.PeakLowerBoundSource = &low.Bytes, low.Source
}

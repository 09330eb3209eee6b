package series

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/cgpeak/cgpeak/internal/params"
	"github.com/cgpeak/cgpeak/stats"
)

// Plan is how many runs each command gets, as hyperfine decides.
type Plan struct {
	Runs             int  // exactly this many measured runs; 0: decided by MinRuns, MaxRuns and MinTime
	Warmup           int  // unmeasured runs first
	MinRuns, MaxRuns int  // MaxRuns 0: no limit
	Single           bool // one plain run: the count is 1 unless Runs says otherwise
}

// MinTime is how long hyperfine measures a command at least when the
// number of runs is not given.
const MinTime = 3 * time.Second

// Count is how many measured runs a command gets given its first run's wall
// time (0 before it ran): Runs; or enough to fill MinTime, within MinRuns
// and MaxRuns.
func (p Plan) Count(first float64) int {
	if p.Runs > 0 {
		return p.Runs
	}
	if p.Single {
		return 1
	}
	n := p.MinRuns
	if first > 0 {
		if k := int(math.Ceil(MinTime.Seconds() / first)); k > n {
			n = k
		}
	}
	if p.MaxRuns > 0 && n > p.MaxRuns {
		n = p.MaxRuns
	}
	return n
}

// Hook is an unmeasured command line run around a command's runs; Name is
// how the user gave it, for errors.
type Hook struct{ Name, Line string }

// Hooks are the series' setup (once before a command's runs), prepare
// (before each), conclude (after each) and cleanup (once after), run
// through Shell ("none": split into words) with their {NAME}s filled in.
type Hooks struct {
	Setup, Prepare, Conclude, Cleanup Hook
	Shell                             string
	Stdout                            io.Writer
}

// HookError: a hook failed, which ends the series.
type HookError struct {
	Hook Hook
	Err  error
}

func (e *HookError) Error() string {
	return fmt.Sprintf("%s %q failed: %v (fix it, or drop %s)", e.Hook.Name, e.Hook.Line, e.Err, e.Hook.Name)
}

func (h Hooks) run(k Hook, vals []params.Value) error {
	if k.Line == "" {
		return nil
	}
	line := params.Substitute(k.Line, vals)
	argv := []string{h.Shell, "-c", line}
	if h.Shell == "none" {
		w, err := params.SplitWords(line)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		argv = w
	}
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdout, c.Stderr = h.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return &HookError{Hook{k.Name, line}, err}
	}
	return nil
}

// Command is one command of a series.
type Command struct {
	Name   string
	Params []params.Value
}

// Loop runs every command of a series the planned number of times, with
// its hooks, and summarizes each command's runs.
type Loop[R Run] struct {
	Plan  Plan
	Hooks Hooks
	// StockBytes is what the per-CPU charge stocks can hold in all (see
	// Summarize).
	StockBytes float64
	// Measure makes one run of command c, and Check, after the conclude
	// hook, says whether the run ends the series (an error); run counts
	// warm-ups from 0.
	Measure func(c int) (R, error)
	Check   func(c, run int, r R) error
	// Adjust, if set, corrects a run's figures before they count (e.g.
	// takes the shell's own start off its times).
	Adjust func(R)
	// Progress, if set, is told after each run how far the series is.
	Progress func(done, total int, command string)
	// Stop, if set, carries the signals that stop cgpeak; SignalName names
	// them for the report. Run looks at it only where no one else waits on
	// it: when a hook failed, and when the series is over.
	Stop       <-chan os.Signal
	SignalName func(os.Signal) string
}

// Interrupted is a signal to cgpeak that ended a series early. The runs
// that finished before it still count: Run returns their statistics with
// the error.
type Interrupted struct {
	Signal os.Signal
	Name   string // as the reports write it, e.g. SIGINT
}

func (e *Interrupted) Error() string { return "stopped by " + e.Name }

// Run measures the commands in order. On an error the series stops there
// and no statistics are made, but for an *Interrupted error (from Measure,
// or a signal on Stop): then the report holds the runs that had finished
// (commands without one are left out), is marked interrupted, and comes
// with the error. The run it stopped does not count, and no cleanup hook
// runs after it: cgpeak was asked to stop.
func (l *Loop[R]) Run(cmds []Command) (*Report[R], error) {
	rep := &Report[R]{}
	for ci, c := range cmds {
		each, err := l.command(ci, c, len(cmds))
		var ie *Interrupted
		if err != nil && !errors.As(err, &ie) {
			if ie = l.stopped(); ie == nil {
				return nil, err
			}
			err = ie
		}
		if len(each) > 0 {
			rep.Results = append(rep.Results, l.summarize(c, each))
		}
		if ie != nil {
			rep.interrupt(ie)
			return rep, err
		}
	}
	rep.Compare()
	// A signal during the last hook, whose process lived on: the runs are
	// all there, but cgpeak was asked to stop.
	if ie := l.stopped(); ie != nil {
		rep.interrupt(ie)
		return rep, ie
	}
	return rep, nil
}

func (rep *Report[R]) interrupt(ie *Interrupted) {
	rep.Interrupted, rep.InterruptedBy = true, ie.Name
	rep.Compare()
}

// stopped says whether a signal is waiting on Stop. A hook that failed
// may have got the terminal's Ctrl-C with cgpeak (its process group):
// that is an interruption, not the hook's failure.
func (l *Loop[R]) stopped() *Interrupted {
	if l.Stop == nil {
		return nil
	}
	select {
	case sig := <-l.Stop:
		return &Interrupted{Signal: sig, Name: l.SignalName(sig)}
	default:
		return nil
	}
}

// command makes one command's runs with their hooks and returns the
// measured ones; on an error, those that finished before it.
func (l *Loop[R]) command(ci int, c Command, ncmds int) ([]R, error) {
	if err := l.Hooks.run(l.Hooks.Setup, c.Params); err != nil {
		return nil, err
	}
	var each []R
	total := l.Plan.Warmup + l.Plan.Count(0)
	for i := 0; i < total; i++ {
		if err := l.Hooks.run(l.Hooks.Prepare, c.Params); err != nil {
			return each, err
		}
		r, err := l.Measure(ci)
		if err != nil {
			return each, err
		}
		if err := l.Hooks.run(l.Hooks.Conclude, c.Params); err != nil {
			return each, err
		}
		if err := l.Check(ci, i, r); err != nil {
			return each, err
		}
		if l.Adjust != nil {
			l.Adjust(r)
		}
		if i == l.Plan.Warmup {
			// The first measured run decides how many there will be.
			total = l.Plan.Warmup + l.Plan.Count(r.SeriesFigures().Wall)
		}
		if l.Progress != nil {
			l.Progress(ci*total+i+1, ncmds*total, c.Name)
		}
		if i >= l.Plan.Warmup {
			each = append(each, r)
		}
	}
	return each, l.Hooks.run(l.Hooks.Cleanup, c.Params)
}

func (l *Loop[R]) summarize(c Command, each []R) *Result[R] {
	res := Summarize(c.Name, each, l.StockBytes)
	if len(c.Params) > 0 {
		res.Parameters = map[string]string{}
		for _, p := range c.Params {
			res.Parameters[p.Name] = p.Value
		}
	}
	return res
}

// ShellRuns is how many empty command lines measure the shell's own cost.
const ShellRuns = 20

// MeasureShell measures the shell's own start and exit as ShellRuns runs of
// an empty command line, so a series can take it off the commands' times;
// measure makes one such run, and its error ends the measuring.
func MeasureShell(shell string, measure func() (Figures, error)) (*ShellCost, error) {
	var wall, user, sys []float64
	var peaks []uint64
	for i := 0; i < ShellRuns; i++ {
		f, err := measure()
		if err != nil {
			return nil, err
		}
		wall, user, sys = append(wall, f.Wall), append(user, f.User), append(sys, f.Sys)
		if f.Peak != nil {
			peaks = append(peaks, *f.Peak)
		}
	}
	c := &ShellCost{Shell: shell, Runs: ShellRuns,
		WallSeconds: stats.Summarize(wall).Mean, UserSeconds: stats.Summarize(user).Mean, SysSeconds: stats.Summarize(sys).Mean}
	if len(peaks) == ShellRuns {
		sort.Slice(peaks, func(i, j int) bool { return peaks[i] < peaks[j] })
		m := peaks[len(peaks)/2]
		c.CgroupPeakBytes = &m
	}
	return c, nil
}

// Subtract takes the shell's mean times off a run's, never below zero.
func (c *ShellCost) Subtract(wall, user, sys *float64) {
	sub := func(v *float64, d float64) { *v = max(0, *v-d) }
	sub(wall, c.WallSeconds)
	sub(user, c.UserSeconds)
	sub(sys, c.SysSeconds)
}

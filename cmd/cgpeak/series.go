package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kernel"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/internal/params"
	"github.com/cgpeak/cgpeak/internal/runner"
	"github.com/cgpeak/cgpeak/internal/series"
	"github.com/cgpeak/cgpeak/internal/units"
	"github.com/cgpeak/cgpeak/plot"
	"github.com/cgpeak/cgpeak/stats"
)

// commandSpec is one command to measure: its display name and argv.
type commandSpec struct {
	name   string
	argv   []string
	path   string // argv[0] resolved in PATH
	params []params.Value
	stdin  string // --input: a file for the command's standard input
	// waitAll (--wait-all): each run ends when its cgroup is empty.
	waitAll bool
}

// commandSpecs reads the command words: after --, one command run as it is;
// without --, each word a command line, as hyperfine reads them: expanded
// over --parameter-scan/--parameter-list, then run by the shell (--shell,
// /bin/sh by default) or split into words without one (-N).
func (o *seriesOpts) commandSpecs(args []string, dash int) ([]commandSpec, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	switch dash {
	case 0:
		if len(o.paramScan)+len(o.paramList) > 0 || len(o.names) > 0 {
			return nil, errors.New("parameters and --command-name apply to quoted command lines, not to a command after --")
		}
		return []commandSpec{{name: strings.Join(args, " "), argv: args, stdin: o.input, waitAll: o.waitAll}}, nil
	case -1:
	default:
		return nil, fmt.Errorf("commands both before and after --: give quoted command lines, or one command after --")
	}
	runs, err := params.Lines{Lines: args, Scan: o.paramScan, List: o.paramList, Step: o.paramStep, Names: o.names, Shell: o.shell}.Runs()
	if err != nil {
		return nil, err
	}
	specs := make([]commandSpec, len(runs))
	for i, r := range runs {
		specs[i] = commandSpec{name: r.Name, argv: r.Argv, params: r.Params, stdin: o.input, waitAll: o.waitAll}
	}
	return specs, nil
}

// resolve finds the program in PATH; on failure it says why and returns the
// exit code.
func (c *commandSpec) resolve() int {
	path, err := runner.Resolve(c.argv[0])
	var xe *runner.ExecError
	if errors.As(err, &xe) {
		fmt.Fprintln(os.Stderr, "cgpeak:", xe)
		return xe.Code
	}
	c.path = path
	return 0
}

// seriesOpts are the flags of repeated runs, named as hyperfine names them.
type seriesOpts struct {
	runs, warmup, minRuns, maxRuns        int
	setup, prepare, conclude, cleanup     string
	showOutput, ignoreFailure, noShell    bool
	waitAll                               bool
	shell, input, timeUnit, sortBy        string
	names                                 []string
	paramScan, paramList                  []string
	paramStep                             string
	exportJSON, exportCSV, exportMarkdown string
	exportPlot                            string
	unit                                  *units.TimeUnit
	fs                                    *pflag.FlagSet
}

func (o *seriesOpts) flags(fs *pflag.FlagSet) {
	o.fs = fs
	fs.IntVarP(&o.runs, "runs", "r", 0, "run each command exactly N times, each run in a fresh cgroup (default: one run after --; else at least --min-runs and 3 s, as hyperfine)")
	fs.IntVarP(&o.warmup, "warmup", "w", 0, "run each command N times first, unmeasured (warm caches)")
	fs.IntVarP(&o.minRuns, "min-runs", "m", 10, "without --runs, at least N runs")
	fs.IntVarP(&o.maxRuns, "max-runs", "M", 0, "without --runs, at most N runs (default: no limit)")
	fs.StringVarP(&o.setup, "setup", "s", "", "run this command line once before each command's runs, unmeasured")
	fs.StringVarP(&o.prepare, "prepare", "p", "", "run this command line before every run, unmeasured (e.g. clear a cache)")
	fs.StringVar(&o.conclude, "conclude", "", "run this command line after every run, unmeasured")
	fs.StringVarP(&o.cleanup, "cleanup", "c", "", "run this command line once after each command's runs, unmeasured")
	fs.StringArrayVarP(&o.paramScan, "parameter-scan", "P", nil, "NAME MIN MAX: run each command for NAME = MIN..MAX, written {NAME} in it")
	fs.StringVarP(&o.paramStep, "parameter-step-size", "D", "", "the step of --parameter-scan (decimals allowed; default 1)")
	fs.StringArrayVarP(&o.paramList, "parameter-list", "L", nil, "NAME A,B,C: run each command for each value of NAME (repeatable: every combination)")
	fs.StringArrayVarP(&o.names, "command-name", "n", nil, "name a command in the report (once per command, in order; {NAME} expands)")
	fs.StringVarP(&o.shell, "shell", "S", "/bin/sh", "the shell that runs command lines; \"none\" splits the words and runs no shell")
	fs.BoolVarP(&o.noShell, "no-shell", "N", false, "run command lines without a shell: --shell=none")
	fs.StringVar(&o.input, "input", "", "give the command FILE on its standard input")
	fs.BoolVar(&o.waitAll, "wait-all", false, "end each run when its cgroup is empty, waiting for what the command left running (default: kill it at the command's exit, named in the report)")
	fs.BoolVarP(&o.ignoreFailure, "ignore-failure", "i", false, "go on when a command exits non-zero (default: stop the series there)")
	fs.StringVarP(&o.timeUnit, "time-unit", "u", "", "print times in microsecond, millisecond or second (default: what fits)")
	fs.StringVar(&o.sortBy, "sort", "auto", "order of the commands in the summary: auto (fastest first in the comparison, given order elsewhere), command, mean-time")
	fs.BoolVar(&o.showOutput, "show-output", false, "with repeated runs, show the commands' standard output (default: discarded)")
	fs.StringVar(&o.exportJSON, "export-json", "", "write every run and the statistics to FILE as JSON, in hyperfine's layout with memory beside it")
	fs.StringVar(&o.exportCSV, "export-csv", "", "write the statistics to FILE as CSV, a row per command")
	fs.StringVar(&o.exportMarkdown, "export-markdown", "", "write the comparison to FILE as a Markdown table")
	fs.StringVar(&o.exportPlot, "export-plot", "", "draw each command's wall times and cgroup peaks as box plots in FILE (SVG)")
}

func (o *seriesOpts) check() error {
	if o.noShell {
		o.shell = "none"
	}
	switch {
	case o.runs < 0 || (o.runs == 0 && o.fs != nil && o.fs.Changed("runs")):
		return fmt.Errorf("--runs %d: give at least 1", o.runs)
	case o.warmup < 0:
		return fmt.Errorf("--warmup %d: give 0 or more", o.warmup)
	case o.minRuns < 1:
		return fmt.Errorf("--min-runs %d: give at least 1", o.minRuns)
	case o.maxRuns < 0 || (o.maxRuns > 0 && o.maxRuns < o.minRuns):
		return fmt.Errorf("--max-runs %d: give at least --min-runs (%d)", o.maxRuns, o.minRuns)
	case o.sortBy != "auto" && o.sortBy != "command" && o.sortBy != "mean-time":
		return fmt.Errorf("--sort %q: use auto, command or mean-time", o.sortBy)
	case o.shell == "":
		return errors.New("--shell: name a shell, or none")
	}
	if o.timeUnit != "" {
		u, err := units.ParseTimeUnit(o.timeUnit)
		if err != nil {
			return fmt.Errorf("--time-unit: %w", err)
		}
		o.unit = &u
	}
	if o.input != "" {
		f, err := os.Open(o.input)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("--input %s: %w (name a file the command can read as its standard input)", o.input, err)
		}
		f.Close()
	}
	return nil
}

// repeated: the flags or the command lines ask for a series rather than one
// plain run. Command lines without -- are hyperfine's, measured as a series.
func (o *seriesOpts) repeated(dash int) bool {
	return dash != 0 || o.runs > 1 || o.warmup > 0 || o.prepare != "" || o.setup != "" || o.conclude != "" || o.cleanup != "" ||
		o.exportJSON != "" || o.exportCSV != "" || o.exportMarkdown != "" || o.exportPlot != ""
}

// SeriesResult is one command's runs and their statistics.
type SeriesResult = series.Result[*Report]

// SeriesReport is what `cgpeak run --export-json` writes.
type SeriesReport = series.Report[*Report]

// codeError is a run that gave no figures: cgpeak's exit code for it, its
// message already shown; sig is the signal that stopped cgpeak before the
// command started, if that was why.
type codeError struct {
	code int
	sig  os.Signal
}

func (e *codeError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func runSeries(o runOpts, h cgroup.Hierarchy, specs []commandSpec, mem, swap int64, stopped <-chan os.Signal, explicitOne bool) int {
	// Repeated runs print their output once per run: discarded unless asked.
	stdout := os.Stdout
	if !o.series.showOutput {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cgpeak:", err)
			return exitInternal
		}
		defer devnull.Close()
		stdout = devnull
	}
	// Nor do they read cgpeak's stdin, as hyperfine's don't: the first run
	// would take it all, or each wait for a terminal. --input gives a file.
	for i := range specs {
		if specs[i].stdin == "" {
			specs[i].stdin = os.DevNull
		}
	}
	so := o.series
	plan := series.Plan{Runs: so.runs, Warmup: so.warmup, MinRuns: so.minRuns, MaxRuns: so.maxRuns, Single: explicitOne}
	bar := newProgress(os.Stderr, len(specs)*(so.warmup+plan.Count(0)))
	// measureOnce is one run; a killed workload ends the series.
	measureOnce := func(spec commandSpec, topts traceOpts) (*Report, error) {
		r, ce := measureOne(h, spec, mem, swap, topts, stdout, stopped)
		switch {
		case ce != nil && ce.sig != nil:
			return nil, &series.Interrupted{Signal: ce.sig, Name: signalName(ce.sig)}
		case ce != nil:
			return nil, ce
		case r.Interrupted:
			return nil, &series.Interrupted{Signal: r.StoppedBy, Name: r.InterruptedBy}
		}
		return r, nil
	}
	// Command lines run through a shell: its own start is measured once and
	// taken off every run, as hyperfine does.
	var shell *series.ShellCost
	var err error
	if so.shell != "none" && !explicitOne {
		spec := commandSpec{name: so.shell + " -c ''", argv: []string{so.shell, "-c", ""}, stdin: os.DevNull}
		if code := spec.resolve(); code != 0 {
			return code
		}
		shell, err = series.MeasureShell(so.shell, func() (series.Figures, error) {
			r, err := measureOnce(spec, traceOpts{})
			if err != nil {
				return series.Figures{}, err
			}
			return r.SeriesFigures(), nil
		})
		if err != nil {
			bar.clear()
			return seriesFailed(err, "while measuring the shell, before any command ran; no statistics")
		}
	}
	cmds := make([]series.Command, len(specs))
	for i, s := range specs {
		cmds[i] = series.Command{Name: s.name, Params: s.params}
	}
	loop := series.Loop[*Report]{Plan: plan, StockBytes: stockBytes(), Stop: stopped, SignalName: signalName,
		Hooks: series.Hooks{Setup: series.Hook{Name: "--setup", Line: so.setup}, Prepare: series.Hook{Name: "--prepare", Line: so.prepare},
			Conclude: series.Hook{Name: "--conclude", Line: so.conclude}, Cleanup: series.Hook{Name: "--cleanup", Line: so.cleanup}, Shell: so.shell, Stdout: stdout},
		Measure: func(c int) (*Report, error) { return measureOnce(specs[c], o.trace) },
		Check: func(c, run int, r *Report) error {
			if r.ExitCode != 0 && !so.ignoreFailure && !explicitOne {
				bar.clear()
				fmt.Fprintf(os.Stderr, "cgpeak: %s exited %d (run %d); give -i/--ignore-failure to measure it anyway\n", quote(specs[c].name), r.ExitCode, run+1)
				return &codeError{code: r.ExitCode}
			}
			return nil
		},
		Progress: func(done, total int, name string) { bar.total = total; bar.set(done, name) },
	}
	if shell != nil {
		loop.Adjust = func(r *Report) { shell.Subtract(&r.WallSeconds, &r.UserSeconds, &r.SysSeconds) }
	}
	rep, err := loop.Run(cmds)
	bar.clear()
	var ie *series.Interrupted
	switch {
	case errors.As(err, &ie) && len(rep.Results) == 0:
		fmt.Fprintf(os.Stderr, "cgpeak: %s: stopped before any run finished; no statistics\n", ie.Name)
		return signalCode(ie.Signal)
	case ie != nil:
		fmt.Fprintf(os.Stderr, "cgpeak: %s: stopped; the statistics are of the %s that finished (the stopped run is left out), marked interrupted\n", ie.Name, finishedRuns(rep, len(specs)))
	case err != nil:
		return seriesFailed(err, "")
	}
	rep.Schema = reportSchema
	rep.Shell = shell
	// The statistics are shown first: an export that fails loses no figure.
	// They go to stdout, as hyperfine prints them, unless an export is to
	// go there (-): then stdout holds only that, for a pipe to read.
	reportTo := os.Stdout
	for _, f := range []string{so.exportJSON, so.exportCSV, so.exportMarkdown, so.exportPlot} {
		if f == outfile.Stdout {
			reportTo = os.Stderr
		}
	}
	wrote := 0
	if !o.quiet {
		wrote = emit(dest{"--output", o.output}, reportTo, func(w io.Writer) error {
			if o.json {
				return writeJSON(w, rep)
			}
			writeSeries(w, rep, so)
			return nil
		})
	}
	exported := exportSeries(so, rep)
	switch {
	case ie != nil:
		return signalCode(ie.Signal)
	case exported != 0:
		return exported
	case wrote != 0:
		return wrote
	}
	for _, r := range rep.Results {
		for _, c := range r.ExitCodes {
			if c != 0 {
				return c
			}
		}
	}
	return 0
}

// finishedRuns says how many runs an interrupted series kept, of how many
// commands.
func finishedRuns(rep *SeriesReport, commands int) string {
	n := 0
	for _, r := range rep.Results {
		n += r.Runs
	}
	runs := "runs"
	if n == 1 {
		runs = "run"
	}
	if commands == 1 {
		return fmt.Sprintf("%d %s", n, runs)
	}
	return fmt.Sprintf("%d %s of %d of the %d commands", n, runs, len(rep.Results), commands)
}

// stockBytes is what the per-CPU stocks can hold in all: peaks move by
// whole charge batches from run to run, so only a jump beyond it is an
// outlier.
func stockBytes() float64 {
	return float64(kernel.ChargeBatch(kernel.Release()).Pages * uint64(runtime.NumCPU()*os.Getpagesize()))
}

// seriesFailed says why a series ended with no statistics and returns its
// exit code: a run that could not be made or a failing command (already
// said), a signal to cgpeak (when: at what point), or a failed hook.
func seriesFailed(err error, when string) int {
	var ce *codeError
	var ie *series.Interrupted
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ie):
		fmt.Fprintf(os.Stderr, "cgpeak: %s: stopped %s\n", ie.Name, when)
		return signalCode(ie.Signal)
	}
	fmt.Fprintln(os.Stderr, "cgpeak:", err)
	return exitUsage
}

func writeSeries(w io.Writer, rep *SeriesReport, o seriesOpts) {
	if rep.Interrupted {
		fmt.Fprintf(w, "cgpeak: interrupted by %s: the runs that finished before it\n\n", rep.InterruptedBy)
	}
	for _, r := range sortedResults(rep, o.sortBy, false) {
		fmt.Fprintf(w, "cgpeak: %s (%s)\n", r.Command, map[bool]string{true: "1 run, in a fresh cgroup", false: fmt.Sprintf("%d runs, each in a fresh cgroup", r.Runs)}[r.Runs == 1])
		if len(r.Each) > 0 && r.Each[0].CgroupFrom != "" {
			fmt.Fprintf(w, "  cgroup from: %s\n", r.Each[0].CgroupFrom)
		}
		src := runner.WallOfCommand
		if len(r.Each) > 0 {
			src = r.Each[0].WallSource
		}
		if rep.Shell != nil {
			src += fmt.Sprintf("; less %s for starting %s", units.Seconds(rep.Shell.WallSeconds), rep.Shell.Shell)
		}
		secLine(w, "wall time", r.WallSeconds, src, o.unit)
		secLine(w, "user time", r.UserSeconds, "getrusage of the command's tree", o.unit)
		secLine(w, "sys time", r.SysSeconds, "getrusage", o.unit)
		if r.PeakBytes != nil {
			byteLine(w, "cgroup peak memory", *r.PeakBytes, r.PeakSource+"; includes per-CPU charge batching")
		}
		if r.CorrectedBytes != nil {
			byteLine(w, "corrected peak", *r.CorrectedBytes, "traced charges: counter usage minus per-CPU stock")
			if r.PeakBytes != nil && r.Runs > 1 {
				steady := "the corrected peak"
				if r.CorrectedBytes.Stddev > r.PeakBytes.Stddev {
					steady = "the cgroup peak"
				}
				fmt.Fprintf(w, "  %-24s %s varies less from run to run (the cgroup peak moves by whole charge batches)\n", "", steady)
			}
		}
		byteLine(w, "peak RSS, one process", r.MaxRSSBytes, "ru_maxrss: the largest single process")
		if rep.Shell != nil && r.Mean < shortCommand {
			// As hyperfine warns: the shell's start, measured apart and taken
			// off, is then of the order of the command itself.
			fmt.Fprintf(w, "  warning: the command took less than %s with %s of shell start-up taken off: the figure is as uncertain as that estimate; use -N to run it without a shell\n", units.Seconds(shortCommand), units.Seconds(rep.Shell.WallSeconds))
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
		fmt.Fprintln(w)
	}
	if sh := rep.Shell; sh != nil {
		fmt.Fprintf(w, "Shell: %s, started %d times with an empty command line: %s wall each, taken off every time above",
			sh.Shell, sh.Runs, units.Seconds(sh.WallSeconds))
		if sh.CgroupPeakBytes != nil {
			fmt.Fprintf(w, "; its own cgroup peak, %s, is in every cgroup peak above (-N runs no shell)", human(*sh.CgroupPeakBytes))
		}
		fmt.Fprintln(w)
	}
	if len(rep.Results) > 1 {
		writeComparison(w, rep, o)
	}
}

// sortedResults orders the results for the text: given order, or by mean
// wall time (--sort mean-time; auto sorts only the comparison).
func sortedResults(rep *SeriesReport, by string, comparison bool) []*SeriesResult {
	out := append([]*SeriesResult(nil), rep.Results...)
	if by == "mean-time" || (by == "auto" && comparison) {
		sort.SliceStable(out, func(i, j int) bool { return out[i].Mean < out[j].Mean })
	}
	return out
}

// shortCommand: hyperfine's limit under which the shell's start cannot be
// taken off precisely enough.
const shortCommand = 5e-3

// secLine prints a time summary in the unit asked for, or the one that
// fits its mean, with as many decimals as its spread makes meaningful; one
// run, or a time that was zero in every run, is one figure.
func secLine(w io.Writer, label string, s stats.Summary, src string, unit *units.TimeUnit) {
	u := units.PickTimeUnit(s.Mean)
	if unit != nil {
		u = *unit
	}
	d := units.Decimals(s.Stddev / u.Scale)
	if s.Stddev == 0 && (s.Min == s.Max) {
		v := units.Seconds(s.Mean)
		if unit != nil {
			v = units.Times(s.Mean, u, 3)
		}
		if s.Mean == 0 {
			v = "0 " + u.Name
		}
		if src != "" {
			src = "; " + src
		}
		fmt.Fprintf(w, "  %-24s %12s   (%s%s)\n", label, v, sameIn(s), src)
		return
	}
	if src != "" {
		src = "; " + src
	}
	fmt.Fprintf(w, "  %-24s %12s ± %s   (median %s, min %s, max %s%s)\n", label, units.Times(s.Mean, u, d), units.Times(s.Stddev, u, d),
		units.Times(s.Median, u, d), units.Times(s.Min, u, d), units.Times(s.Max, u, d), src)
}

func byteLine(w io.Writer, label string, s stats.Summary, src string) {
	if s.Stddev == 0 && s.Min == s.Max {
		fmt.Fprintf(w, "  %-24s %10s     (%s; %s)\n", label, human(uint64(s.Mean)), sameIn(s), src)
		return
	}
	fmt.Fprintf(w, "  %-24s %10s ± %s   (median %s, min %s, max %s; %s)\n", label, human(uint64(s.Mean)), human(uint64(s.Stddev)),
		human(uint64(s.Median)), human(uint64(s.Min)), human(uint64(s.Max)), src)
}

// writeComparison ranks the commands against the fastest, with how many
// times faster it is and the 95% interval of that, and how its cgroup
// peak compares, each said significant or not by Welch's t-test.
func writeComparison(w io.Writer, rep *SeriesReport, o seriesOpts) {
	b := rep.Results[rep.Fastest()]
	fmt.Fprintf(w, "Summary: %s ran fastest\n", quote(b.Command))
	byCommand := map[*SeriesResult]series.Comparison{}
	for _, c := range rep.Comparisons {
		byCommand[rep.Results[c.Index]] = c
	}
	for _, r := range sortedResults(rep, o.sortBy, true) {
		c, ok := byCommand[r]
		if r == b || !ok {
			continue
		}
		line := fmt.Sprintf("  %.2f times faster than %s (95%% CI %.2f-%.2f; %s)", c.Time.Ratio, quote(r.Command), c.Time.Low, c.Time.High, significance(c.Time))
		if math.IsNaN(c.Time.Ratio) || math.IsInf(c.Time.Ratio, 0) || b.Mean <= 0 {
			line = fmt.Sprintf("  no time ratio with %s: a mean time is zero once the shell's start-up is taken off (use -N)", quote(r.Command))
		}
		if p := c.CgroupPeak; p != nil && p.Ratio > 0 && p.Low > 0 {
			line += fmt.Sprintf(", with %.2f times its cgroup peak memory (95%% CI %.2f-%.2f; %s)", 1/p.Ratio, 1/p.High, 1/p.Low, significance(*p))
		}
		if p := c.Corrected; p != nil && p.Ratio > 0 && p.Low > 0 {
			line += fmt.Sprintf(", %.2f times its corrected peak (traced charges; 95%% CI %.2f-%.2f; %s)", 1/p.Ratio, 1/p.High, 1/p.Low, significance(*p))
		}
		fmt.Fprintln(w, line)
	}
}

func significance(c stats.Comparison) string {
	switch {
	case c.Significant:
		return "significant"
	case math.IsNaN(c.P) && !c.Significant:
		return "too few runs or no spread to test"
	}
	return "no significant difference"
}

func quote(s string) string { return "'" + s + "'" }

// sameIn says why a summary is printed as one figure.
func sameIn(s stats.Summary) string {
	if s.N == 1 {
		return "one run"
	}
	return "the same in every run"
}

// exportSeries writes every export asked for; each destination is left as
// it was when its own write fails, and that is said on stderr. It returns
// the exit code of the first failure (emit's), 0 when all were written.
func exportSeries(o seriesOpts, rep *SeriesReport) int {
	code := 0
	write := func(name, flag string, fill func(io.Writer) error) {
		if name == "" {
			return
		}
		c := 0
		if name == outfile.Stdout {
			c = emit(dest{}, os.Stdout, fill)
		} else if err := outfile.Write(name, fill); err != nil {
			fmt.Fprintf(os.Stderr, "cgpeak: writing %s %s: %v (it is left as it was)\n", flag, name, err)
			c = exitWrite
		}
		if code == 0 {
			code = c
		}
	}
	write(o.exportJSON, "--export-json", func(w io.Writer) error { return writeJSON(w, rep) })
	write(o.exportCSV, "--export-csv", rep.WriteCSV)
	write(o.exportMarkdown, "--export-markdown", rep.WriteMarkdown)
	write(o.exportPlot, "--export-plot", func(w io.Writer) error { return writePlot(w, rep) })
	return code
}

// writePlot draws the wall times and cgroup peaks (and corrected peaks when
// traced) of every command as box plots.
func writePlot(w io.Writer, rep *SeriesReport) error {
	wall := plot.Panel{Title: "wall time", Unit: "ms", Scale: 1e-3}
	peak := plot.Panel{Title: "cgroup peak memory", Unit: "MiB", Scale: 1 << 20}
	corr := plot.Panel{Title: "corrected peak (traced)", Unit: "MiB", Scale: 1 << 20}
	for _, r := range rep.Results {
		wall.Groups = append(wall.Groups, plot.Group{Name: r.Command, Values: r.Times})
		if len(r.CgroupPeaks) > 0 {
			peak.Groups = append(peak.Groups, plot.Group{Name: r.Command, Values: series.Floats(r.CgroupPeaks)})
		}
		if len(r.Corrected) > 0 {
			corr.Groups = append(corr.Groups, plot.Group{Name: r.Command, Values: series.Floats(r.Corrected)})
		}
	}
	panels := []plot.Panel{wall}
	for _, p := range []plot.Panel{peak, corr} {
		if len(p.Groups) == len(rep.Results) {
			panels = append(panels, p)
		}
	}
	return plot.Boxes(w, "cgpeak: each run of each command", panels)
}

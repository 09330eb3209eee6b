package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kernel"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/internal/runner"
	"github.com/cgpeak/cgpeak/internal/series"
	"github.com/cgpeak/cgpeak/stats"
)

// commandSpec is one command to measure: its display name and argv.
type commandSpec struct {
	name string
	argv []string
	path string // argv[0] resolved in PATH
}

// commandSpecs reads the command words: after --, one command run as it is;
// without --, each word a command line for /bin/sh -c (as hyperfine).
func commandSpecs(args []string, dash int) ([]commandSpec, error) {
	switch dash {
	case 0:
		return []commandSpec{{name: strings.Join(args, " "), argv: args}}, nil
	case -1:
		specs := make([]commandSpec, len(args))
		for i, a := range args {
			if strings.TrimSpace(a) == "" {
				return nil, errors.New("an empty command line: give each command as one quoted argument")
			}
			specs[i] = commandSpec{name: a, argv: []string{"/bin/sh", "-c", a}}
		}
		return specs, nil
	}
	return nil, fmt.Errorf("commands both before and after --: give quoted command lines, or one command after --")
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

// seriesOpts are the flags of repeated runs.
type seriesOpts struct {
	runs, warmup                          int
	prepare                               string
	showOutput                            bool
	exportJSON, exportCSV, exportMarkdown string
}

func (o *seriesOpts) flags(fs *pflag.FlagSet) {
	fs.IntVarP(&o.runs, "runs", "r", 1, "run each command N times, each run in a fresh cgroup, and report statistics")
	fs.IntVarP(&o.warmup, "warmup", "w", 0, "run each command N times first, unmeasured (warm caches)")
	fs.StringVarP(&o.prepare, "prepare", "p", "", "run this shell command line before every run, unmeasured (e.g. clear a cache)")
	fs.BoolVar(&o.showOutput, "show-output", false, "with repeated runs, show the commands' standard output (default: discarded)")
	fs.StringVar(&o.exportJSON, "export-json", "", "write every run and the statistics to FILE as JSON")
	fs.StringVar(&o.exportCSV, "export-csv", "", "write the statistics to FILE as CSV, a row per command")
	fs.StringVar(&o.exportMarkdown, "export-markdown", "", "write the comparison to FILE as a Markdown table")
}

func (o *seriesOpts) check() error {
	switch {
	case o.runs < 1:
		return fmt.Errorf("--runs %d: give at least 1", o.runs)
	case o.warmup < 0:
		return fmt.Errorf("--warmup %d: give 0 or more", o.warmup)
	}
	return nil
}

// repeated: the flags ask for a series rather than one plain run.
func (o *seriesOpts) repeated() bool {
	return o.runs > 1 || o.warmup > 0 || o.prepare != "" || o.exportJSON != "" || o.exportCSV != "" || o.exportMarkdown != ""
}

// SeriesResult is one command's runs and their statistics.
type SeriesResult = series.Result[*Report]

// SeriesReport is what `cgpeak run --export-json` writes.
type SeriesReport = series.Report[*Report]

// SeriesFigures gives the statistics what they need of a run.
func (r *Report) SeriesFigures() series.Figures {
	f := series.Figures{Wall: r.WallSeconds, User: r.UserSeconds, Sys: r.SysSeconds, MaxRSS: r.MaxRSSBytes, Peak: r.PeakBytes, PeakSource: r.PeakSource, ExitCode: r.ExitCode}
	if r.Trace != nil {
		v := r.Trace.CorrectedPeakBytes
		f.Corrected = &v
	}
	return f
}

func runSeries(o runOpts, h cgroup.Hierarchy, specs []commandSpec, mem, swap int64, stopped <-chan os.Signal) int {
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
	rep := SeriesReport{Schema: reportSchema}
	// Peaks move by whole charge batches from run to run: only a jump
	// beyond what the per-CPU stocks can hold is an outlier.
	stockBytes := float64(kernel.ChargeBatch(kernel.Release()).Pages * uint64(runtime.NumCPU()*os.Getpagesize()))
	total := len(specs) * (o.series.runs + o.series.warmup)
	done := 0
	bar := newProgress(os.Stderr, total)
	for _, spec := range specs {
		var each []*Report
		for i := 0; i < o.series.warmup+o.series.runs; i++ {
			if o.series.prepare != "" {
				p := exec.Command("/bin/sh", "-c", o.series.prepare)
				p.Stdout, p.Stderr = stdout, os.Stderr
				if err := p.Run(); err != nil {
					bar.clear()
					select {
					case sig := <-stopped:
						fmt.Fprintf(os.Stderr, "cgpeak: %s: stopped; no statistics\n", signalName(sig))
						return signalCode(sig)
					default:
					}
					fmt.Fprintf(os.Stderr, "cgpeak: --prepare %q failed: %v (fix it, or drop --prepare)\n", o.series.prepare, err)
					return exitUsage
				}
			}
			r, code := measure(h, spec, mem, swap, o.trace, stdout, stopped)
			done++
			bar.set(done, spec.name)
			if r == nil {
				bar.clear()
				return code
			}
			if r.Interrupted {
				bar.clear()
				fmt.Fprintf(os.Stderr, "cgpeak: %s: the workload was killed; no statistics\n", r.InterruptedBy)
				return r.exitCode()
			}
			if i < o.series.warmup {
				continue
			}
			each = append(each, r)
		}
		rep.Results = append(rep.Results, series.Summarize(spec.name, each, stockBytes))
	}
	bar.clear()
	// The statistics are shown first: an export that fails loses no figure.
	wrote := 0
	if !o.quiet {
		wrote = emit(dest{"--output", o.output}, os.Stderr, func(w io.Writer) error {
			if o.json {
				return writeJSON(w, rep)
			}
			writeSeries(w, &rep)
			return nil
		})
	}
	if err := exportSeries(o.series, &rep); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitWrite
	}
	if wrote != 0 {
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

func writeSeries(w io.Writer, rep *SeriesReport) {
	for _, r := range rep.Results {
		fmt.Fprintf(w, "cgpeak: %s (%d runs, each in a fresh cgroup)\n", r.Command, r.Runs)
		if len(r.Each) > 0 && r.Each[0].CgroupFrom != "" {
			fmt.Fprintf(w, "  cgroup from: %s\n", r.Each[0].CgroupFrom)
		}
		secLine(w, "wall time", r.WallSeconds, "")
		secLine(w, "user time", r.UserSeconds, "getrusage of the command's tree")
		secLine(w, "sys time", r.SysSeconds, "getrusage")
		if r.PeakBytes != nil {
			byteLine(w, "cgroup peak memory", *r.PeakBytes, r.PeakSource+"; includes per-CPU charge batching")
		}
		if r.CorrectedBytes != nil {
			byteLine(w, "corrected peak", *r.CorrectedBytes, "traced charges: counter usage minus per-CPU stock")
		}
		byteLine(w, "peak RSS, one process", r.MaxRSSBytes, "ru_maxrss: the largest single process")
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
		fmt.Fprintln(w)
	}
	if len(rep.Results) > 1 {
		writeComparison(w, rep)
	}
}

func secLine(w io.Writer, label string, s stats.Summary, src string) {
	if src != "" {
		src = "; " + src
	}
	fmt.Fprintf(w, "  %-24s %9.3f s ± %.3f s   (median %.3f s, min %.3f s, max %.3f s%s)\n", label, s.Mean, s.Stddev, s.Median, s.Min, s.Max, src)
}

func byteLine(w io.Writer, label string, s stats.Summary, src string) {
	fmt.Fprintf(w, "  %-24s %10s ± %s   (median %s, min %s, max %s; %s)\n", label, human(uint64(s.Mean)), human(uint64(s.Stddev)),
		human(uint64(s.Median)), human(uint64(s.Min)), human(uint64(s.Max)), src)
}

// writeComparison ranks the commands by mean wall time, each against the
// fastest, with time and memory ratios.
func writeComparison(w io.Writer, rep *SeriesReport) {
	best := rep.Fastest()
	b := rep.Results[best]
	fmt.Fprintf(w, "Summary: %s ran fastest\n", quote(b.Command))
	for i, r := range rep.Results {
		if i == best {
			continue
		}
		t, tsd := stats.Ratio(r.WallSeconds, b.WallSeconds)
		line := fmt.Sprintf("  %.2f ± %.2f times faster than %s", t, tsd, quote(r.Command))
		if r.PeakBytes != nil && b.PeakBytes != nil {
			m, msd := stats.Ratio(*b.PeakBytes, *r.PeakBytes)
			line += fmt.Sprintf(", with %.2f ± %.2f times its cgroup peak memory", m, msd)
		}
		fmt.Fprintln(w, line)
	}
}

func quote(s string) string { return "'" + s + "'" }

// exportSeries writes every export asked for; each destination is left as
// it was when its own write fails.
func exportSeries(o seriesOpts, rep *SeriesReport) error {
	var errs []error
	write := func(name, flag string, fill func(io.Writer) error) {
		if name == "" {
			return
		}
		if err := outfile.Write(name, fill); err != nil {
			errs = append(errs, fmt.Errorf("writing %s %s: %w (it is left as it was)", flag, name, err))
		}
	}
	write(o.exportJSON, "--export-json", func(w io.Writer) error { return writeJSON(w, rep) })
	write(o.exportCSV, "--export-csv", rep.WriteCSV)
	write(o.exportMarkdown, "--export-markdown", rep.WriteMarkdown)
	return errors.Join(errs...)
}

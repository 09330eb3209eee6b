package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kernel"
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

// resolve finds the program in PATH; on failure it says so and returns the
// exit code (127 not found, 126 not executable).
func (c *commandSpec) resolve() int {
	path, err := exec.LookPath(c.argv[0])
	if err == nil {
		c.path = path
		return 0
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "cgpeak: %s: command not found (check the name and PATH)\n", c.argv[0])
		return exitNotFound
	}
	fmt.Fprintf(os.Stderr, "cgpeak: %s: not executable: %v (chmod +x it)\n", c.argv[0], err)
	return exitNoExec
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

// SeriesResult is one command's runs and their statistics; JSON field names
// and units (seconds, bytes) are stable.
type SeriesResult struct {
	Command        string         `json:"command"`
	Runs           int            `json:"runs"`
	WallSeconds    stats.Summary  `json:"wall_seconds"`
	UserSeconds    stats.Summary  `json:"user_seconds"`
	SysSeconds     stats.Summary  `json:"sys_seconds"`
	PeakBytes      *stats.Summary `json:"cgroup_peak_bytes,omitempty"`
	PeakSource     string         `json:"cgroup_peak_source,omitempty"`
	MaxRSSBytes    stats.Summary  `json:"ru_maxrss_bytes"`
	CorrectedBytes *stats.Summary `json:"corrected_peak_bytes,omitempty"` // traced runs only
	ExitCodes      []int          `json:"exit_codes"`
	Warnings       []string       `json:"warnings,omitempty"`
	Each           []*Report      `json:"each_run"`
}

// SeriesReport is what `cgpeak run --export-json` writes.
type SeriesReport struct {
	Results []*SeriesResult `json:"results"`
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
	var rep SeriesReport
	total := len(specs) * (o.series.runs + o.series.warmup)
	done := 0
	bar := newProgress(os.Stderr, total)
	for _, spec := range specs {
		res := &SeriesResult{Command: spec.name}
		for i := 0; i < o.series.warmup+o.series.runs; i++ {
			if o.series.prepare != "" {
				p := exec.Command("/bin/sh", "-c", o.series.prepare)
				p.Stdout, p.Stderr = stdout, os.Stderr
				if err := p.Run(); err != nil {
					bar.clear()
					select {
					case <-stopped:
						fmt.Fprintln(os.Stderr, "cgpeak: interrupted; no statistics")
						return 130
					default:
					}
					fmt.Fprintf(os.Stderr, "cgpeak: --prepare %q failed: %v (fix it, or drop --prepare)\n", o.series.prepare, err)
					return exitUsage
				}
			}
			r, code := measure(h, spec, mem, swap, o.trace, stdout, nil, stopped)
			done++
			bar.set(done, spec.name)
			if r == nil {
				bar.clear()
				return code
			}
			if r.Interrupted {
				bar.clear()
				fmt.Fprintln(os.Stderr, "cgpeak: interrupted: the workload was killed; no statistics")
				return 130
			}
			if i < o.series.warmup {
				continue
			}
			res.Each = append(res.Each, r)
		}
		summarize(res)
		rep.Results = append(rep.Results, res)
	}
	bar.clear()
	if err := exportSeries(o.series, &rep); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	if !o.quiet {
		w := io.Writer(os.Stderr)
		if o.output != "" {
			f, err := os.Create(o.output)
			if err != nil {
				fmt.Fprintf(os.Stderr, "cgpeak: opening --output: %v\n", err)
				return exitUsage
			}
			defer f.Close()
			w = f
		}
		if o.json {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			writeSeries(w, &rep)
		}
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

// summarize computes a command's statistics and warnings from its runs.
func summarize(r *SeriesResult) {
	var wall, user, sys, peak, rss, corr []float64
	for _, e := range r.Each {
		wall = append(wall, e.WallSeconds)
		user = append(user, e.UserSeconds)
		sys = append(sys, e.SysSeconds)
		rss = append(rss, float64(e.MaxRSSBytes))
		if e.PeakBytes != nil {
			peak = append(peak, float64(*e.PeakBytes))
			r.PeakSource = e.PeakSource
		}
		if e.Trace != nil {
			corr = append(corr, float64(e.Trace.CorrectedPeakBytes))
		}
		r.ExitCodes = append(r.ExitCodes, e.ExitCode)
	}
	r.Runs = len(r.Each)
	r.WallSeconds, r.UserSeconds, r.SysSeconds, r.MaxRSSBytes = stats.Summarize(wall), stats.Summarize(user), stats.Summarize(sys), stats.Summarize(rss)
	if len(peak) == len(r.Each) && len(peak) > 0 {
		s := stats.Summarize(peak)
		r.PeakBytes = &s
	}
	if len(corr) == len(r.Each) && len(corr) > 0 {
		s := stats.Summarize(corr)
		r.CorrectedBytes = &s
	}
	if o := stats.Outliers(wall); len(o) > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d wall times are statistical outliers (runs %s): other programs may have run meanwhile; try --warmup or a quieter machine", len(o), len(wall), runList(o)))
	}
	if r.Runs > 1 && r.WallSeconds.CV() > 0.10 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("noisy wall times: standard deviation %.0f%% of the mean; use more --runs", 100*r.WallSeconds.CV()))
	}
	if r.PeakBytes != nil {
		// Peaks move by whole charge batches from run to run: only a jump
		// beyond what the per-CPU stocks can hold is worth a warning.
		var o []int
		for _, i := range stats.Outliers(peak) {
			if math.Abs(peak[i]-r.PeakBytes.Median) > float64(kernel.ChargeBatch(kernel.Release()).Pages*uint64(runtime.NumCPU()*os.Getpagesize())) {
				o = append(o, i)
			}
		}
		if len(o) > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d cgroup peaks are outliers (runs %s)", len(o), len(peak), runList(o)))
		}
	}
	var failed int
	for _, c := range r.ExitCodes {
		if c != 0 {
			failed++
		}
	}
	if failed > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d runs exited non-zero", failed, r.Runs))
	}
}

func runList(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, strconv.Itoa(i+1))
	}
	return strings.Join(s, ", ")
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
	best := fastest(rep)
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

func fastest(rep *SeriesReport) int {
	best := 0
	for i, r := range rep.Results {
		if r.WallSeconds.Mean < rep.Results[best].WallSeconds.Mean {
			best = i
		}
	}
	return best
}

func quote(s string) string { return "'" + s + "'" }

// csvHeader names the CSV columns: stable, units in the names.
var csvHeader = []string{"command", "runs",
	"wall_mean_s", "wall_stddev_s", "wall_median_s", "wall_min_s", "wall_max_s",
	"user_mean_s", "user_stddev_s", "sys_mean_s", "sys_stddev_s",
	"cgroup_peak_mean_bytes", "cgroup_peak_stddev_bytes", "cgroup_peak_median_bytes", "cgroup_peak_min_bytes", "cgroup_peak_max_bytes", "cgroup_peak_source",
	"corrected_peak_mean_bytes", "ru_maxrss_mean_bytes", "ru_maxrss_max_bytes", "failed_runs"}

func csvRow(r *SeriesResult) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	b := func(v float64) string { return strconv.FormatFloat(math.Round(v), 'f', 0, 64) }
	row := []string{r.Command, strconv.Itoa(r.Runs),
		f(r.WallSeconds.Mean), f(r.WallSeconds.Stddev), f(r.WallSeconds.Median), f(r.WallSeconds.Min), f(r.WallSeconds.Max),
		f(r.UserSeconds.Mean), f(r.UserSeconds.Stddev), f(r.SysSeconds.Mean), f(r.SysSeconds.Stddev)}
	if p := r.PeakBytes; p != nil {
		row = append(row, b(p.Mean), b(p.Stddev), b(p.Median), b(p.Min), b(p.Max), r.PeakSource)
	} else {
		row = append(row, "", "", "", "", "", "")
	}
	if c := r.CorrectedBytes; c != nil {
		row = append(row, b(c.Mean))
	} else {
		row = append(row, "")
	}
	failed := 0
	for _, c := range r.ExitCodes {
		if c != 0 {
			failed++
		}
	}
	return append(row, b(r.MaxRSSBytes.Mean), b(r.MaxRSSBytes.Max), strconv.Itoa(failed))
}

func exportSeries(o seriesOpts, rep *SeriesReport) error {
	write := func(name, flag string, fill func(io.Writer) error) error {
		if name == "" {
			return nil
		}
		f, err := os.Create(name)
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		if err := fill(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", flag, err)
		}
		return f.Close()
	}
	if err := write(o.exportJSON, "--export-json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}); err != nil {
		return err
	}
	if err := write(o.exportCSV, "--export-csv", func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(csvHeader)
		for _, r := range rep.Results {
			cw.Write(csvRow(r))
		}
		cw.Flush()
		return cw.Error()
	}); err != nil {
		return err
	}
	return write(o.exportMarkdown, "--export-markdown", func(w io.Writer) error {
		return writeMarkdown(w, rep)
	})
}

// writeMarkdown writes the comparison as a table ready for a README.
func writeMarkdown(w io.Writer, rep *SeriesReport) error {
	best := fastest(rep)
	fmt.Fprintln(w, "| Command | Wall time [s] | Min [s] | Max [s] | Relative time | Cgroup peak [MiB] | Relative memory |")
	fmt.Fprintln(w, "|:---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rep.Results {
		t, tsd := stats.Ratio(r.WallSeconds, rep.Results[best].WallSeconds)
		peak, rel := "n/a", "n/a"
		if p := r.PeakBytes; p != nil {
			peak = fmt.Sprintf("%.2f ± %.2f", p.Mean/(1<<20), p.Stddev/(1<<20))
			if bp := rep.Results[best].PeakBytes; bp != nil {
				m, msd := stats.Ratio(*p, *bp)
				rel = fmt.Sprintf("%.2f ± %.2f", m, msd)
			}
		}
		cmd := strings.ReplaceAll(r.Command, "|", "\\|")
		_, err := fmt.Fprintf(w, "| `%s` | %.3f ± %.3f | %.3f | %.3f | %.2f ± %.2f | %s | %s |\n", cmd, r.WallSeconds.Mean, r.WallSeconds.Stddev,
			r.WallSeconds.Min, r.WallSeconds.Max, t, tsd, peak, rel)
		if err != nil {
			return err
		}
	}
	return nil
}

// Package series is the statistics policy of repeated runs: per command,
// mean, deviation, median, min and max of each figure, the warnings worth
// giving (outliers, noisy series, failed runs), and the comparison exports
// (CSV, Markdown). It knows nothing of how a run is made.
package series

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/cgpeak/cgpeak/stats"
)

// Figures are what the statistics need of one run.
type Figures struct {
	Wall, User, Sys float64 // seconds
	MaxRSS          uint64  // bytes
	Peak            *uint64 // the cgroup's peak in bytes, nil if unknown
	PeakSource      string
	Corrected       *uint64 // the traced corrected peak in bytes, nil if not traced
	ExitCode        int
}

// Run is one measured run.
type Run interface{ SeriesFigures() Figures }

// Result is one command's runs and their statistics; JSON field names and
// units (seconds, bytes) are stable (docs/json.md).
type Result[R Run] struct {
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
	Each           []R            `json:"each_run"`

	// The fields hyperfine's --export-json has, in its units and places, so
	// tools written for hyperfine's JSON read cgpeak's unchanged: wall time
	// in seconds; stddev null for a single run, as hyperfine writes it.
	Mean       float64           `json:"mean"`
	Stddev     *float64          `json:"stddev"`
	Median     float64           `json:"median"`
	User       float64           `json:"user"`   // mean user time
	System     float64           `json:"system"` // mean sys time
	Min        float64           `json:"min"`
	Max        float64           `json:"max"`
	Times      []float64         `json:"times"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Memory beside them: every run's cgroup peak and ru_maxrss, in bytes.
	CgroupPeaks []uint64 `json:"cgroup_peaks_bytes,omitempty"`
	MaxRSSes    []uint64 `json:"ru_maxrss_each_bytes"`
	Corrected   []uint64 `json:"corrected_peaks_bytes,omitempty"`
}

// Report is every command's result: what `cgpeak run --export-json` writes.
type Report[R Run] struct {
	Schema  int          `json:"schema"`
	Results []*Result[R] `json:"results"`
	// Comparisons of each command with the fastest, when there are several.
	Comparisons []Comparison `json:"comparisons,omitempty"`
	// Shell is the cost of starting the shell that ran the command lines,
	// already taken off every time above; nil without a shell.
	Shell *ShellCost `json:"shell_spawn,omitempty"`
	// Interrupted: a signal to cgpeak (InterruptedBy, e.g. SIGINT) ended the
	// series early; the results hold the runs that had finished.
	Interrupted   bool   `json:"interrupted,omitempty"`
	InterruptedBy string `json:"interrupted_by,omitempty"`
}

// ShellCost is what an empty command line costs through the shell: its
// mean times, subtracted from every run's (as hyperfine does), and the
// cgroup peak it alone reaches, which stays in every run's peak.
type ShellCost struct {
	Shell           string  `json:"shell"`
	Runs            int     `json:"runs"`
	WallSeconds     float64 `json:"wall_seconds"`
	UserSeconds     float64 `json:"user_seconds"`
	SysSeconds      float64 `json:"sys_seconds"`
	CgroupPeakBytes *uint64 `json:"cgroup_peak_bytes,omitempty"` // median over the runs
}

// Comparison is one command against the fastest: how many times slower it
// is in wall time, and how many times the fastest's cgroup peak its own is,
// each with a 95% interval and Welch's test of the difference.
type Comparison struct {
	Index      int               `json:"index"` // of the command in results
	Command    string            `json:"command"`
	Fastest    string            `json:"fastest"`
	Time       stats.Comparison  `json:"wall_time"`             // this / fastest
	CgroupPeak *stats.Comparison `json:"cgroup_peak,omitempty"` // this / fastest
	Corrected  *stats.Comparison `json:"corrected_peak,omitempty"`
}

// Compare fills rep.Comparisons against the fastest command.
func (rep *Report[R]) Compare() {
	rep.Comparisons = nil
	if len(rep.Results) < 2 {
		return
	}
	b := rep.Results[rep.Fastest()]
	for i, r := range rep.Results {
		if r == b {
			continue
		}
		c := Comparison{Index: i, Command: r.Command, Fastest: b.Command, Time: stats.Compare(r.Times, b.Times)}
		if len(r.CgroupPeaks) > 0 && len(b.CgroupPeaks) > 0 {
			m := stats.Compare(Floats(r.CgroupPeaks), Floats(b.CgroupPeaks))
			c.CgroupPeak = &m
		}
		if len(r.Corrected) > 0 && len(b.Corrected) > 0 {
			m := stats.Compare(Floats(r.Corrected), Floats(b.Corrected))
			c.Corrected = &m
		}
		rep.Comparisons = append(rep.Comparisons, c)
	}
}

// Floats converts byte counts for the statistics.
func Floats(xs []uint64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// Summarize computes a command's statistics and warnings from its runs.
// stockBytes is what the per-CPU charge stocks can hold in all: cgroup
// peaks that differ by less are not outliers.
func Summarize[R Run](command string, runs []R, stockBytes float64) *Result[R] {
	r := &Result[R]{Command: command, Each: runs}
	var wall, user, sys, peak, rss, corr []float64
	for _, run := range runs {
		e := run.SeriesFigures()
		wall = append(wall, e.Wall)
		user = append(user, e.User)
		sys = append(sys, e.Sys)
		rss = append(rss, float64(e.MaxRSS))
		r.MaxRSSes = append(r.MaxRSSes, e.MaxRSS)
		if e.Peak != nil {
			peak = append(peak, float64(*e.Peak))
			r.CgroupPeaks = append(r.CgroupPeaks, *e.Peak)
			r.PeakSource = e.PeakSource
		}
		if e.Corrected != nil {
			corr = append(corr, float64(*e.Corrected))
			r.Corrected = append(r.Corrected, *e.Corrected)
		}
		r.ExitCodes = append(r.ExitCodes, e.ExitCode)
	}
	r.Runs = len(r.Each)
	r.WallSeconds, r.UserSeconds, r.SysSeconds, r.MaxRSSBytes = stats.Summarize(wall), stats.Summarize(user), stats.Summarize(sys), stats.Summarize(rss)
	r.Times = wall
	r.Mean, r.Median, r.Min, r.Max = r.WallSeconds.Mean, r.WallSeconds.Median, r.WallSeconds.Min, r.WallSeconds.Max
	r.User, r.System = r.UserSeconds.Mean, r.SysSeconds.Mean
	if r.Runs > 1 {
		sd := r.WallSeconds.Stddev
		r.Stddev = &sd
	}
	if len(peak) == len(r.Each) && len(peak) > 0 {
		s := stats.Summarize(peak)
		r.PeakBytes = &s
	}
	if len(corr) == len(r.Each) && len(corr) > 0 {
		s := stats.Summarize(corr)
		r.CorrectedBytes = &s
	}
	if o := stats.Outliers(wall); len(o) > 0 {
		if coldFirst(o, wall, r.WallSeconds.Median) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the first run took much longer than the others (%s against a median of %s), as when files it reads were not yet in the page cache: "+coldRemedy, seconds(wall[0]), seconds(r.WallSeconds.Median)))
		}
		if rest := without0(o); len(rest) > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d wall times are statistical outliers (runs %s): other programs may have run meanwhile; try --warmup or a quieter machine", len(rest), len(wall), runList(rest)))
		}
	}
	if r.Runs > 1 && r.WallSeconds.CV() > 0.10 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("noisy wall times: standard deviation %.0f%% of the mean; use more --runs", 100*r.WallSeconds.CV()))
	}
	if r.PeakBytes != nil {
		// Peaks move by whole charge batches from run to run: only a jump
		// beyond what the per-CPU stocks can hold is worth a warning.
		var o []int
		for _, i := range stats.Outliers(peak) {
			if math.Abs(peak[i]-r.PeakBytes.Median) > stockBytes {
				o = append(o, i)
			}
		}
		if coldFirst(o, peak, r.PeakBytes.Median) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the first run's cgroup peak stands out (%.0f KiB above the median): file pages are charged to the cgroup that first reads them into the page cache, so later runs find them cached and charged elsewhere: "+coldRemedy, (peak[0]-r.PeakBytes.Median)/1024))
		}
		if rest := without0(o); len(rest) > 0 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d cgroup peaks are outliers (runs %s)", len(rest), len(peak), runList(rest)))
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
	return r
}

// coldRemedy is hyperfine's advice for a first run that found cold caches.
const coldRemedy = "use --warmup N to measure warm caches, or --prepare 'sync; echo 3 > /proc/sys/vm/drop_caches' (as root) to make every run cold"

// coldFirst: the first run is an outlier above the median, the mark of
// caches it filled for the runs after it.
func coldFirst(outliers []int, v []float64, median float64) bool {
	return len(outliers) > 0 && outliers[0] == 0 && v[0] > median
}

// without0 is the outliers other than a cold first run's.
func without0(o []int) []int {
	if len(o) > 0 && o[0] == 0 {
		return o[1:]
	}
	return o
}

// seconds prints a time for a warning.
func seconds(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.0f µs", s*1e6)
}

func runList(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, strconv.Itoa(i+1))
	}
	return strings.Join(s, ", ")
}

// Fastest is the index of the command with the least mean wall time.
func (rep *Report[R]) Fastest() int {
	best := 0
	for i, r := range rep.Results {
		if r.WallSeconds.Mean < rep.Results[best].WallSeconds.Mean {
			best = i
		}
	}
	return best
}

// CSVHeader names the CSV columns: stable, units in the names.
var CSVHeader = []string{"command", "runs",
	"wall_mean_s", "wall_stddev_s", "wall_median_s", "wall_min_s", "wall_max_s",
	"user_mean_s", "user_stddev_s", "sys_mean_s", "sys_stddev_s",
	"cgroup_peak_mean_bytes", "cgroup_peak_stddev_bytes", "cgroup_peak_median_bytes", "cgroup_peak_min_bytes", "cgroup_peak_max_bytes", "cgroup_peak_source",
	"corrected_peak_mean_bytes", "ru_maxrss_mean_bytes", "ru_maxrss_max_bytes", "failed_runs"}

func csvRow[R Run](r *Result[R]) []string {
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

// exportSeries writes every export asked for; each destination is left as
// it was when its own write fails.
// WriteCSV writes a row per command, the column names carrying the units.
func (rep *Report[R]) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for _, r := range rep.Results {
		cw.Write(csvRow(r))
	}
	cw.Flush()
	return cw.Error()
}

// WriteMarkdown writes the comparison as a table ready for a README.
func (rep *Report[R]) WriteMarkdown(w io.Writer) error {
	best := rep.Fastest()
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

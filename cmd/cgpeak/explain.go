package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/chargeprof"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/internal/replay"
	"github.com/cgpeak/cgpeak/plot"
)

func explainCmd(args []string) int {
	fs := pflag.NewFlagSet("explain", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the explanation as one JSON object")
	timeline := fs.Bool("timeline", false, "print the timeline of usage U, real use U-S and the watermark")
	plotFile := fs.String("plot", "", "write the timeline as an SVG image to FILE")
	po := profileFlags(fs)
	setUsage(fs, "Usage: cgpeak explain [flags] TRACE\n\nReplays a charge trace (cgpeak run --trace-output; binary or JSON Lines) offline, without root or BPF,\nand explains the cgroup's peak: real use vs pages pre-charged in per-CPU stocks.\n\nFlags:\n")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "cgpeak: explain takes one trace file: cgpeak explain TRACE")
		return exitUsage
	}
	if err := checkDests(dest{"--plot", *plotFile}); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	f, code := openTrace(fs.Arg(0))
	if code != 0 {
		return code
	}
	defer f.Close()
	ex, tl, err := replay.Trace(f, fs.Arg(0), *timeline || *plotFile != "")
	var prof *chargeprof.Builder
	if err == nil && po.wanted() {
		// The trace read a second time, only when a profile was asked for.
		prof, err = chargeprof.ReadFile(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: %s: %v\n", fs.Arg(0), err)
		return exitBadTrace
	}
	failed := 0
	if *plotFile != "" {
		if err := outfile.Write(*plotFile, func(w io.Writer) error {
			usage, peak := "memory.current", "memory.peak"
			if strings.Contains(ex.PeakSource, "max_usage_in_bytes") {
				usage, peak = "memory.usage_in_bytes", "memory.max_usage_in_bytes"
			}
			return plot.TimelineOf(w, "cgpeak: "+fs.Arg(0), tl.Points, ex.PageSize, usage, peak)
		}); err != nil {
			fmt.Fprintf(os.Stderr, "cgpeak: writing --plot %s: %v (it is left as it was)\n", *plotFile, err)
			failed = exitWrite
		}
	}
	var top []topFunction
	if prof != nil {
		var code int
		if top, code = po.write(prof, ex); code != 0 {
			return code
		}
	}
	if code := emit(dest{}, os.Stdout, func(w io.Writer) error {
		if *asJSON {
			return writeJSON(w, explainJSON{ex, top})
		}
		writeTraceReport(w, ex)
		if *timeline {
			writeTimeline(w, tl)
		}
		if po.top > 0 {
			writeTop(w, top, ex.PageSize)
		}
		return nil
	}); code != 0 {
		return code
	}
	return failed
}

// explainJSON is `cgpeak explain --json`: the replay's explanation, and
// with --top the user functions that charged the most.
type explainJSON struct {
	*TraceReport
	TopFunctions []topFunction `json:"top_functions,omitempty"`
}

// writeTimeline prints the steps where U, U - S or the watermark changed;
// of a long trace, those the replay kept per interval (analysis.Timeline).
func writeTimeline(w io.Writer, tl analysis.Timeline) {
	pts := tl.Points
	fmt.Fprintf(w, "\n%12s  %-16s %4s %10s %10s %10s\n", "ms", "event", "cpu", "usage U", "real U-S", "watermark")
	var last analysis.Point
	for i, p := range pts {
		if i > 0 && p.Usage == last.Usage && p.Real == last.Real && p.Watermark == last.Watermark {
			continue
		}
		fmt.Fprintf(w, "%12.3f  %-16s %4d %10d %10d %10d\n", float64(p.Time-pts[0].Time)/1e6, p.Op, p.CPU, p.Usage, p.Real, p.Watermark)
		last = p
	}
	fmt.Fprintln(w, strings.Repeat(" ", 14)+"(pages)")
	if tl.Interval > 0 {
		fmt.Fprintf(w, "%s(more than %d steps: per %.3f ms, only the first, last, lowest and highest of each column are listed; every peak is)\n", strings.Repeat(" ", 14), analysis.TimelinePoints, float64(tl.Interval)/1e6)
	}
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

var kindNames = map[string]string{"anon": "anon", "file": "page cache", "shmem": "shmem", "swapin": "swapped in", "user": "other user pages", "thp": "transparent huge pages", "page_tables": "page tables",
	"kernel_stack": "kernel stacks", "slab": "slab", "vmalloc": "vmalloc", "socket": "socket buffers", "kernel": "other kernel memory"}

// kindsLine says what the requests were for, most pages first, naming the
// kernel functions behind kernel memory.
func kindsLine(kinds map[string]analysis.KindStats, stats bool) string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := kinds[names[i]], kinds[names[j]]
		return a.Pages > b.Pages || a.Pages == b.Pages && names[i] < names[j]
	})
	var parts []string
	for _, k := range names {
		st := kinds[k]
		label := kindNames[k]
		if label == "" {
			label = k
		}
		part := fmt.Sprintf("%d %s", st.Pages, label)
		if len(st.Callers) > 0 {
			var cs []string
			for c, n := range st.Callers {
				cs = append(cs, fmt.Sprintf("%s %d", c, n))
			}
			sort.Strings(cs)
			part += " (" + strings.Join(cs, ", ") + ")"
		}
		parts = append(parts, part)
	}
	if stats {
		// The tracepoint backend: no requests, no stacks; the statistic
		// each page was added to says what it was for.
		return strings.Join(parts, ", ") + " (pages added to each memory.stat statistic)"
	}
	return strings.Join(parts, ", ") + " (pages requested, by the kernel stack of each request)"
}

// writeTotals prints the charge totals per CPU and per process.
//
// pagesOnly: a stock-read summary, where requests the stocks served are
// counted in pages only.
func writeTotals(w io.Writer, cpus map[int]analysis.CPUStats, procs map[int]analysis.ProcStats, cgroups map[string]analysis.CgroupStats, pagesOnly bool) {
	for _, cpu := range sortedKeys(cpus) {
		s := cpus[cpu]
		if pagesOnly {
			fmt.Fprintf(w, "  cpu %-3d                  %d pages requested, %d from stock, %d counter charges (%d pages)\n", cpu, s.RequestedPages, s.FromStockPages, s.CounterCharges, s.CounterPages)
			continue
		}
		fmt.Fprintf(w, "  cpu %-3d                  %d requests (%d pages), %d from stock, %d counter charges (%d pages)\n", cpu, s.Requests, s.RequestedPages, s.FromStock, s.CounterCharges, s.CounterPages)
	}
	for _, pid := range sortedKeys(procs) {
		s := procs[pid]
		fmt.Fprintf(w, "  pid %-7d %-12s %d requests, %d pages\n", pid, s.Comm, s.Requests, s.RequestedPages)
	}
	paths := make([]string, 0, len(cgroups))
	for p := range cgroups {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(w, "  cgroup %s: %d requests, %d pages\n", p, cgroups[p].Requests, cgroups[p].Pages)
	}
}

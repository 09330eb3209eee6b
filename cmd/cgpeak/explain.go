package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/chargeprof"
	"github.com/cgpeak/cgpeak/plot"
	"github.com/cgpeak/cgpeak/trace"
)

// Explanation is `cgpeak explain --json`; byte figures, stable names.
type Explanation struct {
	Trace              string            `json:"trace"`
	Kernel             string            `json:"kernel"`
	Backend            string            `json:"backend"`
	Mode               string            `json:"mode"`
	StocksRead         bool              `json:"stocks_read,omitempty"` // a summary whose events carry the kernel's stocks
	BatchPages         uint64            `json:"batch_pages"`
	PageSize           uint64            `json:"page_size"`
	Events             uint64            `json:"events"`
	Lost               uint64            `json:"lost_events"`
	Missed             map[string]uint64 `json:"missed_calls,omitempty"`
	Resyncs            uint64            `json:"resyncs"`
	ResyncPages        uint64            `json:"resync_pages"`
	Complete           bool              `json:"complete"` // end line present, nothing lost, missed or resynced
	Incomplete         []string          `json:"incomplete,omitempty"`
	PeakBytes          *uint64           `json:"cgroup_peak_bytes,omitempty"`
	PeakSource         string            `json:"cgroup_peak_source,omitempty"`
	WatermarkBytes     uint64            `json:"traced_watermark_bytes"`
	CorrectedPeakBytes uint64            `json:"corrected_peak_bytes"`
	// Within CorrectedPeakErrorBytes of the real peak, from MissedCalls
	// calls missed or lost (analysis.ErrorBound).
	CorrectedPeakErrorBytes uint64                          `json:"corrected_peak_error_bytes"`
	MissedCalls             uint64                          `json:"missed_or_lost_calls"`
	Explanation             string                          `json:"explanation"`
	PerCPU                  map[int]analysis.CPUStats       `json:"per_cpu"`
	PerProcess              map[int]analysis.ProcStats      `json:"per_process"`
	Kinds                   map[string]analysis.KindStats   `json:"charges_by_kind,omitempty"` // pages requested, by what for
	Cgroups                 map[string]analysis.CgroupStats `json:"per_cgroup,omitempty"`      // descendants: requests per cgroup directory
	TopFunctions            []topFunction                   `json:"top_functions,omitempty"`   // --top: user functions by pages charged
}

func explainCmd(args []string) int {
	fs := pflag.NewFlagSet("explain", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the explanation as one JSON object")
	timeline := fs.Bool("timeline", false, "print the timeline of usage U, real use U-S and the watermark")
	plotFile := fs.String("plot", "", "write the timeline as an SVG image to FILE")
	po := profileFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage: cgpeak explain [flags] TRACE.jsonl\n\nReplays a charge trace (cgpeak run --trace-output) offline, without root or BPF,\nand explains the cgroup's peak: real use vs pages pre-charged in per-CPU stocks.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "cgpeak: explain takes one trace file: cgpeak explain TRACE.jsonl")
		return exitUsage
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	ex, pts, prof, err := replayTrace(f, fs.Arg(0), *timeline || *plotFile != "", po.wanted())
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: %s: %v\n", fs.Arg(0), err)
		return exitBadTrace
	}
	if *plotFile != "" {
		out, err := os.Create(*plotFile)
		if err == nil {
			err = plot.Timeline(out, "cgpeak: "+fs.Arg(0), pts, ex.PageSize)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			os.Remove(*plotFile)
			fmt.Fprintf(os.Stderr, "cgpeak: writing --plot: %v\n", err)
			return exitUsage
		}
	}
	if prof != nil {
		top, code := po.write(prof, ex)
		if code != 0 {
			return code
		}
		ex.TopFunctions = top
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
	} else {
		writeExplanation(os.Stdout, ex)
		if *timeline {
			writeTimeline(os.Stdout, pts)
		}
		if po.top > 0 {
			writeTop(os.Stdout, ex.TopFunctions, ex.PageSize)
		}
	}
	return 0
}

// explainTrace streams a trace through the model.
func explainTrace(r io.Reader, name string, keepTimeline bool) (*Explanation, []analysis.Point, error) {
	ex, pts, _, err := replayTrace(r, name, keepTimeline, false)
	return ex, pts, err
}

// replayTrace streams a trace through the model and, with stacks, gathers
// its charge requests by stack too.
func replayTrace(r io.Reader, name string, keepTimeline, stacks bool) (*Explanation, []analysis.Point, *traceStacks, error) {
	rd, err := trace.NewReader(r)
	if err != nil {
		return nil, nil, nil, err
	}
	var prof *traceStacks
	if stacks {
		prof = &traceStacks{b: chargeprof.New(rd), r: rd}
	}
	h := rd.Header
	m := analysis.NewModel(h.Batch, keepTimeline)
	if h.Attached {
		m.Attached()
	}
	if h.StocksRead {
		m.StocksRead()
	}
	var n uint64
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
		n++
		if prof != nil {
			prof.b.Add(e)
		}
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
	res := m.Result()
	ex := &Explanation{Trace: name, Kernel: h.Kernel, Backend: h.Backend, Mode: h.Mode, StocksRead: h.StocksRead, BatchPages: h.Batch, PageSize: h.PageSize, Events: n,
		WatermarkBytes: res.Watermark * h.PageSize, CorrectedPeakBytes: res.CorrectedPeak.Pages * h.PageSize,
		PerCPU: res.CPUs, PerProcess: res.Procs, Kinds: res.Kinds, Resyncs: res.Totals.Resyncs, ResyncPages: res.Totals.ResyncPages}
	var peak uint64
	label := ""
	if rd.End == nil {
		ex.Incomplete = []string{"the trace has no end line (cut short)"}
	} else {
		ex.Lost, ex.Missed = rd.End.Lost, rd.End.Missed
		if rd.End.PeakBytes != nil {
			peak, label = *rd.End.PeakBytes, rd.End.PeakSource
			ex.PeakBytes, ex.PeakSource = rd.End.PeakBytes, label
		}
	}
	if h.Descendants {
		var names map[string]string
		if rd.End != nil {
			names = rd.End.Cgroups
		}
		ex.Cgroups = analysis.CgroupsByName(res.Cgroups, names)
	}
	ex.Incomplete = append(ex.Incomplete, analysis.Incomplete(ex.Lost, ex.Missed, res.Totals)...)
	ex.Complete = len(ex.Incomplete) == 0
	b := analysis.ErrorBound(ex.Lost, ex.Missed, res.Totals, h.Batch)
	ex.CorrectedPeakErrorBytes, ex.MissedCalls = b.Pages*h.PageSize, b.Calls
	ex.Explanation = analysis.Explain(res, label, peak, h.PageSize)
	return ex, res.Timeline, prof, nil
}

func writeExplanation(w io.Writer, ex *Explanation) {
	fmt.Fprintf(w, "trace %s: %d events, %s backend, %s, Linux %s, charge batch %d pages\n", ex.Trace, ex.Events, ex.Backend, modeLabel(ex.Mode, ex.StocksRead), ex.Kernel, ex.BatchPages)
	if !ex.Complete {
		fmt.Fprintf(w, "  INCOMPLETE: %s; the figures below are not exact\n", strings.Join(ex.Incomplete, "; "))
	}
	if ex.PeakBytes != nil {
		fmt.Fprintf(w, "  cgroup peak memory       %10s     (%s, read when the run ended)\n", human(*ex.PeakBytes), ex.PeakSource)
	}
	fmt.Fprintf(w, "  traced watermark         %10s     (page_counter.watermark in the trace)\n", human(ex.WatermarkBytes))
	fmt.Fprintf(w, "  corrected peak           %10s     (max of counter usage minus per-CPU stock, replayed)\n", human(ex.CorrectedPeakBytes)+bound(ex.CorrectedPeakErrorBytes, ex.MissedCalls, ex.Complete))
	fmt.Fprintf(w, "  explanation              %s\n", ex.Explanation)
	if len(ex.Kinds) > 0 {
		fmt.Fprintf(w, "  charged for              %s\n", kindsLine(ex.Kinds))
	}
	writeTotals(w, ex.PerCPU, ex.PerProcess, ex.Cgroups, ex.StocksRead)
}

// writeTimeline prints the steps where U, U - S or the watermark changed.
func writeTimeline(w io.Writer, pts []analysis.Point) {
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
func kindsLine(kinds map[string]analysis.KindStats) string {
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

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/loader"
	"github.com/cgpeak/cgpeak/trace"
)

type traceOpts struct {
	on        bool
	charges   bool // record every charge (per-charge mode), not the summary
	descend   bool // also the cgroups below the target (implies charges)
	output    string
	backend   string
	kernelBTF string
	timeline  bool
	plot      string
}

// TraceReport is the part of a run's report that comes from traced charges.
type TraceReport struct {
	Backend string `json:"backend"`
	Mode    string `json:"mode"` // summary, or charges: every charge recorded
	// StocksRead: summary mode read the per-CPU stocks from the kernel, so
	// requests the stocks served are counted in pages only.
	StocksRead         bool                            `json:"stocks_read,omitempty"`
	StocksNote         string                          `json:"stocks_note,omitempty"` // summary mode: why the stocks were not read
	Events             uint64                          `json:"events"`
	Lost               uint64                          `json:"lost_events"`
	Missed             map[string]uint64               `json:"missed_calls,omitempty"`
	Resyncs            uint64                          `json:"resyncs"`
	Exact              bool                            `json:"exact"` // no event lost, missed or resynced
	Incomplete         []string                        `json:"incomplete,omitempty"`
	Attached           bool                            `json:"attached,omitempty"`        // began on a running cgroup: figures cover the traced window
	Kinds              map[string]analysis.KindStats   `json:"charges_by_kind,omitempty"` // pages requested, by what for
	PerCPU             map[int]analysis.CPUStats       `json:"per_cpu"`
	PerProcess         map[int]analysis.ProcStats      `json:"per_process"`
	Cgroups            map[string]analysis.CgroupStats `json:"per_cgroup,omitempty"` // descendants: requests per cgroup directory
	BatchPages         uint64                          `json:"batch_pages"`
	WatermarkBytes     uint64                          `json:"traced_watermark_bytes"`
	CorrectedPeakBytes uint64                          `json:"corrected_peak_bytes"`
	Explanation        string                          `json:"explanation"`
	Output             string                          `json:"trace_output,omitempty"`
	// The tracer's own runs and time in the kernel, where the kernel counts
	// them (kernel.bpf_stats_enabled=1); not part of any figure above.
	ProgramRuns    uint64   `json:"program_runs,omitempty"`
	ProgramSeconds float64  `json:"program_seconds,omitempty"`
	Missing        []string `json:"not_traced,omitempty"`
	Charges        uint64   `json:"charge_requests"`
	RequestedPages uint64   `json:"requested_pages"`
	FromStock      uint64   `json:"served_from_stock"`
	FromStockPages uint64   `json:"served_from_stock_pages"`
	CounterCharges uint64   `json:"counter_charges"`
	Forced         uint64   `json:"forced_charges"`
	Failed         uint64   `json:"failed_charges"`
	result         analysis.Result
	pageSize       uint64
}

type traceSession struct {
	o        traceOpts
	t        *loader.Tracer
	file     *outfile.File
	w        *trace.Writer
	model    *analysis.Model
	done     chan error
	batch    uint64
	others   uint64 // events of the memsw/swap counter
	attached bool
	werr     error  // the first failed write of the trace file
	cgid     uint64 // the target's cgroup id
	dir      string // the target's directory
}

func (o traceOpts) mode() string {
	if o.charges {
		return "charges"
	}
	return "summary"
}

// chargeBatch is MEMCG_CHARGE_BATCH, a #define that no BTF records: 32 pages
// up to 6.0, 64 from 6.1 (commit 1813e51eece0).
func chargeBatch(release string) (uint64, string) {
	var major, minor int
	parts := strings.SplitN(release, ".", 3)
	if len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(digits(parts[1]))
	}
	if major > 6 || major == 6 && minor >= 1 {
		return 64, "MEMCG_CHARGE_BATCH for Linux " + release + " (64 from 6.1)"
	}
	return 32, "MEMCG_CHARGE_BATCH for Linux " + release + " (32 before 6.1)"
}

func digits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// startTrace attaches the tracer to the leaf before the workload starts, so
// its first charge is seen.
//
// attached: the cgroup was running before (cgpeak trace), so usage and stocks
// from before are not in the trace.
func startTrace(o traceOpts, leaf *cgroup.Leaf, argv []string, attached bool) (*traceSession, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(leaf.Path, &st); err != nil {
		return nil, fmt.Errorf("reading the run's cgroup id: %w", err)
	}
	rel := kernelRelease()
	batch, src := chargeBatch(rel)
	t, err := loader.Open(loader.Options{CgroupID: st.Ino, Backend: o.backend, KernelBTF: o.kernelBTF, Summary: !o.charges, Descendants: o.descend,
		Batch: batch, PerRequest: os.Getenv("CGPEAK_SUMMARY_PER_REQUEST") != "", WalkEveryStack: os.Getenv("CGPEAK_WALK_EVERY_STACK") != ""})
	if err != nil {
		return nil, fmt.Errorf("charge tracing: %w", err)
	}
	s := &traceSession{o: o, t: t, model: analysis.NewModel(batch, o.timeline || o.plot != ""), done: make(chan error, 1), batch: batch}
	if t.StocksRead {
		s.model.StocksRead()
	}
	s.cgid, s.dir = st.Ino, leaf.Path
	if attached {
		s.model.Attached()
		s.attached = true
	}
	if o.output != "" {
		// Written beside the destination, which is replaced only once the
		// trace is whole.
		if s.file, err = outfile.Create(o.output); err != nil {
			t.Close()
			return nil, fmt.Errorf("opening --trace-output %s: %w", o.output, err)
		}
		fns := map[string]string{}
		for _, f := range t.Functions {
			if f.Missing != "" {
				fns[f.Name] = "missing: " + f.Missing
			} else if f.Unneeded != "" {
				fns[f.Name] = "not traced: " + f.Unneeded
			} else {
				fns[f.Name] = f.Symbol
			}
		}
		ver := 1
		if leaf.H.V2 {
			ver = 2
		}
		h := trace.Header{Kernel: rel, Batch: batch, BatchSource: src, CPUs: runtime.NumCPU(), PageSize: uint64(os.Getpagesize()),
			Backend: t.Backend, Mode: o.mode(), StocksRead: t.StocksRead, Cgroup: leaf.Path, CgroupID: st.Ino, CgroupVersion: ver, Command: argv, Attached: attached, Descendants: o.descend,
			Functions: fns, Started: time.Now().UTC().Format(time.RFC3339Nano)}
		if s.w, err = trace.NewWriter(s.file, h); err != nil {
			s.abort()
			return nil, fmt.Errorf("writing --trace-output: %w", err)
		}
	}
	go s.read()
	return s, nil
}

func (s *traceSession) read() {
	counterName := "memsw"
	for {
		ev, err := s.t.Read()
		if err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) || errors.Is(err, ringbuf.ErrClosed) {
				err = nil
			}
			s.done <- err
			return
		}
		if ev.Op == analysis.OpCharge && s.o.charges {
			ev.Kind, ev.Caller = s.t.Kind(ev, s.batch)
		}
		cg := ev.Cgroup
		if cg == s.cgid {
			cg = 0 // the header's: not repeated on every line
		}
		if ev.Counter == "" || ev.Counter == "memory" {
			s.model.Apply(ev.Event)
		} else {
			s.others++
			ev.Counter = counterName
		}
		if s.w != nil {
			if s.werr != nil {
				continue // keep draining: the events still count
			}
			if err := s.w.Write(trace.Event{T: ev.Time, CPU: ev.CPU, PID: ev.PID, TID: ev.TID, Comm: ev.Comm, Op: ev.Op.String(), Fn: ev.Fn,
				Counter: ev.Counter, Pages: ev.Pages, Usage: ev.Usage, Watermark: ev.Watermark, Forced: ev.Forced, Failed: ev.Failed,
				Gfp: ev.Gfp, Kind: ev.Kind, Caller: ev.Caller, Consumed: ev.Consumed, Cgroup: cg, Stocked: ev.Stocked, Real: ev.Real}); err != nil {
				s.werr = err
			}
		}
	}
}

// abort detaches and drops a half-written trace: the destination stays as
// it was.
func (s *traceSession) abort() {
	s.t.Close()
	s.file.Abort()
}

// stop drains what the kernel still holds, detaches, and explains the run's
// peak with the cgroup's own figure.
func (s *traceSession) stop(f cgroup.Figures) (*TraceReport, error) {
	// The workload has exited and its memory is uncharged (exit_mmap runs
	// before wait4 returns): every event it caused is in the buffer.
	err := s.t.Flush()
	if rerr := <-s.done; err == nil {
		err = rerr
	}
	var sum *analysis.Summary
	if !s.o.charges && !s.t.StocksRead {
		v, serr := s.t.Summary()
		if err == nil {
			err = serr
		}
		s.model.ApplySummary(v)
		sum = &v
	}
	lost, lerr := s.t.Lost()
	missed, merr := s.t.Missed()
	if lerr == nil {
		lerr = merr
	}
	runs, spent, cerr := s.t.Cost()
	if lerr == nil {
		lerr = cerr
	}
	s.t.Close()
	if err == nil {
		err = lerr
	}
	r := s.model.Result()
	page := uint64(os.Getpagesize())
	tr := &TraceReport{Backend: s.t.Backend, Mode: s.o.mode(), StocksRead: s.t.StocksRead, StocksNote: s.t.StocksNote, FromStockPages: r.Totals.FromStockPages, Events: r.Events + s.others, Lost: lost, Missed: missed, Resyncs: r.Totals.Resyncs, Attached: s.attached, Kinds: r.Kinds, PerCPU: r.CPUs, PerProcess: r.Procs, BatchPages: s.batch,
		WatermarkBytes: r.Watermark * page, CorrectedPeakBytes: r.CorrectedPeak.Pages * page, Output: s.o.output,
		Missing: s.t.Missing(), Charges: r.Totals.Requests, RequestedPages: r.Totals.RequestedPages, FromStock: r.Totals.FromStock, CounterCharges: r.Totals.CounterCharges,
		Forced: r.Totals.Forced, Failed: r.Totals.Failed, result: r, pageSize: page, ProgramRuns: runs, ProgramSeconds: spent.Seconds()}
	var names map[string]string
	if s.o.descend {
		names = cgroupNames(s.dir)
		tr.Cgroups = analysis.CgroupsByName(r.Cgroups, names)
	}
	tr.Incomplete = analysis.Incomplete(lost, missed, r.Totals)
	tr.Exact = len(tr.Incomplete) == 0
	var peak uint64
	if f.HavePeak {
		peak = f.PeakBytes
	}
	tr.Explanation = analysis.Explain(r, f.PeakFile, peak, page)
	if s.w != nil {
		end := trace.End{Lost: lost, Missed: missed, Summary: sum, Cgroups: names}
		if f.HavePeak {
			v := f.PeakBytes
			end.PeakBytes, end.PeakSource = &v, f.PeakFile
		} else {
			end.PeakUnavailable = strings.Join(f.Missing, "; ")
		}
		cerr := s.werr
		if cerr == nil {
			cerr = s.w.Close(end)
		}
		if cerr == nil {
			cerr = s.file.Commit()
		} else {
			s.file.Abort()
		}
		if cerr != nil {
			tr.Output = ""
			if err == nil {
				err = &writeError{fmt.Errorf("writing --trace-output %s: %w (it is left as it was)", s.o.output, cerr)}
			}
		}
	}
	return tr, err
}

func writeTraceText(w io.Writer, t *TraceReport) {
	fmt.Fprintf(w, "  traced charges           %d events (%s backend, %s), %d lost\n", t.Events, t.Backend, modeLabel(t.Mode, t.StocksRead), t.Lost)
	exact := ""
	if !t.Exact {
		exact = "; INCOMPLETE, not exact: " + strings.Join(t.Incomplete, "; ")
	}
	window := ""
	if t.Attached {
		window = " while traced"
	}
	fmt.Fprintf(w, "  corrected peak           %10s     (traced charges: max of counter usage minus per-CPU stock%s%s)\n", human(t.CorrectedPeakBytes), window, exact)
	fmt.Fprintf(w, "  traced watermark         %10s     (page_counter.watermark as the tracer read it)\n", human(t.WatermarkBytes))
	fmt.Fprintf(w, "  explanation              %s\n", t.Explanation)
	if len(t.Kinds) > 0 {
		fmt.Fprintf(w, "  charged for              %s\n", kindsLine(t.Kinds))
	}
	writeCharges(w, t.result.Totals, t.BatchPages)
	writeTotals(w, t.PerCPU, t.PerProcess, t.Cgroups, t.StocksRead)
	if t.Mode == "summary" && !t.StocksRead && t.StocksNote != "" {
		fmt.Fprintf(w, "  summary mode probed every charge request: the per-CPU stocks could not be read (%s)\n", t.StocksNote)
	}
	for _, m := range t.Missing {
		fmt.Fprintf(w, "  not traced: %s\n", m)
	}
	if t.ProgramRuns > 0 {
		fmt.Fprintf(w, "  tracer cost              %d program runs, %.3f ms in the kernel (kernel.bpf_stats_enabled; probe entry and exit not included)\n", t.ProgramRuns, t.ProgramSeconds*1e3)
	}
	if t.Output != "" {
		fmt.Fprintf(w, "  trace written to         %s\n", t.Output)
	}
}

// cgroupNames maps the ids of a cgroup and those below it to their
// directories (a cgroup's id is its directory's inode number). Cgroups
// removed before tracing ended are missing and shown by id.
func cgroupNames(top string) map[string]string {
	names := map[string]string{}
	filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			names[strconv.FormatUint(st.Ino, 10)] = p
		}
		return nil
	})
	return names
}

// modeLabel names a trace's mode, and how a summary followed the stocks.
func modeLabel(mode string, stocksRead bool) string {
	if stocksRead {
		return mode + " mode, stocks read from the kernel"
	}
	return mode + " mode"
}

// writeCharges prints the charge totals; a stock-read summary knows the
// requests the stocks served only as pages.
func writeCharges(w io.Writer, t analysis.Totals, batch uint64) {
	if t.RequestsUncounted {
		fmt.Fprintf(w, "  charges                  %d pages requested, %d of them served from the per-CPU stock (summary mode counts those in pages, not requests), %d counter charges of up to %d pages, %d forced, %d refused\n",
			t.RequestedPages, t.FromStockPages, t.CounterCharges, batch, t.Forced, t.Failed)
		return
	}
	fmt.Fprintf(w, "  charges                  %d requests, %d served from the per-CPU stock, %d counter charges of up to %d pages, %d forced, %d refused\n",
		t.Requests, t.FromStock, t.CounterCharges, batch, t.Forced, t.Failed)
}

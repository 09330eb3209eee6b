// Package session runs one live charge trace: the tracer attached to a
// memory cgroup, its events read from the ring buffer, named (the kind of
// each charge request), replayed by the model and written to a trace file;
// and at the end the report of what it saw. Everything a trace needs is in
// its Session, so several can run at once, each on its own cgroup.
package session

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kernel"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/internal/replay"
	"github.com/cgpeak/cgpeak/loader"
	"github.com/cgpeak/cgpeak/trace"
)

// Options for Open.
type Options struct {
	Charges     bool         // record every charge (per-charge mode), not the summary
	Descendants bool         // also the cgroups below the target (implies Charges)
	Output      string       // write the trace to this file, "" for none
	Format      trace.Format // its form: trace.Binary ("" too) or trace.JSONL
	Backend     string       // loader.Auto, or one of loader.Backends()
	KernelBTF   string
	Timeline    bool     // keep the model's timeline (for a plot or a listing)
	Command     []string // the traced command, for the trace header
	// Attached: the cgroup was running before, so usage and stocks from
	// before are not in the trace.
	Attached bool
	// Test switches, passed on to the loader.
	PerRequest, WalkEveryStack, NoUserStacks bool
}

// Mode names a trace's mode as reports and trace headers do.
func (o Options) Mode() string {
	if o.Charges || o.Descendants {
		return "charges"
	}
	return "summary"
}

// Errors that are the user's to fix rather than the kernel's.
var (
	// ErrOutput: the trace file could not be created or written.
	ErrOutput = errors.New("writing the trace file")
)

// Session is one attached trace.
type Session struct {
	o      Options
	target *cgroup.Leaf
	cgid   uint64
	t      *loader.Tracer
	batch  kernel.Batch
	kernel string // the release traced on
	model  *analysis.Model
	file   *outfile.File
	w      *trace.Writer
	werr   error // the first failed write of the trace file
	done   chan error
	others uint64       // events of the memsw/swap counter
	stacks *stackTables // per-charge traces written to a file
}

// Open attaches the tracer to a cgroup and starts reading its events, so
// the first charge after Open returns is seen.
func Open(target *cgroup.Leaf, o Options) (*Session, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(target.Path, &st); err != nil {
		return nil, fmt.Errorf("reading the cgroup's id: %w", err)
	}
	o.Charges = o.Charges || o.Descendants
	rel := kernel.Release()
	batch := kernel.ChargeBatch(rel)
	var realStart func() int64
	if o.Attached {
		realStart = func() int64 { return chargedStats(target) }
	}
	t, err := loader.Open(loader.Options{CgroupID: st.Ino, CgroupV2: target.H.V2, Backend: o.Backend, KernelBTF: o.KernelBTF, Summary: !o.Charges,
		Descendants: o.Descendants, Batch: batch.Pages, PerRequest: o.PerRequest, WalkEveryStack: o.WalkEveryStack, NoUserStacks: o.NoUserStacks, RealStart: realStart})
	if err != nil {
		return nil, err
	}
	s := &Session{o: o, target: target, cgid: st.Ino, t: t, batch: batch, kernel: rel, model: analysis.NewModel(batch.Pages, o.Timeline), done: make(chan error, 1)}
	if t.StocksRead {
		s.model.StocksRead()
	}
	if t.Tracepoint() {
		s.model.StatUpdates()
	}
	if o.Attached {
		s.model.Attached()
	}
	if o.Output != "" {
		// Written beside the destination, which is replaced only once the
		// trace is whole (a device or FIFO is written in place).
		if s.file, err = outfile.Create(o.Output); err != nil {
			t.Close()
			return nil, fmt.Errorf("%w: %w", ErrOutput, err)
		}
		ver := 1
		if target.H.V2 {
			ver = 2
		}
		h := trace.Header{Kernel: rel, Batch: batch.Pages, BatchSource: batch.Source, CPUs: runtime.NumCPU(), PageSize: uint64(os.Getpagesize()),
			Backend: t.Backend, Mode: o.Mode(), StocksRead: t.StocksRead, Cgroup: target.Path, CgroupID: st.Ino, CgroupVersion: ver, Command: o.Command,
			Attached: o.Attached, Descendants: o.Descendants, Functions: functions(t), Started: time.Now().UTC().Format(time.RFC3339Nano)}
		if o.Charges && len(o.Command) > 0 {
			h.CommandPath, h.CommandBuildID = commandFile(o.Command[0])
		}
		if t.Backend == loader.Tracepoint {
			h.CannotSee = loader.TracepointBlind
		}
		f := o.Format
		if f == "" {
			f = trace.Binary
		}
		if s.w, err = trace.NewFormatWriter(s.file, h, f); err != nil {
			s.Abort()
			return nil, fmt.Errorf("%w: %w", ErrOutput, err)
		}
		if o.Charges {
			s.stacks = newStackTables(t, s.w)
		}
	}
	go func() { s.done <- s.run() }()
	return s, nil
}

// Backend names the backend the tracer runs on.
func (s *Session) Backend() string { return s.t.Backend }

// functions says for the trace header how each function is traced.
func functions(t *loader.Tracer) map[string]string {
	fns := map[string]string{}
	for _, f := range t.Functions {
		switch {
		case f.Missing != "":
			fns[f.Name] = "missing: " + f.Missing
		case f.Unneeded != "":
			fns[f.Name] = "not traced: " + f.Unneeded
		default:
			fns[f.Name] = f.Symbol
		}
	}
	return fns
}

// run reads events until the tracer is flushed or closed: each is named,
// replayed and written.
func (s *Session) run() error {
	for {
		ev, err := s.t.Read()
		if errors.Is(err, ringbuf.ErrFlushed) || errors.Is(err, ringbuf.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if ev.Op == analysis.OpCharge && s.o.Charges {
			ev.Kind, ev.Caller = s.t.Kind(ev, s.batch.Pages)
		}
		if ev.OtherCounter() {
			s.others++
		} else {
			s.model.Apply(ev)
		}
		if s.w == nil {
			continue
		}
		if ev.Cgroup == s.cgid {
			ev.Cgroup = 0 // the header's: not repeated on every line
		}
		if s.werr == nil && s.stacks != nil && ev.Op == analysis.OpCharge {
			s.werr = s.stacks.annotate(&ev)
		}
		if s.werr == nil {
			// After a failed write the events still count: keep replaying.
			s.werr = s.w.Write(ev)
		}
	}
}

// Abort detaches and drops the half-written trace: the destination stays
// as it was.
func (s *Session) Abort() {
	s.t.Close()
	s.file.Abort()
}

// Stop drains what the kernel still holds, detaches, and explains the
// traced peak with the cgroup's own figures f, read after the workload
// ended (every event it caused is then in the buffer: exit_mmap runs before
// wait4 returns).
func (s *Session) Stop(f cgroup.Figures) (*replay.Report, error) {
	err := s.t.Flush()
	if rerr := <-s.done; err == nil {
		err = rerr
	}
	var sum *analysis.Summary
	if s.t.KeptSummary() {
		v, serr := s.t.Summary()
		if err == nil {
			err = serr
		}
		s.model.ApplySummary(v)
		sum = &v
	}
	lost, lerr := s.t.Lost()
	missed, merr := s.t.Missed()
	var rec *trace.Reconciliation
	if merr == nil && len(missed) > 0 && s.t.Tracepoint() && !s.o.Attached {
		// Compare the kernel's statistics with the running sum, then count
		// the misses again: those of the wait are in both. Not where the
		// sum began from memory.stat on a running cgroup: that read need
		// not have been flushed, and its error would pass for a drift.
		rec = s.reconcile()
		missed, merr = s.t.Missed()
	}
	if lerr == nil {
		lerr = merr
	}
	runs, spent, cerr := s.t.Cost()
	if lerr == nil {
		lerr = cerr
	}
	var ustacks *trace.StackCounts
	if s.stacks != nil {
		var uerr error
		ustacks, uerr = s.stacks.end()
		if lerr == nil {
			lerr = uerr
		}
	}
	s.t.Close()
	if err == nil {
		err = lerr
	}
	r := s.model.Result()
	var names map[string]string
	if s.o.Descendants {
		names = cgroupNames(s.target.Path)
	}
	fa := replay.Facts{Kernel: s.kernel, Backend: s.t.Backend, BackendNote: s.t.BackendNote, Mode: s.o.Mode(), StocksRead: s.t.StocksRead, StocksNote: s.t.StocksNote,
		Batch: s.batch.Pages, CPUs: runtime.NumCPU(), PageSize: uint64(os.Getpagesize()), Events: r.Events + s.others, Attached: s.o.Attached, Descendants: s.o.Descendants, CgroupNames: names,
		Ended: true, Lost: lost, Missed: missed, Reconcile: reconciliation(rec), Live: replay.Live{Output: s.o.Output, Missing: s.t.Missing(), ProgramRuns: runs, ProgramSeconds: spent.Seconds()}}
	if f.HavePeak {
		v := f.PeakBytes
		fa.PeakBytes, fa.PeakSource = &v, f.PeakFile
	}
	rep, rerr := replay.NewReport(r, fa)
	if rerr != nil {
		// Pages of the system's size cannot overflow: a broken replay.
		s.file.Abort()
		return nil, rerr
	}
	if s.w != nil {
		end := trace.End{Lost: lost, Missed: missed, Summary: sum, Cgroups: names, Reconciliation: rec}
		end.UserStacks = ustacks
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
			rep.Output = ""
			if err == nil {
				err = fmt.Errorf("%w %s: %w (it is left as it was)", ErrOutput, s.o.Output, cerr)
			}
		}
	}
	return rep, err
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

// Reconciliation waits: the kernel flushes every memcg's statistics every
// flushPeriod (2 s, FLUSH_TIME in mm/memcontrol.c, whatever their size;
// a read of memory.stat flushes only past a threshold of a batch per CPU),
// so once the running sum has been still for quietFor, memory.stat holds
// every update the sum could have followed. Past reconcileFor it gives up.
const (
	quietFor     = 2500 * time.Millisecond
	reconcileFor = 6 * time.Second
	quietPoll    = 100 * time.Millisecond
)

// reconcile reads the cgroup's charged statistics and the tracepoint
// programs' running sum of them at one quiet moment, for the replay to
// tell skipped updates of this cgroup's (their difference) from those of
// others (the kernel's recursion count is of every cgroup's). nil where no
// quiet moment came in time, or the cgroup's figures cannot be read.
func (s *Session) reconcile() *trace.Reconciliation {
	last, err := s.t.RealSum()
	if err != nil {
		return nil
	}
	since, give := time.Now(), time.Now().Add(reconcileFor)
	for time.Now().Before(give) {
		time.Sleep(quietPoll)
		v, err := s.t.RealSum()
		if err != nil {
			return nil
		}
		if v != last {
			last, since = v, time.Now()
			continue
		}
		quiet := time.Since(since)
		if quiet < quietFor {
			continue
		}
		stat, err := chargedStatsNow(s.target, s.o.Descendants)
		if err != nil {
			return nil
		}
		if after, err := s.t.RealSum(); err != nil || after != last {
			// An update came between the reads: wait for another quiet
			// moment.
			last, since = after, time.Now()
			continue
		}
		return &trace.Reconciliation{StatPages: stat, SumPages: last, QuietSeconds: quiet.Seconds()}
	}
	return nil
}

func reconciliation(r *trace.Reconciliation) *analysis.Reconciliation {
	if r == nil {
		return nil
	}
	return &analysis.Reconciliation{StatPages: r.StatPages, RealPages: r.SumPages}
}

// chargedStatsNow is chargedStats read for the reconciliation, which must
// not take a file it could not read for 0: v1 counts a cgroup's own pages
// in rss and cache, and its descendants' too in total_rss and total_cache
// (v2's memory.stat and the v1 kmem counter include the descendants).
func chargedStatsNow(leaf *cgroup.Leaf, descendants bool) (int64, error) {
	b, err := os.ReadFile(filepath.Join(leaf.Path, "memory.stat"))
	if err != nil {
		return 0, fmt.Errorf("reading memory.stat: %w", err)
	}
	st, err := cgroup.ParseFlatKeyed(bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("reading memory.stat: %w", err)
	}
	var sum uint64
	if leaf.H.V2 {
		sum = st["anon"] + st["file"] + st["kernel"] + st["sock"]
	} else {
		prefix := ""
		if descendants {
			prefix = "total_"
		}
		sum = st[prefix+"rss"] + st[prefix+"cache"]
		k, err := os.ReadFile(filepath.Join(leaf.Path, "memory.kmem.usage_in_bytes"))
		if err != nil {
			return 0, fmt.Errorf("reading memory.kmem.usage_in_bytes: %w", err)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(k)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading memory.kmem.usage_in_bytes: %w", err)
		}
		sum += v
	}
	return int64(sum / uint64(os.Getpagesize())), nil
}

// chargedStats is what a running cgroup already holds of the statistics the
// tracepoint backend sums as real use, in pages, from memory.stat (v2: anon,
// file, kernel, sock; v1: rss, cache, and memory.kmem.usage_in_bytes).
func chargedStats(leaf *cgroup.Leaf) int64 {
	f := leaf.Read()
	var b uint64
	if leaf.H.V2 {
		b = f.Stat["anon"] + f.Stat["file"] + f.Stat["kernel"] + f.Stat["sock"]
	} else {
		b = f.Stat["rss"] + f.Stat["cache"]
		if k, err := os.ReadFile(filepath.Join(leaf.Path, "memory.kmem.usage_in_bytes")); err == nil {
			v, _ := strconv.ParseUint(strings.TrimSpace(string(k)), 10, 64)
			b += v
		}
	}
	return int64(b / uint64(os.Getpagesize()))
}

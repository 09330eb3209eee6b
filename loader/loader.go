// Package loader loads cgpeak's charge tracer into the kernel, attaches it
// with the best backend the kernel allows (fentry/fexit, else
// kprobe/kretprobe, else the memcg stat tracepoints), and reads its events.
package loader

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/internal/kallsyms"
	"github.com/cgpeak/cgpeak/internal/kbtf"
	"github.com/cgpeak/cgpeak/internal/kernel"
)

// Errors a caller may want to explain in its own words.
var (
	// ErrNoBackend: the kernel runs none of the backends' programs.
	ErrNoBackend = errors.New("this kernel allows neither fentry, kprobe nor memcg tracepoint programs")
	// ErrUnknownBackend: Options.Backend names no backend.
	ErrUnknownBackend = errors.New("unknown backend")
	// ErrNoKernelBTF: the kernel has no /sys/kernel/btf/vmlinux and no
	// BTF file was given.
	ErrNoKernelBTF = errors.New("this kernel has no BTF (/sys/kernel/btf/vmlinux)")
)

// function is one traced kernel function and its programs per backend.
type function struct {
	name    string   // what the trace calls it
	symbols []string // kernel names, newest first
	fentry  []string // programs for the fentry backend
	kprobe  string
	kret    string
	lose    string // what the trace cannot see without it
	request bool   // probed on every charge request: left out where the stocks are read
}

var functions = []function{
	{"try_charge_memcg", []string{"try_charge_memcg", "try_charge"}, []string{"fexit_try_charge"}, "kprobe_try_charge", "kretprobe_try_charge",
		"charge requests: pages served from the per-CPU stock are invisible", true},
	{"page_counter_try_charge", []string{"page_counter_try_charge"}, []string{"fexit_pc_try_charge"}, "kprobe_pc_try_charge", "kretprobe_pc_try_charge",
		"batched counter charges: the counter's usage and watermark", false},
	{"page_counter_charge", []string{"page_counter_charge"}, []string{"fexit_pc_charge"}, "kprobe_pc_charge", "kretprobe_pc_charge",
		"forced charges past the limit", false},
	{"page_counter_uncharge", []string{"page_counter_uncharge"}, []string{"fexit_pc_uncharge"}, "kprobe_pc_uncharge", "kretprobe_pc_uncharge",
		"uncharges: frees and stock drains", false},
	{"refill_stock", []string{"refill_stock"}, []string{"fentry_refill_stock"}, "kprobe_refill_stock", "",
		"stock refills: the pre-charged surplus of each batch", false},
	{"drain_stock", []string{"drain_stock"}, []string{"fentry_drain_stock", "fexit_drain_stock"}, "kprobe_drain_stock", "kretprobe_drain_stock",
		"stock drains: a drain looks like a free", false},
}

// mode is which of the objects in package bpf runs (see cgpeak.bpf.c).
type mode int

const (
	modeCharges mode = iota // every charge request emitted, with its stack
	modeSummary             // requests counted per CPU in the kernel
	modeStocks              // no request probed: the stocks read from the kernel
)

func (m mode) spec() (*ebpf.CollectionSpec, error) {
	switch m {
	case modeSummary:
		return bpf.LoadSummary()
	case modeStocks:
		return bpf.LoadStocks()
	default:
		return bpf.LoadCharges()
	}
}

// Options for Open.
type Options struct {
	CgroupID  uint64 // inode of the memcg's directory in the memory hierarchy
	CgroupV2  bool   // the memcg is in cgroup v2: its second counter is swap, not memsw
	Backend   string // Auto, Fentry or Kprobe
	KernelBTF string // BTF file for kernels without /sys/kernel/btf/vmlinux
	// Summary: requests served from a CPU's stock are kept in the kernel
	// (Tracer.Summary) instead of emitted: a few events per batch, not one
	// per page. No kernel stacks are taken.
	Summary bool
	// Descendants: also trace the cgroups below the target; the counter
	// figures stay the target's own.
	Descendants bool
	// Batch is MEMCG_CHARGE_BATCH on this kernel (summary mode needs it).
	Batch uint64
	// PerRequest: in summary mode, follow the stocks by probing every
	// charge request even where they can be read from the kernel (tests of
	// the fallback).
	PerRequest bool
	// WalkEveryStack: in per-charge mode, walk the kernel stack of every
	// request instead of once per call path (tests compare the two).
	WalkEveryStack bool
	// NoUserStacks: in per-charge mode, take no user stacks (benchmarks
	// compare the cost).
	NoUserStacks bool
	// RealStart gives the tracepoint backend's real use when tracing
	// begins, in pages (the charged statistics of a cgroup already
	// running); called once the programs are loaded, just before they are
	// attached, so that nothing changes unseen in between. nil: 0.
	RealStart func() int64
}

// Function reports how one kernel function is traced.
type Function struct {
	Name    string `json:"name"`
	Symbol  string `json:"symbol,omitempty"`
	Missing string `json:"missing,omitempty"` // why it is not traced and what the trace cannot see
	// Unneeded: present but left alone in this mode, and why.
	Unneeded string `json:"unneeded,omitempty"`
}

// Tracer is an attached charge tracer.
type Tracer struct {
	Backend   string
	Functions []Function
	// StocksRead: summary mode reads the per-CPU stocks from the kernel at
	// counter and stock calls, so no program runs on a request the stock
	// serves. Otherwise StocksNote says why not (the summary then probes
	// every request).
	StocksRead bool
	StocksNote string
	// BackendNote: with Auto, why this backend (the kernel's preemption
	// model and where it was read).
	BackendNote string
	mode        mode
	swap        string // the name of the memcg's second counter
	coll        *ebpf.Collection
	links       []link.Link
	rd          *ringbuf.Reader
	kinds       map[uint64][2]string // stack key -> kind, caller
	syms        *kallsyms.Table
	tracepoint  bool // the stat tracepoint backend: its own events and summary
}

// Open loads and attaches the tracer for one memcg. Nothing stays loaded or
// attached when it fails.
func Open(o Options) (t *Tracer, err error) {
	if o.CgroupID == 0 {
		return nil, errors.New("no cgroup to trace")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK: %w (run as root)", err)
	}
	k := kernelInfo{}
	if k.types, err = loadBTF(o.KernelBTF); err != nil {
		return nil, err
	}
	// Without kallsyms a kprobe cannot be placed, and stacks stay unnamed.
	syms, serr := kallsyms.Load()
	if serr == nil || errors.Is(serr, kallsyms.ErrHidden) {
		k.syms = syms
	}
	var b *backend
	why := ""
	if o.Backend == "" || o.Backend == Auto {
		model, src := kernel.Preemption()
		for _, i := range autoOrder(model, src) {
			if backends[i].probe(k).OK {
				b = &backends[i]
				break
			}
		}
		why = autoWhy(b, model, src)
		if b == nil && ProbeTracepoint(k.types).OK {
			o.Backend = Tracepoint
			why = "auto: neither fentry nor kprobes work here; the memcg stat tracepoints do"
		} else if b == nil {
			return nil, ErrNoBackend
		}
	}
	if o.Backend == Tracepoint {
		// Its own object, on the memcg stat tracepoints: no kernel
		// function, stock or mode of the others applies.
		if err := features.HaveMapType(ebpf.RingBuf); err != nil {
			return nil, fmt.Errorf("this kernel has no BPF ring buffer (Linux 5.8+), which charge tracing needs: %w", err)
		}
		t, err := openTracepoint(o, k.types)
		if t != nil {
			t.BackendNote = why
		}
		return t, err
	}
	if b == nil {
		if b = findBackend(o.Backend); b == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownBackend, o.Backend)
		}
	}
	if b.needsSyms && k.syms == nil {
		return nil, serr
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return nil, fmt.Errorf("this kernel has no BPF ring buffer (Linux 5.8+), which charge tracing needs: %w", err)
	}
	m, note := modeCharges, ""
	switch {
	case !o.Summary:
	case o.Descendants:
		m, note = modeSummary, "descendants are traced"
	case o.PerRequest:
		m, note = modeSummary, "asked to probe every request"
	default:
		m = modeStocks
	}
	t, err = open(o, b, k, m)
	if err != nil && m == modeStocks {
		// The stocks cannot be located, or the kernel would not take the
		// programs that read them: probe every request instead.
		note = err.Error()
		t, err = open(o, b, k, modeSummary)
	}
	if err != nil {
		return nil, err
	}
	t.StocksNote, t.BackendNote = note, why
	t.syms = k.syms
	return t, nil
}

// open loads and attaches one mode's object.
func open(o Options, b *backend, k kernelInfo, m mode) (t *Tracer, err error) {
	spec, err := m.spec()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	vars := map[string]any{"target_cgid": o.CgroupID, "descendants": o.Descendants}
	switch m {
	case modeCharges:
		vars["walk_every"] = o.WalkEveryStack
		vars["task_regs"] = haveTaskRegs()
		vars["user_stacks"] = !o.NoUserStacks
	case modeStocks:
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return nil, fmt.Errorf("counting CPUs: %w", err)
		}
		if n > maxCPUs {
			return nil, fmt.Errorf("%d possible CPUs, more than the %d cgpeak reads stocks of", n, maxCPUs)
		}
		vars["ncpus"], vars["batch_pages"] = uint32(n), o.Batch
	}
	for name, v := range vars {
		if bv, ok := v.(bool); ok {
			v = uint8(0)
			if bv {
				v = uint8(1)
			}
		}
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("configuring the BPF object: %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = ringBytes(m)
	t = &Tracer{Backend: b.name, kinds: map[uint64][2]string{}, StocksRead: m == modeStocks, mode: m, swap: analysis.CounterMemsw}
	if o.CgroupV2 {
		t.swap = analysis.CounterSwap
	}
	keep := map[string]bool{}
	attachTo := map[string]string{} // program -> symbol
	for _, f := range functions {
		sym := b.resolve(k, f)
		if sym == "" {
			t.Functions = append(t.Functions, Function{Name: f.name, Missing: "not in this kernel (renamed or inlined): no " + f.lose})
			continue
		}
		if m == modeStocks && f.request {
			t.Functions = append(t.Functions, Function{Name: f.name, Symbol: sym, Unneeded: "summary mode reads the per-CPU stocks instead of probing every request"})
			continue
		}
		t.Functions = append(t.Functions, Function{Name: f.name, Symbol: sym})
		for _, p := range b.programs(f) {
			keep[p] = true
			attachTo[p] = sym
			b.prepare(spec.Programs[p], sym)
		}
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, kbtf.Options(k.types))
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the verifier rejected cgpeak's programs: %+v", ve)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("loading BPF programs: %w (needs root or CAP_BPF+CAP_PERFMON, and lockdown off for %s)", err, b.name)
		}
		return nil, fmt.Errorf("loading BPF programs: %w", err)
	}
	t.coll = coll
	// A failed return sets t to nil before this runs: close through a copy.
	opened := t
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	// A kprobe and a kretprobe on one function share the kernel's probe,
	// whose handlers run newest first; the kretprobe's replaces the return
	// address with its trampoline, which kernels before 5.15 cannot unwind
	// through. Attaching kretprobes first lets the kprobe walk the real
	// stack before that.
	names := make([]string, 0, len(coll.Programs))
	for name := range coll.Programs {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := strings.HasPrefix(names[i], "kretprobe_"), strings.HasPrefix(names[j], "kretprobe_")
		if ri != rj {
			return ri
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		prog := coll.Programs[name]
		l, err := b.attach(name, prog, attachTo[name])
		if err != nil {
			return nil, fmt.Errorf("attaching %s to %s: %w", name, attachTo[name], err)
		}
		t.links = append(t.links, l)
	}
	if t.rd, err = ringbuf.NewReader(coll.Maps["events"]); err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return t, nil
}

// maxCPUs is MAX_CPUS in cgpeak.bpf.c: the stocks of CPUs past it are not
// read.
const maxCPUs = 1024

// Missing lists what the trace cannot see on this kernel.
func (t *Tracer) Missing() []string {
	var m []string
	if t.tracepoint {
		m = append(m, TracepointBlind...)
	}
	for _, f := range t.Functions {
		if f.Missing != "" {
			m = append(m, f.Name+": "+f.Missing)
		}
	}
	return m
}

// Read returns the next event; after Flush it returns ringbuf.ErrFlushed
// once the events already in the buffer are read.
//
// The programs wake the reader only once a batch has piled up, so Read polls
// on a short deadline too: events never wait long, however slowly they come.
func (t *Tracer) Read() (analysis.Event, error) {
	for {
		t.rd.SetDeadline(time.Now().Add(pollInterval))
		rec, err := t.rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return analysis.Event{}, err
		}
		if t.tracepoint {
			return decodeTP(rec.RawSample)
		}
		return t.decode(rec.RawSample)
	}
}

const pollInterval = 50 * time.Millisecond

// Flush makes Read return what the buffer holds, then ringbuf.ErrFlushed:
// the end of a trace once the workload is gone.
func (t *Tracer) Flush() error { return t.rd.Flush() }

// Lost counts the events the kernel dropped because the ring buffer was full.
func (t *Tracer) Lost() (uint64, error) { return t.sum("lost") }

// sum adds up a per-CPU counter map; 0 when this object has no such map.
func (t *Tracer) sum(name string) (uint64, error) {
	m := t.coll.Maps[name]
	if m == nil {
		return 0, nil
	}
	var per []uint64
	if err := m.Lookup(uint32(0), &per); err != nil {
		return 0, fmt.Errorf("reading the %s counter: %w", name, err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// Names of the entries Missed adds for what the programs themselves could
// not follow.
const (
	MissedNested     = "kprobe calls nested too deep to keep their arguments"
	MissedStockReads = "per-CPU stock reads that failed"
)

// Missed counts the calls of traced functions whose program did not run or
// could not follow them: kprobes the kernel skipped (another probe was
// running on that CPU, or no kretprobe instance was free), programs skipped
// to avoid recursion, kprobe returns whose arguments were lost to nesting,
// and stock reads that failed. Each is an event the trace lacks or got
// wrong, so the caller must treat it like a lost one. The kernel's counters
// exist from Linux 5.12 (programs) and 6.7 (kprobe links); older kernels
// report 0 for what they cannot count.
func (t *Tracer) Missed() (map[string]uint64, error) {
	m := map[string]uint64{}
	for name, p := range t.coll.Programs {
		st, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("reading the statistics of %s: %w", name, err)
		}
		if st.RecursionMisses > 0 {
			m[name] += st.RecursionMisses
		}
	}
	for _, l := range t.links {
		info, err := l.Info()
		if err != nil {
			continue
		}
		if pe := info.PerfEvent(); pe != nil {
			if kp := pe.Kprobe(); kp != nil && kp.Missed > 0 {
				m[kp.Function] += kp.Missed
			}
		}
	}
	for key, mapName := range map[string]string{MissedNested: "unmatched", MissedStockReads: "stock_errors"} {
		n, err := t.sum(mapName)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			m[key] = n
		}
	}
	return m, nil
}

// Cost sums what the kernel counted of the programs' own runs: how many
// and their time in the kernel. Both stay 0 unless kernel.bpf_stats_enabled
// is set (counting costs two clock reads a run, so the kernel leaves it
// off); the trampolines' and kprobes' own entry and exit are not included.
func (t *Tracer) Cost() (runs uint64, spent time.Duration, err error) {
	for name, p := range t.coll.Programs {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, fmt.Errorf("reading the statistics of %s: %w", name, err)
		}
		runs += st.RunCount
		spent += st.Runtime
	}
	return runs, spent, nil
}

// KeptSummary: the programs kept per-CPU figures in the kernel (summary
// mode probing every request) that Summary reads at the end.
func (t *Tracer) KeptSummary() bool { return t.mode == modeSummary || t.tracepoint }

// Summary reads what the programs kept per CPU in summary mode.
func (t *Tracer) Summary() (analysis.Summary, error) {
	var per []bpf.SummaryCpuState
	if t.tracepoint {
		return t.tpSummary()
	}
	if t.mode != modeSummary {
		return analysis.Summary{}, errors.New("no per-CPU summary in this mode")
	}
	if err := t.coll.Maps["states"].Lookup(uint32(0), &per); err != nil {
		return analysis.Summary{}, fmt.Errorf("reading the per-CPU summary: %w", err)
	}
	s := analysis.Summary{CPUs: map[int]analysis.SummaryCPU{}}
	for cpu, st := range per {
		if st.Requests == 0 && st.Wm == 0 && st.MaxReal == 0 && st.Pending == 0 {
			continue
		}
		s.CPUs[cpu] = analysis.SummaryCPU{FromStock: st.Requests, FromStockPages: st.Pages, Pending: st.Pending,
			MaxReal: st.MaxReal, MaxRealTime: st.MaxRealTs, Watermark: st.Wm, WatermarkReal: st.WmReal, WatermarkTime: st.WmTs}
	}
	return s, nil
}

// Close detaches and unloads everything.
func (t *Tracer) Close() error {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
	if t.rd != nil {
		t.rd.Close()
	}
	if t.coll != nil {
		t.coll.Close()
	}
	return nil
}

func loadBTF(path string) (*btf.Spec, error) {
	if path != "" {
		s, err := btf.LoadSpec(path)
		if err != nil {
			return nil, fmt.Errorf("reading kernel BTF from %s: %w", path, err)
		}
		return s, nil
	}
	s, err := kbtf.Kernel()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoKernelBTF, err)
	}
	return s, nil
}

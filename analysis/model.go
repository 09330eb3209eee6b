// Package analysis replays memory cgroup charge events and reconstructs what
// the kernel's counter hides: how much of its usage U(t) is pages waiting in
// each CPU's charge stock S(t), and so the real use U - S and its peak.
//
// Pure functions of the events: no root, no BPF, no files, so a saved trace
// gives the same answer on any machine.
package analysis

import (
	"fmt"
	"sort"
)

// Op is what a traced kernel function did to the run's memory counter or to
// a CPU's stock of pre-charged pages for the run's memcg.
type Op uint8

const (
	// OpCharge: try_charge_memcg (try_charge before 5.14) returned for a
	// request of Pages. With no counter charge on that CPU since its last
	// request, the stock served it: consume_stock is inlined and unprobeable.
	OpCharge Op = iota + 1
	// OpCounterCharge: page_counter_try_charge or page_counter_charge on
	// &memcg->memory; Pages is the batch actually charged.
	OpCounterCharge
	// OpCounterUncharge: page_counter_uncharge on &memcg->memory.
	OpCounterUncharge
	// OpRefill: refill_stock put Pages into this CPU's stock.
	OpRefill
	// OpDrain: drain_stock gave this CPU's stock back (its counter uncharge
	// arrives as an OpCounterUncharge of its own).
	OpDrain
	// OpStatAdd and OpStatSub: a memcg statistic that is charged to the
	// counter (anon, file, kernel, sock; Kind says which) rose or fell by
	// Pages (the tracepoint backend). Real is the sum of those statistics
	// after the update; Usage and Watermark the counter's then.
	OpStatAdd
	OpStatSub
)

var opNames = map[Op]string{OpCharge: "charge", OpCounterCharge: "counter_charge", OpCounterUncharge: "counter_uncharge", OpRefill: "refill_stock", OpDrain: "drain_stock",
	OpStatAdd: "stat_add", OpStatSub: "stat_sub"}

func (o Op) String() string { return opNames[o] }

// MarshalText writes the op by name, as traces store it.
func (o Op) MarshalText() ([]byte, error) {
	if n, ok := opNames[o]; ok {
		return []byte(n), nil
	}
	return nil, fmt.Errorf("unknown op %d", o)
}

// UnmarshalText reads an op name.
func (o *Op) UnmarshalText(b []byte) error {
	if v, ok := OpByName(string(b)); ok {
		*o = v
		return nil
	}
	return fmt.Errorf("unknown op %q", b)
}

// OpByName finds an op by the name traces store.
func OpByName(name string) (Op, bool) {
	o, ok := opsByName[name]
	return o, ok
}

var opsByName = map[string]Op{}

func init() {
	for o, n := range opNames {
		opsByName[n] = o
	}
}

// Counters of a memcg an event can be about; the model follows memory.
const (
	CounterMemory = "memory"
	CounterMemsw  = "memsw" // cgroup v1: memory+swap
	CounterSwap   = "swap"  // cgroup v2: swap (the same union in struct mem_cgroup)
)

// Event is one traced call, as the kernel side reports it, as a trace file
// stores it (one JSON line, docs/trace-format.md) and as the model replays
// it: page counts in pages, time in ns since boot.
type Event struct {
	Time      uint64 `json:"t"` // ns, monotonic
	CPU       int    `json:"cpu"`
	PID       int    `json:"pid"`
	TID       int    `json:"tid"`
	Comm      string `json:"comm"`
	Op        Op     `json:"op"`
	Fn        string `json:"fn"`                // the traced kernel function
	Counter   string `json:"counter,omitempty"` // counter events: CounterMemory, CounterMemsw or CounterSwap
	Pages     uint64 `json:"pages"`
	Usage     uint64 `json:"usage,omitempty"`     // counter usage after the call, pages (counter events only)
	Watermark uint64 `json:"watermark,omitempty"` // counter watermark after the call, pages (counter events only)
	Forced    bool   `json:"forced,omitempty"`    // page_counter_charge: charged past the limit, no batch
	Failed    bool   `json:"failed,omitempty"`    // the charge was refused
	Gfp       uint32 `json:"gfp,omitempty"`       // charge requests: the gfp mask
	Kind      string `json:"kind,omitempty"`      // charge requests: what for (user, thp, page_tables, kernel_stack, slab, ...), "" if unknown
	Caller    string `json:"caller,omitempty"`    // charge requests for kernel memory: the kernel function that asked
	Consumed  uint64 `json:"consumed,omitempty"`  // summary traces: pages this CPU's stock served, unreported, since its previous event
	// FromCPU: charge requests that entered try_charge on another CPU than
	// the one they returned on (CPU): a preemptible kernel moved the task
	// in between. consume_stock runs first thing, so a request the stock
	// served took its pages from FromCPU's stock. nil when the same, or
	// unknown (fexit sees only the return).
	FromCPU *int `json:"from_cpu,omitempty"`
	// Cgroup: the cgroup (id) whose memcg the call was for; several when
	// descendants are traced. A trace file leaves out the header's own.
	Cgroup uint64 `json:"cgroup,omitempty"`
	// Stock-read summary traces: pages stocked for the memcg on all CPUs,
	// read from the kernel, and real use after the call (usage minus those,
	// minus batches charged whose surplus is not yet stocked).
	Stocked uint64 `json:"stocked,omitempty"`
	Real    int64  `json:"real,omitempty"`
	// Stack: charge requests of a live trace: the kernel stack's key in the
	// tracer, from which Kind and Caller are named; not stored.
	Stack uint64 `json:"-"`
	// UStackKey: charge requests of a live trace: the user stack's key in
	// the tracer; not stored.
	UStackKey uint64 `json:"-"`
	// NewMM: the first charge the tracer saw of this process's address
	// space (its first, or the first since it exec'd); not stored.
	NewMM bool `json:"-"`
	// Charge requests (trace schema 2): ids of the request's user and
	// kernel stacks in the trace's ustack and kstack lines, 0 for none.
	UStack uint64 `json:"ustack,omitempty"`
	KStack uint64 `json:"kstack,omitempty"`
}

// OtherCounter: the event is about the memcg's memsw/swap counter, which
// the model of memory leaves out.
func (e Event) OtherCounter() bool { return e.Counter != "" && e.Counter != CounterMemory }

// Summary is what the kernel side kept per CPU in a summary trace, where
// requests served from a stock are counted there instead of recorded.
type Summary struct {
	CPUs map[int]SummaryCPU `json:"cpus"`
	// Stats: a tracepoint trace's summary: per CPU, the real use peak and
	// the most real use at the watermark (MaxReal, Watermark...) and the
	// pages added to and taken out of the charged statistics.
	Stats bool `json:"stats,omitempty"`
}

// SummaryCPU is one CPU's share; real use in pages, times in ns.
type SummaryCPU struct {
	FromStock      uint64            `json:"from_stock"`       // requests served from the stock
	FromStockPages uint64            `json:"from_stock_pages"` // their pages
	Pending        uint64            `json:"pending"`          // of those, pages no event reported
	MaxReal        int64             `json:"max_real"`         // most pages in real use seen at a request's end
	MaxRealTime    uint64            `json:"max_real_t"`
	Watermark      uint64            `json:"watermark"`      // watermark at the last request ending at it
	WatermarkReal  int64             `json:"watermark_real"` // real use then
	WatermarkTime  uint64            `json:"watermark_t"`
	StatAdded      uint64            `json:"stat_added,omitempty"`
	StatRemoved    uint64            `json:"stat_removed,omitempty"`
	StatKinds      map[string]uint64 `json:"stat_kinds,omitempty"` // pages added, by statistic
}

// slot is one CPU's stock for one memcg: a CPU stocks pages for one memcg
// up to 6.15 and for up to 7 at once from 6.16.
type slot struct {
	cpu int
	cg  uint64
}

// Model replays events in order.
type Model struct {
	batch     uint64
	usage     int64
	watermark uint64
	stock     tally[slot] // pages stocked, per CPU and memcg
	mainCg    uint64      // the cgroup of the first event: summary traces have only it
	// inflight: pages a thread (in applyRead a CPU) charged to the counter for a request that has
	// not ended, not yet in its stock (the batch's surplus, and the request
	// itself), or given back by drain_stock but not yet uncharged. Other
	// CPUs' events can fall in that window; U counts these pages, real use
	// must not.
	inflight  tally[int]
	draining  tally[int]
	charged   map[int]bool    // a counter charge since this thread's last request (per CPU in applyRead)
	before    map[int]int64   // the CPU's stock when that counter charge came
	beforeAt  map[int]slot    // and which CPU's stock
	beforeGen map[int]uint64  // and that stock's drains until then
	drained   map[slot]uint64 // drains of each stock so far
	// pending: per thread, a request's refill not yet known to be in the
	// stock (OpRefill).
	pending  map[int]pendingRefill
	attached bool          // tracing began on a running cgroup
	read     bool          // a stock-read summary trace (StocksRead)
	known    map[slot]bool // attached: this CPU's stock is known (empty once, or drained)
	short    map[slot]bool // the stock served requests past what the replay had in it, since its last refill
	real     int64
	best     Peak
	// kernelReal: the most real use the kernel side measured itself (stat
	// and stock-read events' real, a summary's max_real); hasKernelReal
	// once it measured any, keptMax once an end summary said the kernel
	// side kept that maximum over every measurement, emitted or not.
	kernelReal             int64
	hasKernelReal, keptMax bool
	atMark                 *Snapshot
	batches                uint64 // counter charges of a whole batch so far
	cpus                   map[int]*CPUStats
	procs                  map[int]*ProcStats
	kinds                  map[string]*KindStats
	cgroups                map[uint64]*CgroupStats
	totals                 Totals
	events                 uint64
	timeline               *timeline // nil: none kept
	first                  uint64
}

// Peak is the corrected peak: the most pages really in use at once.
type Peak struct {
	Pages uint64
	Time  uint64
}

// Snapshot breaks the watermark down at the last moment usage stood at it.
type Snapshot struct {
	Watermark uint64
	InUse     uint64
	Stock     map[int]uint64 // CPU -> pages pre-charged there
	// StockTotal: summary traces know the stocks' sum at that moment, not
	// each CPU's share (Stock is then empty).
	StockTotal uint64
	Batches    uint64 // whole batches charged until then
	Time       uint64
}

// CPUStats and ProcStats are charge totals.
type CPUStats struct {
	Requests       uint64 `json:"requests"`
	RequestedPages uint64 `json:"requested_pages"`
	FromStock      uint64 `json:"from_stock"`
	FromStockPages uint64 `json:"from_stock_pages"`
	CounterCharges uint64 `json:"counter_charges"`
	CounterPages   uint64 `json:"counter_pages"`
}

// KindStats counts the charge requests of one kind, and for kernel memory
// the kernel functions that made them.
type KindStats struct {
	Requests uint64            `json:"requests"`
	Pages    uint64            `json:"pages"`
	Callers  map[string]uint64 `json:"callers,omitempty"` // function -> pages
}

// CgroupStats counts the charge requests of one cgroup (traces of a cgroup
// and its descendants).
type CgroupStats struct {
	Requests uint64 `json:"requests"`
	Pages    uint64 `json:"pages"`
}

type ProcStats struct {
	Comm           string `json:"comm"`
	Requests       uint64 `json:"requests"`
	RequestedPages uint64 `json:"requested_pages"`
}

// Totals over the whole trace.
type Totals struct {
	Requests, RequestedPages, FromStock uint64
	FromStockPages                      uint64
	// RequestsUncounted: a stock-read summary trace, where requests the
	// stock served are known only as pages (FromStockPages): Requests and
	// FromStock count only those charged to the counter.
	RequestsUncounted            bool
	CounterCharges, CounterPages uint64
	Forced, ForcedPages, Failed  uint64
	Uncharges, UnchargedPages    uint64
	Refills, Drains              uint64
	Big                          uint64 // requests larger than a batch (THP): charged exactly, no surplus
	// Resyncs counts the times the replay contradicted the kernel and
	// followed the kernel: a request charged to the counter while the
	// replayed stock could have served it (a drain the trace did not see),
	// or a stock served below zero (a refill it did not see: counted once
	// however many requests it served). ResyncPages is how far the stock
	// was moved. Either means the trace missed events.
	Resyncs, ResyncPages uint64
	// Stats: a tracepoint trace, of stat updates: RequestedPages are pages
	// added to the charged statistics, UnchargedPages pages taken out.
	Stats bool
	// MaxPages: the most pages one traced call moved (a request, a counter
	// charge or uncharge, a refill or a drain), for the error bound.
	MaxPages uint64
	// MaxCounterPages: the most pages one counter charge took.
	MaxCounterPages uint64
	// Moved: charge requests that returned on another CPU than they
	// entered on (Event.FromCPU).
	Moved uint64
	// Slots: the per-CPU stocks (CPU and memcg) the trace saw; Cgroups:
	// the memcgs they were for. Slack: the most, over the moments real use
	// was taken, of the pages the replay held as in flight or draining plus
	// its stocks' pages past a batch each: how wrong those can be besides
	// the stocks' own batch each (ErrorBound).
	Slots, Cgroups uint64
	Slack          uint64
}

// Point is one step of the timeline, in pages.
type Point struct {
	Time      uint64
	Usage     int64
	Real      int64
	Watermark uint64
	Op        Op
	CPU       int
}

// NewModel starts an empty model for a kernel whose charge batch is batch
// pages (MEMCG_CHARGE_BATCH: 32 before 6.1, 64 from 6.1). With timeline, its
// steps are kept for Result().Timeline, in bounded memory (Timeline).
func NewModel(batch uint64, keepTimeline bool) *Model {
	m := &Model{batch: batch, stock: newTally[slot](batch), charged: map[int]bool{}, before: map[int]int64{}, beforeAt: map[int]slot{}, beforeGen: map[int]uint64{}, drained: map[slot]uint64{}, pending: map[int]pendingRefill{}, known: map[slot]bool{}, short: map[slot]bool{}, inflight: newTally[int](batch), draining: newTally[int](batch),
		cpus: map[int]*CPUStats{}, procs: map[int]*ProcStats{}, kinds: map[string]*KindStats{}, cgroups: map[uint64]*CgroupStats{}}
	if keepTimeline {
		m.timeline = &timeline{nbins: timelineBins}
	}
	return m
}

// Attached says the trace began on a running cgroup: pages stocked before
// then are unknown, so serving from them is no contradiction, and a CPU's
// stock is only known once it was seen empty (a request charged to the
// counter) or drained. Until then U - S can exceed real use by up to a
// batch per such CPU.
func (m *Model) Attached() { m.attached = true }

// StocksRead says the trace is a stock-read summary: its events carry the
// kernel's own stocks and real use (Event.Stocked, Event.Real) and no
// charge request; what a CPU's stock served shows as Consumed pages.
func (m *Model) StocksRead() {
	m.read = true
	m.totals.RequestsUncounted = true
}

// StatUpdates says the trace is a tracepoint trace, of statistics updates,
// before any event: one whose every update was skipped or lost is bounded
// as one (PeakRange), not as a trace of charges.
func (m *Model) StatUpdates() { m.totals.Stats = true }

func (m *Model) cpu(c int) *CPUStats { return entry(m.cpus, c) }

// entry returns m[k], made first if absent.
func entry[K comparable, V any](m map[K]*V, k K) *V {
	v := m[k]
	if v == nil {
		v = new(V)
		m[k] = v
	}
	return v
}

func (m *Model) stocked() int64 { return m.stock.sum }

// tally is a map of page counts that keeps the sums Apply takes after every
// event: summing maps at each event was most of a replay's time, and so
// was hashing their keys: consecutive events are mostly about the same
// key, so the last one is remembered.
type tally[K comparable] struct {
	idx   map[K]int // key -> its place in keys and vals
	keys  []K
	vals  []int64
	last  K
	lastI int // -1: no last key
	batch int64
	sum   int64 // of the values
	pos   int64 // of the values above 0
	over  int64 // of what the values hold past a batch
}

func newTally[K comparable](batch uint64) tally[K] {
	return tally[K]{idx: map[K]int{}, batch: int64(batch), lastI: -1}
}

// find returns k's place, -1 if it has none.
func (t *tally[K]) find(k K) int {
	if t.lastI >= 0 && t.last == k {
		return t.lastI
	}
	i, ok := t.idx[k]
	if !ok {
		return -1
	}
	t.last, t.lastI = k, i
	return i
}

func (t *tally[K]) get(k K) int64 {
	if i := t.find(k); i >= 0 {
		return t.vals[i]
	}
	return 0
}

func (t *tally[K]) set(k K, v int64) {
	i := t.find(k)
	if i < 0 {
		i = len(t.vals)
		t.idx[k] = i
		t.keys = append(t.keys, k)
		t.vals = append(t.vals, 0)
		t.last, t.lastI = k, i
	}
	old := t.vals[i]
	t.vals[i] = v
	t.sum += v - old
	t.pos += max(v, 0) - max(old, 0)
	t.over += max(v-t.batch, 0) - max(old-t.batch, 0)
}

func (t *tally[K]) add(k K, d int64) { t.set(k, t.get(k)+d) }

// len counts the keys ever set.
func (t *tally[K]) len() int { return len(t.keys) }

// all iterates over the keys and their values.
func (t *tally[K]) all() func(yield func(K, int64) bool) {
	return func(yield func(K, int64) bool) {
		for i, k := range t.keys {
			if !yield(k, t.vals[i]) {
				return
			}
		}
	}
}

// Apply replays one event.
func (m *Model) Apply(e Event) {
	if m.events == 0 {
		m.first = e.Time
	}
	if m.events == 0 {
		m.mainCg = e.Cgroup
	}
	m.events++
	m.totals.MaxPages = max(m.totals.MaxPages, e.Pages)
	if e.Op == OpCounterCharge {
		m.totals.MaxCounterPages = max(m.totals.MaxCounterPages, e.Pages)
	}
	if e.Op == OpStatAdd || e.Op == OpStatSub {
		m.applyStat(e)
		return
	}
	c := m.cpu(e.CPU)
	k := slot{e.CPU, e.Cgroup}
	if e.Consumed > 0 {
		m.stock.set(k, max(m.stock.get(k)-int64(e.Consumed), 0))
	}
	if m.read {
		m.applyRead(e, c, k)
		return
	}
	// A request's counter charge, refill and end are one thread's calls; on
	// a preemptible kernel the thread can move CPU between them, so what is
	// in flight is kept per thread. Interrupts and idle CPUs run as thread 0
	// on every CPU: theirs is kept per CPU.
	req := e.TID
	if req == 0 {
		req = -1 - e.CPU
	}
	if p, ok := m.pending[req]; ok {
		m.applyRefill(req, p)
	}
	switch e.Op {
	case OpCounterCharge:
		if e.Failed {
			m.totals.Failed++
			break
		}
		if !m.charged[req] {
			m.before[req], m.beforeAt[req], m.beforeGen[req] = m.stock.get(k), k, m.drained[k]
		}
		m.charged[req] = true
		m.counterCharge(e, c)
		if !e.Forced {
			m.inflight.add(req, int64(e.Pages))
		}
	case OpCounterUncharge:
		m.usage = int64(e.Usage)
		m.draining.set(e.CPU, 0)
		m.totals.Uncharges++
		m.totals.UnchargedPages += e.Pages
	case OpRefill:
		m.totals.Refills++
		if m.charged[req] {
			// A request's surplus. The event is refill_stock's entry:
			// on a preemptible kernel the task can be preempted before
			// it takes the stock lock, and other tasks on that CPU find
			// the stock without these pages meanwhile. They are in it
			// by the task's next event, or when the stock proves it.
			m.pending[req] = pendingRefill{at: k, pages: int64(e.Pages)}
			break
		}
		m.applyRefill(req, pendingRefill{at: k, pages: int64(e.Pages)})
	case OpDrain:
		m.drain(e, k)
	case OpCharge:
		if e.Failed {
			m.totals.Failed++
			break
		}
		m.totals.Requests++
		m.totals.RequestedPages += e.Pages
		c.Requests++
		c.RequestedPages += e.Pages
		if e.Pages > m.batch {
			m.totals.Big++
		}
		p := entry(m.procs, e.PID)
		p.Comm = e.Comm // the latest name: what the process exec'd last
		p.Requests++
		p.RequestedPages += e.Pages
		cs := entry(m.cgroups, e.Cgroup)
		cs.Requests++
		cs.Pages += e.Pages
		if e.Kind != "" {
			k := entry(m.kinds, e.Kind)
			k.Requests++
			k.Pages += e.Pages
			if e.Caller != "" {
				if k.Callers == nil {
					k.Callers = map[string]uint64{}
				}
				k.Callers[e.Caller] += e.Pages
			}
		}
		if e.FromCPU != nil {
			m.totals.Moved++
		}
		if !m.charged[req] {
			if e.FromCPU != nil {
				// Served by the stock of the CPU it entered on: a
				// preemption point (the stock lock's release) lies
				// between consume_stock and the return.
				k = slot{*e.FromCPU, e.Cgroup}
			}
			if m.stock.get(k) < int64(e.Pages) {
				m.settlePending(k, func(pages int64) bool { return true })
			}
			m.stock.add(k, -(int64(e.Pages)))
			m.totals.FromStock++
			m.totals.FromStockPages += e.Pages
			c.FromStock++
			c.FromStockPages += e.Pages
			if m.stock.get(k) < 0 {
				if !m.attached || m.known[k] {
					// One unseen refill lets the kernel serve up to a
					// batch of requests the replay finds no stock for:
					// one contradiction, however many requests show it.
					if !m.short[k] {
						m.totals.Resyncs++
					}
					m.totals.ResyncPages += uint64(-m.stock.get(k))
					m.short[k] = true
				}
				m.stock.set(k, 0)
			}
		} else if b := m.before[req]; b >= int64(e.Pages) && e.Pages <= m.batch && m.drained[m.beforeAt[req]] == m.beforeGen[req] {
			// consume_stock would have served this request from b pages:
			// the kernel's stock was lower, drained by a call not traced.
			// Unless that stock was drained since: the drain said what the
			// kernel held, and the replay followed it (drain).
			at := m.beforeAt[req]
			cut := min(b, max(m.stock.get(at), 0))
			m.resync(uint64(cut))
			m.stock.add(at, -(cut))
		}
		if m.charged[req] {
			m.known[k] = true
			m.short[k] = false
		}
		m.charged[req] = false
		m.inflight.set(req, 0)
	}
	m.raiseWatermark()
	m.real = m.usage - m.stock.sum - m.inflight.sum - m.draining.sum
	// Between a counter charge and the end of its request, U holds a surplus
	// not yet in the stock; between drain_stock's entry and its uncharge, U
	// still holds pages no longer stocked: real use is known at the others.
	if e.Op != OpCounterCharge && e.Op != OpDrain {
		m.totals.Slack = max(m.totals.Slack, m.slack())
		if m.real > int64(m.best.Pages) {
			m.best = Peak{Pages: uint64(m.real), Time: e.Time}
		}
		// The watermark is explained at the last moment the counter stood
		// at it: the most of it that was real use, the rest in stocks.
		if m.usage == int64(m.watermark) && m.watermark > 0 {
			s := &Snapshot{Watermark: m.watermark, Stock: map[int]uint64{}, Batches: m.batches, Time: e.Time}
			for k, v := range m.stock.all() {
				if v > 0 {
					s.Stock[k.cpu] += uint64(v)
				}
			}
			if m.real > 0 {
				s.InUse = uint64(m.real)
			}
			m.atMark = s
		}
	}
	m.step(e)
}

// slack is what of the replay's state a missed call can have made wrong
// beyond a batch per stock: its in-flight and draining pages, and its
// stocks' pages past a batch (the kernel's never hold more once refill_stock
// returns).
func (m *Model) slack() uint64 {
	return uint64(m.inflight.pos + m.draining.pos + m.stock.over)
}

func (m *Model) step(e Event) {
	if m.timeline != nil {
		m.timeline.add(Point{Time: e.Time, Usage: m.usage, Real: m.real, Watermark: m.watermark, Op: e.Op, CPU: e.CPU})
	}
}

// applyRead replays an event of a stock-read summary trace. Real use comes
// with each event, measured by the kernel side from the stocks as they
// were. It rises only by charges and falls only by frees, so its peak is
// at an event: the real use after a charge, or before a free (the real use
// after it, plus the pages freed).
func (m *Model) applyRead(e Event, c *CPUStats, k slot) {
	m.totals.RequestedPages += e.Consumed
	m.totals.FromStockPages += e.Consumed
	c.RequestedPages += e.Consumed
	c.FromStockPages += e.Consumed
	before := e.Real
	if m.inflight.get(e.CPU) > 0 && e.Op != OpRefill {
		// The last batch left no surplus: its request took it whole.
		m.endRequest(e.CPU, c, uint64(m.inflight.get(e.CPU)))
	}
	switch e.Op {
	case OpCounterCharge:
		if e.Failed {
			m.totals.Failed++
			break
		}
		m.counterCharge(e, c)
		switch {
		case e.Forced:
			m.endRequest(e.CPU, c, e.Pages)
		case e.Pages > m.batch:
			m.totals.Big++
			m.endRequest(e.CPU, c, e.Pages)
		default:
			m.inflight.set(e.CPU, int64(e.Pages))
		}
	case OpRefill:
		if e.Usage > 0 {
			m.usage = int64(e.Usage)
		}
		m.stock.add(k, int64(e.Pages))
		m.totals.Refills++
		if in := m.inflight.get(e.CPU); in > 0 {
			m.endRequest(e.CPU, c, uint64(max(in-int64(e.Pages), 0)))
		} else {
			before += int64(e.Pages) // freed into the stock
		}
	case OpDrain:
		m.drain(e, k)
	case OpCounterUncharge:
		m.usage = int64(e.Usage)
		if m.draining.get(e.CPU) == 0 {
			before += int64(e.Pages)
		}
		m.draining.set(e.CPU, 0)
		m.totals.Uncharges++
		m.totals.UnchargedPages += e.Pages
	}
	m.raiseWatermark()
	m.real = e.Real
	m.measured(e.Real)
	if p := max(before, e.Real); p > int64(m.best.Pages) {
		m.best = Peak{Pages: uint64(p), Time: e.Time}
	}
	switch {
	case m.usage == int64(m.watermark) && m.watermark > 0:
		m.snapRead(e.Real, e.Stocked, e.Time)
	case e.Op == OpCounterUncharge && before != e.Real && m.usage+int64(e.Pages) == int64(m.watermark):
		// A free from the watermark: the last moment usage stood at it was
		// just before, with the real use the stocks had served up to then.
		m.snapRead(before, e.Stocked, e.Time)
	}
	m.step(e)
}

// applyStat replays a stat update of a tracepoint trace. Real use is the
// running sum of the charged statistics, kept by the kernel side; the
// counter's usage beyond it is what the stocks hold, with charges not yet
// in a statistic, and the trace cannot tell those apart or split them by CPU.
func (m *Model) applyStat(e Event) {
	m.usage = int64(e.Usage)
	m.watermark = max(m.watermark, e.Watermark)
	m.real = e.Real
	m.totals.Stats = true
	if e.Op == OpStatAdd {
		m.totals.RequestedPages += e.Pages
		if e.Kind != "" {
			k := entry(m.kinds, e.Kind)
			k.Requests++
			k.Pages += e.Pages
		}
	} else {
		m.totals.UnchargedPages += e.Pages
	}
	m.measured(e.Real)
	if e.Real > int64(m.best.Pages) {
		m.best = Peak{Pages: uint64(e.Real), Time: e.Time}
	}
	if m.usage == int64(m.watermark) && m.watermark > 0 {
		m.snapStat(m.watermark, e.Real, e.Time)
	}
	m.step(e)
}

// snapStat explains the watermark by real use at a moment usage stood at
// it. Usage stays at the watermark while an exiting process unmaps its
// pages (the statistics fall before the pages are freed and uncharged), so
// the moment with the most real use is kept.
func (m *Model) snapStat(wm uint64, real int64, t uint64) {
	in := uint64(max(min(real, int64(wm)), 0))
	if a := m.atMark; a != nil && a.Watermark == wm && a.InUse >= in {
		return
	}
	m.atMark = &Snapshot{Watermark: wm, Stock: map[int]uint64{}, Time: t, InUse: in, StockTotal: wm - in}
}

// applyStatSummary takes what the tracepoint programs kept per CPU: the
// peak of real use each saw, the most real use at the watermark, and the
// pages added to and taken out of the statistics, emitted or not.
func (m *Model) applyStatSummary(s Summary) {
	m.totals.Stats = true
	m.keptMax = true
	m.totals.RequestedPages, m.totals.UnchargedPages = 0, 0
	m.kinds = map[string]*KindStats{}
	m.keptWatermark(s)
	for _, sc := range s.CPUs {
		for k, v := range sc.StatKinds {
			entry(m.kinds, k).Pages += v
		}
		m.totals.RequestedPages += sc.StatAdded
		m.totals.UnchargedPages += sc.StatRemoved
		m.measured(sc.MaxReal)
		if sc.MaxReal > int64(m.best.Pages) {
			m.best = Peak{Pages: uint64(sc.MaxReal), Time: sc.MaxRealTime}
		}
		if sc.Watermark > 0 && sc.Watermark == m.watermark {
			m.snapStat(sc.Watermark, sc.WatermarkReal, sc.WatermarkTime)
		}
	}
}

// raiseWatermark keeps the watermark at least the usage: the kernel's is
// the most usage ever was, so usage seen above it (an uncharge reporting
// pages charged before the trace began) raises it.
func (m *Model) raiseWatermark() {
	if m.usage > int64(m.watermark) {
		m.watermark = uint64(m.usage)
	}
}

// snapRead explains the watermark at a moment of a stock-read trace.
func (m *Model) snapRead(real int64, stocked uint64, t uint64) {
	s := &Snapshot{Watermark: m.watermark, Stock: map[int]uint64{}, Batches: m.batches, Time: t}
	if real > 0 {
		s.InUse = uint64(real)
	}
	// Per CPU where the replayed stocks add up to what the kernel held (a
	// CPU's share is exact at its own events), else only their sum.
	if m.stocked() == int64(stocked) {
		for k, v := range m.stock.all() {
			if v > 0 {
				s.Stock[k.cpu] += uint64(v)
			}
		}
	} else {
		s.StockTotal = stocked
	}
	m.atMark = s
}

// counterCharge follows the counter and counts a charge to it.
func (m *Model) counterCharge(e Event, c *CPUStats) {
	m.usage = int64(e.Usage)
	m.watermark = max(m.watermark, e.Watermark)
	c.CounterCharges++
	c.CounterPages += e.Pages
	m.totals.CounterCharges++
	m.totals.CounterPages += e.Pages
	switch {
	case e.Forced:
		m.totals.Forced++
		m.totals.ForcedPages += e.Pages
	case e.Pages == m.batch:
		m.batches++
	}
}

// pendingRefill is a request's refill whose pages may not be in the stock
// yet (Model.pending).
type pendingRefill struct {
	at    slot
	pages int64
}

func (m *Model) applyRefill(req int, p pendingRefill) {
	delete(m.pending, req)
	m.stock.add(p.at, p.pages)
	m.short[p.at] = false
	m.inflight.set(req, max(m.inflight.get(req)-p.pages, 0))
}

// settlePending puts in stock k the pending refills for it, if ok says
// their pages (all together) make what the kernel showed.
func (m *Model) settlePending(k slot, ok func(pages int64) bool) {
	var sum int64
	for _, p := range m.pending {
		if p.at == k {
			sum += p.pages
		}
	}
	if sum == 0 || !ok(sum) {
		return
	}
	for req, p := range m.pending {
		if p.at == k {
			m.applyRefill(req, p)
		}
	}
}

// drain empties a CPU's stock; its pages stay in usage until their uncharge.
func (m *Model) drain(e Event, k slot) {
	// A drain gives back what the kernel's stock held (after the refill
	// that caused it, if any): where the replay held something else, it
	// missed calls, or the kernel served or skipped the stock in a way
	// the events do not show; either way it follows the kernel from here.
	if !m.read && m.stock.get(k) != int64(e.Pages) {
		m.settlePending(k, func(pages int64) bool { return m.stock.get(k)+pages == int64(e.Pages) })
	}
	if !m.read && m.stock.get(k) != int64(e.Pages) && (!m.attached || m.known[k]) {
		d := m.stock.get(k) - int64(e.Pages)
		m.resync(uint64(max(d, -d)))
	}
	m.drained[k]++
	m.stock.set(k, 0)
	m.short[k] = false
	m.draining.set(e.CPU, int64(e.Pages))
	m.known[k] = true
	m.totals.Drains++
}

// endRequest counts a request charged to the counter (stock-read traces).
func (m *Model) endRequest(cpu int, c *CPUStats, pages uint64) {
	m.inflight.set(cpu, 0)
	m.totals.Requests++
	m.totals.RequestedPages += pages
	c.Requests++
	c.RequestedPages += pages
}

// ApplySummary adds what the kernel side kept in a summary trace, once its
// events are applied: the requests served from stocks, the stock consumption
// no event reported, and real use measured at every request's end, which the
// events alone cannot give.
func (m *Model) ApplySummary(s Summary) {
	if s.Stats {
		m.applyStatSummary(s)
		return
	}
	// Requests served from stocks carry no process: per-process totals
	// would count only those charged to the counter.
	m.procs = map[int]*ProcStats{}
	m.keptMax = true
	m.keptWatermark(s)
	var at *SummaryCPU
	for cpu, sc := range s.CPUs {
		c := m.cpu(cpu)
		c.Requests += sc.FromStock
		c.RequestedPages += sc.FromStockPages
		c.FromStock += sc.FromStock
		c.FromStockPages += sc.FromStockPages
		m.totals.Requests += sc.FromStock
		m.totals.RequestedPages += sc.FromStockPages
		m.totals.FromStock += sc.FromStock
		m.totals.FromStockPages += sc.FromStockPages
		k := slot{cpu, m.mainCg}
		m.stock.set(k, max(m.stock.get(k)-int64(sc.Pending), 0))
		m.measured(sc.MaxReal)
		if sc.MaxReal > int64(m.best.Pages) {
			m.best = Peak{Pages: uint64(sc.MaxReal), Time: sc.MaxRealTime}
		}
		if sc.Watermark > 0 && (at == nil || sc.Watermark > at.Watermark || sc.Watermark == at.Watermark && sc.WatermarkTime > at.WatermarkTime) {
			sc := sc
			at = &sc
		}
	}
	if at != nil && at.Watermark == m.watermark && (m.atMark == nil || at.WatermarkTime >= m.atMark.Time) {
		snap := &Snapshot{Watermark: at.Watermark, Time: at.WatermarkTime, Stock: map[int]uint64{}}
		if m.atMark != nil {
			snap.Batches = m.atMark.Batches
		}
		if at.WatermarkReal > 0 {
			snap.InUse = uint64(at.WatermarkReal)
		}
		snap.StockTotal = at.Watermark - snap.InUse
		m.atMark = snap
	}
}

// keptWatermark raises the watermark to the readings the kernel side kept
// per CPU: each is the counter's own watermark at some moment, so it holds
// however many events that showed it were lost.
func (m *Model) keptWatermark(s Summary) {
	for _, sc := range s.CPUs {
		m.watermark = max(m.watermark, sc.Watermark)
	}
}

// measured takes a real use the kernel side measured itself.
func (m *Model) measured(real int64) {
	if !m.hasKernelReal || real > m.kernelReal {
		m.kernelReal = real
	}
	m.hasKernelReal = true
}

func (m *Model) resync(pages uint64) {
	m.totals.Resyncs++
	m.totals.ResyncPages += pages
}

// Result is what the replay found, in pages.
type Result struct {
	Batch         uint64
	Events        uint64
	Watermark     uint64 // the counter's own watermark, as traced
	CorrectedPeak Peak   // max over time of U - S
	AtWatermark   *Snapshot
	FinalUsage    int64
	FinalStock    map[int]uint64
	Totals        Totals
	CPUs          map[int]CPUStats
	Procs         map[int]ProcStats
	Kinds         map[string]KindStats   // charge requests by what they were for (traces that record it)
	Cgroups       map[uint64]CgroupStats // charge requests per cgroup id
	Timeline      Timeline
	StartTime     uint64
	// KernelReal: the most real use the kernel side measured itself
	// (tracepoint and stock-read events' real, an end summary's max_real),
	// where HasKernelReal; KeptMax: an end summary says the kernel side
	// kept that maximum over all its measurements, so no event lost from
	// the ring buffer can have held a larger one (PeakRange).
	KernelReal    int64
	HasKernelReal bool
	KeptMax       bool
}

// Result summarises the events applied so far.
func (m *Model) Result() Result {
	r := Result{Batch: m.batch, Events: m.events, Watermark: m.watermark, CorrectedPeak: m.best,
		AtWatermark: m.atMark, FinalUsage: m.usage, FinalStock: map[int]uint64{}, Totals: m.totals,
		CPUs: map[int]CPUStats{}, Procs: map[int]ProcStats{}, Kinds: map[string]KindStats{}, StartTime: m.first,
		KernelReal: m.kernelReal, HasKernelReal: m.hasKernelReal, KeptMax: m.keptMax}
	if m.timeline != nil {
		r.Timeline = m.timeline.result()
	}
	for k, v := range m.kinds {
		r.Kinds[k] = *v
	}
	r.Cgroups = map[uint64]CgroupStats{}
	for k, v := range m.cgroups {
		r.Cgroups[k] = *v
	}
	cgs := map[uint64]bool{}
	for _, p := range m.pending {
		r.FinalStock[p.at.cpu] += uint64(p.pages)
	}
	for k, v := range m.stock.all() {
		if v > 0 {
			r.FinalStock[k.cpu] += uint64(v)
		}
		cgs[k.cg] = true
	}
	r.Totals.Slots, r.Totals.Cgroups = uint64(m.stock.len()), uint64(max(len(cgs), 1))
	for c, s := range m.cpus {
		r.CPUs[c] = *s
	}
	for p, s := range m.procs {
		r.Procs[p] = *s
	}
	return r
}

// sortedCPUs lists the CPUs of a stock map in order.
func sortedCPUs(m map[int]uint64) []int {
	cpus := make([]int, 0, len(m))
	for c := range m {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	return cpus
}

package analysis

import (
	"strings"
	"testing"
)

// kernel simulates the 6.x charge path (mm/memcontrol.c try_charge_memcg,
// refill_stock, drain_stock) for one memcg with unlimited memory, emitting the
// events the tracer records, so tests have a ground truth they control.
type kernel struct {
	batch     uint64
	usage     uint64
	watermark uint64
	stock     map[int]uint64
	inUse     uint64 // what the workload really holds
	maxInUse  uint64
	events    []Event
	t         uint64
	// read: emit what the stock-read tracer emits (no requests; each event
	// with the stocks and real use as its programs compute them).
	read     bool
	seen     map[int]uint64 // the tracer's copy of each CPU's stock
	inflight map[int]uint64
	ended    map[int]bool // the CPU's inflight request has ended
	draining uint64
	// truth: for each stock-read event, the pages the workload holds once
	// the call it reports is done, counted by the simulator itself (inUse);
	// linger: pages of whole-batch requests other CPUs charged that have
	// ended but whose CPU has had no event since, which the tracer counts
	// only from that CPU's next event.
	truth, linger []int64
}

func newReadKernel(batch uint64) *kernel {
	k := newKernel(batch)
	k.read, k.seen, k.inflight, k.ended = true, map[int]uint64{}, map[int]uint64{}, map[int]bool{}
	return k
}

// lean fills in a stock-read event as cgpeak.bpf.c's emit_read does;
// added is what the call is about to put in the CPU's stock; done is how
// the pages the workload holds change with the call (a request that ends
// with it, pages it frees), for the truth the test checks Real against.
func (k *kernel) lean(e *Event, added uint64, done int64) {
	var linger int64
	for cpu, v := range k.inflight {
		if cpu != e.CPU && k.ended[cpu] {
			linger += int64(v)
		}
	}
	k.truth = append(k.truth, int64(k.inUse)+done)
	k.linger = append(k.linger, linger)
	var stocked uint64
	for _, v := range k.stock {
		stocked += v
	}
	stocked += added
	mine := k.stock[e.CPU]
	if k.seen[e.CPU] > mine {
		e.Consumed = k.seen[e.CPU] - mine
	}
	k.seen[e.CPU] = mine + added
	var inflight uint64
	for _, v := range k.inflight {
		inflight += v
	}
	e.Stocked = stocked
	e.Real = int64(k.usage) - int64(stocked) - int64(inflight) + int64(k.draining)
	if e.Usage == 0 {
		e.Usage, e.Watermark = k.usage, k.watermark
	}
}

func newKernel(batch uint64) *kernel { return &kernel{batch: batch, stock: map[int]uint64{}} }

func (k *kernel) emit(e Event) {
	k.t += 1000
	e.Time = k.t
	e.PID, e.TID, e.Comm = 42, 1000+e.CPU, "touch" // a thread per CPU, as a pinned workload has
	k.events = append(k.events, e)
}

func (k *kernel) counter(cpu int, nr uint64, forced bool) {
	k.usage += nr
	if k.usage > k.watermark {
		k.watermark = k.usage
	}
	e := Event{CPU: cpu, Op: OpCounterCharge, Pages: nr, Usage: k.usage, Watermark: k.watermark, Forced: forced}
	if k.read {
		k.inflight[cpu], k.ended[cpu] = 0, false
		var done int64
		if !forced && nr <= k.batch {
			k.inflight[cpu] = nr
		} else {
			done = int64(nr) // a request past a batch, no surplus to stock: held now
		}
		k.lean(&e, 0, done)
	}
	k.emit(e)
}

// uncharge gives nr pages back to the counter, freeing of them the
// workload's pages.
func (k *kernel) uncharge(cpu int, nr, freeing uint64) {
	k.usage -= nr
	e := Event{CPU: cpu, Op: OpCounterUncharge, Pages: nr, Usage: k.usage, Watermark: k.watermark}
	if k.read {
		k.inflight[cpu] = 0
		k.lean(&e, 0, -int64(freeing))
	}
	k.emit(e)
}

// refill puts nr pages in the CPU's stock; done as for lean.
func (k *kernel) refill(cpu int, nr uint64, done int64) {
	e := Event{CPU: cpu, Op: OpRefill, Pages: nr}
	if k.read {
		k.inflight[cpu] = 0
		k.lean(&e, nr, done)
	}
	k.stock[cpu] += nr
	k.emit(e)
	if k.stock[cpu] > k.batch {
		k.drain(cpu)
	}
}

func (k *kernel) drain(cpu int) {
	n := k.stock[cpu]
	if k.read {
		// The tracer sees a drain only by its uncharge, with the pages
		// still in the stock until drain_stock returns.
		if n > 0 {
			k.usage -= n
			k.draining += n
			d := Event{CPU: cpu, Op: OpDrain, Pages: n}
			k.lean(&d, 0, 0)
			k.emit(d)
			u := d
			u.Op, u.Consumed = OpCounterUncharge, 0
			k.truth, k.linger = append(k.truth, k.truth[len(k.truth)-1]), append(k.linger, k.linger[len(k.linger)-1])
			k.emit(u)
			k.seen[cpu] = 0
			k.draining -= n
		}
		k.stock[cpu] = 0
		return
	}
	k.emit(Event{CPU: cpu, Op: OpDrain, Pages: n})
	if n > 0 {
		k.uncharge(cpu, n, 0)
	}
	k.stock[cpu] = 0
}

// fault charges nr pages for the workload on cpu.
func (k *kernel) fault(cpu int, nr uint64) {
	if k.stock[cpu] >= nr {
		k.stock[cpu] -= nr
	} else {
		b := max(k.batch, nr)
		k.counter(cpu, b, false)
		if b > nr {
			// The refill ends the request: its pages are held after it.
			k.refill(cpu, b-nr, int64(nr))
		} else if k.read && b <= k.batch {
			k.ended[cpu] = true // ends unseen: the tracer counts it at the CPU's next event
		}
	}
	if !k.read {
		k.emit(Event{CPU: cpu, Op: OpCharge, Pages: nr})
	}
	k.inUse += nr
	k.maxInUse = max(k.maxInUse, k.inUse)
}

// free returns nr of the workload's pages (folio uncharge: straight to the counter).
func (k *kernel) free(cpu int, nr uint64) {
	k.uncharge(cpu, nr, nr)
	k.inUse -= nr
}

// freeKmem returns kernel memory: obj_cgroup_uncharge_pages refills the stock.
func (k *kernel) freeKmem(cpu int, nr uint64) {
	k.inUse -= nr // before a drain the refill may cause
	k.refill(cpu, nr, 0)
}

func replay(k *kernel) Result {
	m := NewModel(k.batch, true)
	if k.read {
		m.StocksRead()
	}
	for _, e := range k.events {
		m.Apply(e)
	}
	return m.Result()
}

// One CPU, N sequential faults from an empty stock: the closed form of
// kernel-notes.md, watermark = B*ceil(N/B), corrected = N, overcount (-N) mod B.
func TestClosedFormOneCPU(t *testing.T) {
	for _, batch := range []uint64{32, 64} {
		for _, n := range []uint64{1, 63, 64, 65, 196, 1000} {
			k := newKernel(batch)
			for i := uint64(0); i < n; i++ {
				k.fault(0, 1)
			}
			r := replay(k)
			wantMark := batch * ((n + batch - 1) / batch)
			if r.Watermark != wantMark || r.CorrectedPeak.Pages != n {
				t.Errorf("B=%d N=%d: watermark %d corrected %d, want %d and %d", batch, n, r.Watermark, r.CorrectedPeak.Pages, wantMark, n)
			}
			if over := r.Watermark - r.CorrectedPeak.Pages; over != (batch-n%batch)%batch {
				t.Errorf("B=%d N=%d: overcount %d, want (-N) mod B", batch, n, over)
			}
			if r.Totals.Requests != n || r.Totals.FromStock != n-(wantMark/batch) {
				t.Errorf("B=%d N=%d: %d requests, %d from stock", batch, n, r.Totals.Requests, r.Totals.FromStock)
			}
		}
	}
}

// The seed experiment's shape: 196 pages on 7.3 read 256 pages in memory.peak.
func TestExplainSeed(t *testing.T) {
	k := newKernel(64)
	for i := 0; i < 196; i++ {
		k.fault(0, 1)
	}
	checkSeedExplained(t, replay(k))
}

// checkSeedExplained: 196 pages charged one by one on CPU 0 from an empty
// stock explain memory.peak as the seed article does.
func checkSeedExplained(t *testing.T, r Result) {
	t.Helper()
	got := Explain(r, "memory.peak", 1048576, 4096)
	want := "memory.peak 1048576 B (256 pages) = 196 pages in use + 60 pages pre-charged in CPU 0's stock (4 batches of 64)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// Random interleavings on several CPUs with frees, kernel-memory frees that
// refill the stock, stock drains and THP-sized charges: U - S tracks the
// simulator's real use at every step, and the corrected peak is its maximum.
func TestRealUseTracksTruth(t *testing.T) {
	rnd := lcg(1)
	for trial := 0; trial < 50; trial++ {
		k := newKernel(64)
		m := NewModel(64, false)
		applied := 0
		for step := 0; step < 3000; step++ {
			k.randomStep(rnd)
			for ; applied < len(k.events); applied++ {
				m.Apply(k.events[applied])
			}
			if real := m.Result().FinalUsage - m.stocked(); real != int64(k.inUse) {
				t.Fatalf("trial %d step %d: U-S = %d, real use %d", trial, step, real, k.inUse)
			}
		}
		r := m.Result()
		if r.Totals.Resyncs != 0 {
			t.Errorf("trial %d: %d resyncs on a full trace", trial, r.Totals.Resyncs)
		}
		if r.CorrectedPeak.Pages != k.maxInUse {
			t.Errorf("trial %d: corrected peak %d, real peak %d", trial, r.CorrectedPeak.Pages, k.maxInUse)
		}
		if r.CorrectedPeak.Pages > r.Watermark {
			t.Errorf("trial %d: corrected %d above watermark %d", trial, r.CorrectedPeak.Pages, r.Watermark)
		}
		if gap := r.Watermark - r.CorrectedPeak.Pages; gap > 64*4+512 {
			t.Errorf("trial %d: gap %d beyond batch x CPUs", trial, gap)
		}
	}
}

func TestExplainTwoCPUs(t *testing.T) {
	k := newKernel(64)
	k.fault(0, 1)
	k.fault(1, 1)
	r := replay(k)
	got := Explain(r, "memory.peak", 128*4096, 4096)
	if !strings.Contains(got, "= 2 pages in use + 63 pages pre-charged in CPU 0's stock + 63 pages pre-charged in CPU 1's stock (2 batches of 64)") {
		t.Errorf("got %q", got)
	}
}

// A drain the probes missed (its drain and uncharge events never arrive):
// the next request charged to the counter proves the stock was empty, so
// the replay follows the kernel, counts the contradiction, and U - S is real
// use again; without it, the phantom stock would hide real use for good.
func TestUnseenDrainResyncs(t *testing.T) {
	k := newKernel(64)
	for i := 0; i < 20; i++ {
		k.fault(0, 1)
	}
	n := len(k.events)
	k.drain(0)
	k.events = k.events[:n] // unseen
	for i := 0; i < 100; i++ {
		k.fault(0, 1)
	}
	r := replay(k)
	if r.Totals.Resyncs != 1 || r.Totals.ResyncPages != 44 {
		t.Errorf("%d resyncs of %d pages, want 1 of the 44 stocked pages", r.Totals.Resyncs, r.Totals.ResyncPages)
	}
	if real := r.FinalUsage - int64(r.FinalStock[0]); real != int64(k.inUse) || r.CorrectedPeak.Pages != k.maxInUse {
		t.Errorf("U-S %d, corrected %d; real use %d, peak %d", real, r.CorrectedPeak.Pages, k.inUse, k.maxInUse)
	}
}

// A refill the probes missed: serving from a stock the replay thinks empty
// would count phantom use; the stock is held at zero and the miss counted.
func TestUnseenRefillResyncs(t *testing.T) {
	k := newKernel(64)
	k.fault(0, 1)
	k.events = k.events[:1] // the counter charge, without its refill or end
	k.emit(Event{CPU: 0, Op: OpCharge, Pages: 1})
	k.fault(0, 1)
	r := replay(k)
	if r.Totals.Resyncs != 1 || r.FinalStock[0] != 0 {
		t.Errorf("%d resyncs, stock %v; want 1 and an empty stock", r.Totals.Resyncs, r.FinalStock)
	}
}

// One refill the probes missed lets the kernel serve a whole batch of
// requests the replay finds no stock for: one contradiction, of the
// refill's pages, not one per request (the count is what the report weighs
// against the calls the kernel says were missed).
func TestUnseenRefillResyncsOnce(t *testing.T) {
	k := newKernel(64)
	k.fault(0, 1)
	k.events = append(k.events[:1], k.events[2:]...) // the refill of 63 unseen
	for i := 0; i < 63; i++ {
		k.fault(0, 1) // served by the stock the replay never saw filled
	}
	k.fault(0, 1) // empty: charged to the counter
	r := replay(k)
	if r.Totals.Resyncs != 1 || r.Totals.ResyncPages != 63 {
		t.Errorf("%d resyncs of %d pages, want 1 of the 63 pages refilled unseen", r.Totals.Resyncs, r.Totals.ResyncPages)
	}
}

// A request that entered try_charge on CPU 0, where consume_stock served
// it, and returned on CPU 1 (preempted after the stock lock's release): its
// pages come out of CPU 0's stock, not CPU 1's, or the replay would find
// CPU 1 short and CPU 0 with a page the kernel no longer has.
func TestRequestServedOnEntryCPU(t *testing.T) {
	k := newKernel(64)
	k.fault(0, 1)
	k.fault(0, 1)
	from := 0
	last := &k.events[len(k.events)-1]
	last.CPU, last.FromCPU = 1, &from
	k.fault(1, 1)
	for i := 0; i < 62; i++ {
		k.fault(0, 1) // CPU 0's stock runs out exactly
	}
	k.fault(0, 1) // charged to the counter: the kernel's stock was empty
	r := replay(k)
	if r.Totals.Resyncs != 0 || r.Totals.Moved != 1 {
		t.Errorf("%d resyncs (%d pages), %d requests moved; want 0 and 1", r.Totals.Resyncs, r.Totals.ResyncPages, r.Totals.Moved)
	}
	if r.CorrectedPeak.Pages != k.maxInUse || r.FinalStock[0] != k.stock[0] || r.FinalStock[1] != k.stock[1] {
		t.Errorf("corrected %d, stocks %v; want %d and %v", r.CorrectedPeak.Pages, r.FinalStock, k.maxInUse, k.stock)
	}
}

// Task A's refill_stock event is its entry; A is preempted before it takes
// the stock lock, and task B on the same CPU finds the stock empty, charges
// the counter and serves 50 pages from its own surplus; then A adds its 63
// pages to B's 13, past the batch, and drains them. The kernel did nothing
// the events contradict: no resync, and real use is followed throughout.
func TestRefillAfterPreemption(t *testing.T) {
	const a, b = 10, 11
	ev := []Event{
		{CPU: 1, TID: a, Op: OpCounterCharge, Pages: 64, Usage: 64, Watermark: 64},
		{CPU: 1, TID: a, Op: OpRefill, Pages: 63},
		{CPU: 1, TID: b, Op: OpCounterCharge, Pages: 64, Usage: 128, Watermark: 128},
		{CPU: 1, TID: b, Op: OpRefill, Pages: 63},
		{CPU: 1, TID: b, Op: OpCharge, Pages: 1},
	}
	for i := 0; i < 50; i++ {
		ev = append(ev, Event{CPU: 1, TID: b, Op: OpCharge, Pages: 1})
	}
	ev = append(ev, Event{CPU: 1, TID: a, Op: OpDrain, Pages: 76},
		Event{CPU: 1, TID: a, Op: OpCounterUncharge, Pages: 76, Usage: 52, Watermark: 128},
		Event{CPU: 1, TID: a, Op: OpCharge, Pages: 1})
	m := NewModel(64, false)
	for _, e := range ev {
		m.Apply(e)
	}
	r := m.Result()
	if r.Totals.Resyncs != 0 || r.CorrectedPeak.Pages != 52 || r.FinalStock[1] != 0 {
		t.Errorf("%d resyncs (%d pages), corrected peak %d, final stock %v; want none, the 52 pages in use, an empty stock", r.Totals.Resyncs, r.Totals.ResyncPages, r.CorrectedPeak.Pages, r.FinalStock)
	}
}

// A drain says what the kernel's stock held: where the replay held more
// (a request it never saw took the rest), it counts the difference once and
// follows the kernel.
func TestDrainResyncs(t *testing.T) {
	k := newKernel(64)
	k.fault(0, 1)
	k.fault(0, 1)
	k.events = k.events[:len(k.events)-1] // a request served from the stock, unseen
	k.drain(0)
	r := replay(k)
	if r.Totals.Resyncs != 1 || r.Totals.ResyncPages != 1 || r.FinalStock[0] != 0 {
		t.Errorf("%d resyncs of %d pages, final stock %v; want 1 of 1 page, an empty stock", r.Totals.Resyncs, r.Totals.ResyncPages, r.FinalStock)
	}
}

// Tracing a running cgroup: requests served from stock charged before the
// trace began are no contradiction, and once the stock runs dry and the
// counter is charged, U - S is real use minus what was in use before.
func TestAttachedMidRun(t *testing.T) {
	k := newKernel(64)
	for i := 0; i < 30; i++ {
		k.fault(0, 1)
	}
	before := k.inUse
	k.events = nil // tracing starts here, 34 pages left in CPU 0's stock
	for i := 0; i < 100; i++ {
		k.fault(0, 1)
	}
	m := NewModel(64, false)
	m.Attached()
	for _, e := range k.events {
		m.Apply(e)
	}
	r := m.Result()
	if r.Totals.Resyncs != 0 {
		t.Errorf("%d resyncs for stock charged before tracing", r.Totals.Resyncs)
	}
	if real := r.FinalUsage - int64(r.FinalStock[0]); real != int64(k.inUse) || r.CorrectedPeak.Pages != k.maxInUse {
		t.Errorf("U-S %d corrected %d, want %d (%d of them before tracing)", real, r.CorrectedPeak.Pages, k.inUse, before)
	}
	// The same events replayed as a whole trace are a contradiction.
	if replay(k).Totals.Resyncs == 0 {
		t.Error("a full trace serving from a stock it never saw filled should resync")
	}
}

// CPU 1's request ends between CPU 0's counter charge and CPU 0's refill:
// U then holds CPU 0's whole batch, but only the page CPU 0 asked for is in
// use, and not before its request ends. Real use must not count the surplus.
func TestSurplusInFlightIsNotRealUse(t *testing.T) {
	m := NewModel(64, false)
	ev := func(cpu int, op Op, pages, usage uint64) {
		m.Apply(Event{CPU: cpu, Op: op, Pages: pages, Usage: usage, Watermark: max(usage, 128)})
	}
	ev(1, OpCounterCharge, 64, 64) // CPU 1 takes a batch for one page
	ev(1, OpRefill, 63, 0)
	ev(1, OpCharge, 1, 0)           // 1 page in use
	ev(0, OpCounterCharge, 64, 128) // CPU 0 takes a batch...
	ev(1, OpCharge, 1, 0)           // ...while CPU 1 serves a page from its stock: 2 in use
	ev(0, OpRefill, 63, 0)
	ev(0, OpCharge, 1, 0) // 3 in use
	if r := m.Result(); r.CorrectedPeak.Pages != 3 {
		t.Errorf("corrected peak %d pages, want the 3 in use", r.CorrectedPeak.Pages)
	}
}

// Stock-read summary traces, one CPU: the trace has no request, yet the
// closed form holds and the seed's explanation is the same; requests
// served from the stock are known as pages.
func TestStocksReadOneCPU(t *testing.T) {
	for _, n := range []uint64{1, 64, 65, 196, 1000} {
		k := newReadKernel(64)
		for i := uint64(0); i < n; i++ {
			k.fault(0, 1)
		}
		k.free(0, n) // the workload exits
		r := replay(k)
		wantMark := 64 * ((n + 63) / 64)
		if r.Watermark != wantMark || r.CorrectedPeak.Pages != n {
			t.Errorf("N=%d: watermark %d corrected %d, want %d and %d", n, r.Watermark, r.CorrectedPeak.Pages, wantMark, n)
		}
		batches := wantMark / 64
		if r.Totals.RequestedPages != n || r.Totals.Requests != batches || r.Totals.FromStockPages != n-batches || !r.Totals.RequestsUncounted {
			t.Errorf("N=%d: %d pages requested, %d requests charged, %d pages from stock", n, r.Totals.RequestedPages, r.Totals.Requests, r.Totals.FromStockPages)
		}
		if n == 196 {
			checkSeedExplained(t, r)
		}
	}
}

// Stock-read traces of random interleavings on several CPUs: whatever each
// CPU's stock served between events, real use is right at every event and
// the corrected peak is the real peak, found at the frees.
func TestStocksReadTracksTruth(t *testing.T) {
	rnd := lcg(7)
	for trial := 0; trial < 50; trial++ {
		k := newReadKernel(64)
		var faulted uint64
		for step := 0; step < 3000; step++ {
			faulted += k.randomStep(rnd)
		}
		k.free(0, k.inUse)
		// Real use as the tracer computes it, against the pages the
		// simulated workload holds: exact, but for whole-batch requests
		// whose CPU has had no event since they ended.
		var lingered int
		for i, e := range k.events {
			if e.Real > k.truth[i] || e.Real < k.truth[i]-k.linger[i] {
				t.Fatalf("trial %d event %d (%s on CPU %d): real %d, the workload holds %d (%d of them unsettled on other CPUs)", trial, i, e.Op, e.CPU, e.Real, k.truth[i], k.linger[i])
			}
			if e.Real != k.truth[i] {
				lingered++
			}
		}
		if lingered > len(k.events)/10 {
			t.Errorf("trial %d: real use short of the truth at %d of %d events", trial, lingered, len(k.events))
		}
		r := replay(k)
		if r.CorrectedPeak.Pages != k.maxInUse {
			t.Errorf("trial %d: corrected peak %d, real peak %d", trial, r.CorrectedPeak.Pages, k.maxInUse)
		}
		if r.CorrectedPeak.Pages > r.Watermark {
			t.Errorf("trial %d: corrected %d above watermark %d", trial, r.CorrectedPeak.Pages, r.Watermark)
		}
		// Pages a stock served after the last event of its CPU are not seen.
		var tail uint64
		for cpu, v := range k.seen {
			tail += v - k.stock[cpu]
		}
		if r.Totals.RequestedPages+tail != faulted {
			t.Errorf("trial %d: %d pages requested + %d unseen, %d faulted", trial, r.Totals.RequestedPages, tail, faulted)
		}
	}
}

// lcg is a seeded generator of numbers below n, the same on every run.
func lcg(seed uint64) func(n uint64) uint64 {
	return func(n uint64) uint64 {
		seed = seed*6364136223846793005 + 1442695040888963407
		return (seed >> 33) % n
	}
}

// randomStep does one random thing on one of 4 CPUs: a fault of a page or
// of a THP, a free, a kernel-memory free into the stock, or a drain; it
// returns the pages faulted.
func (k *kernel) randomStep(rnd func(uint64) uint64) uint64 {
	cpu := int(rnd(4))
	switch r := rnd(100); {
	case r < 70:
		k.fault(cpu, 1)
		return 1
	case r < 72:
		k.fault(cpu, 512)
		return 512
	case r < 90 && k.inUse > 8:
		k.free(cpu, 1+rnd(8))
	case r < 95 && k.inUse > 2:
		k.freeKmem(cpu, 1+rnd(2))
	case r < 97:
		k.drain(cpu)
	}
	return 0
}

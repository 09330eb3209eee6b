package analysis

import "testing"

// Random interleavings on 4 CPUs, replayed with events dropped at random as
// a tracer drops them (a missed call is a missing event): the corrected peak
// stays within the bound of the real peak the simulator counted, in both
// the per-charge and the stock-read replays, and the bound is 0 where
// nothing was dropped.
func TestErrorBoundHoldsWithDroppedEvents(t *testing.T) {
	rnd := lcg(11)
	for trial := 0; trial < 200; trial++ {
		read := trial%2 == 1
		// One trial in four drops nothing; the others drop up to 1 in 50.
		every := uint64(0)
		if trial%4 != 0 {
			every = 20 + rnd(200)
		}
		k, r, missed, dropped := droppedTrial(rnd, read, every)
		b := ErrorBound(0, missed, r.Totals, 64, 4)
		if b.Calls != dropped {
			t.Fatalf("trial %d: bound counts %d calls, %d dropped", trial, b.Calls, dropped)
		}
		got, want := int64(r.CorrectedPeak.Pages), int64(k.maxInUse)
		if d := got - want; d > int64(b.Pages) || -d > int64(b.Pages) {
			t.Errorf("trial %d (read %v): corrected peak %d, real peak %d: off by %d, bound %d (%d events of %d dropped)",
				trial, read, got, want, d, b.Pages, dropped, len(k.events))
		}
		if dropped == 0 && (b.Pages != 0 || got != want) {
			t.Errorf("trial %d: nothing dropped, yet bound %d and corrected %d vs real %d", trial, b.Pages, got, want)
		}
	}
}

// droppedTrial runs a random workload of 2000 steps on 4 CPUs (a
// stock-read trace if read) and replays it with one event in every dropped
// at random (none if 0), counting each as its function's missed call.
func droppedTrial(rnd func(uint64) uint64, read bool, every uint64) (*kernel, Result, map[string]uint64, uint64) {
	k, m, _ := workload(rnd, read, 2000, nil)
	var dropped uint64
	missed := map[string]uint64{}
	for _, e := range k.events {
		if every > 0 && rnd(every) == 0 {
			dropped++
			missed[fnOf[e.Op]]++
			continue
		}
		m.Apply(e)
	}
	return k, m.Result(), missed, dropped
}

// workload runs lead (nil: nothing) then steps random steps on 4 CPUs (a
// stock-read trace if read) and frees everything; it returns the kernel, a
// model to replay its events into, and how many events lead emitted.
func workload(rnd func(uint64) uint64, read bool, steps int, lead func(*kernel)) (*kernel, *Model, int) {
	k := newKernel(64)
	if read {
		k = newReadKernel(64)
	}
	if lead != nil {
		lead(k)
	}
	led := len(k.events)
	for step := 0; step < steps; step++ {
		k.randomStep(rnd)
	}
	k.free(0, k.inUse)
	m := NewModel(64, false)
	if read {
		m.StocksRead()
	}
	return k, m, led
}

// fnOf names the kernel function whose missed call drops an event of an op,
// as the kernel's counts name them for kprobes.
var fnOf = map[Op]string{OpCharge: "try_charge_memcg", OpCounterCharge: "page_counter_try_charge",
	OpCounterUncharge: "page_counter_uncharge", OpRefill: "refill_stock", OpDrain: "drain_stock"}

// On a preemptible kernel a request can move CPU between its counter
// charge and its end: thread 7 charges a batch on CPU 0, is moved, and puts
// the surplus in CPU 1's stock and ends there; then thread 8 on CPU 1 is
// served from that stock. Nothing was missed: no resync, and real use is
// the two pages the threads hold.
func TestRequestMovingCPU(t *testing.T) {
	m := NewModel(64, false)
	for _, e := range []Event{
		{CPU: 0, TID: 7, Op: OpCounterCharge, Pages: 64, Usage: 64, Watermark: 64},
		{CPU: 1, TID: 7, Op: OpRefill, Pages: 63},
		{CPU: 1, TID: 7, Op: OpCharge, Pages: 1},
		{CPU: 1, TID: 8, Op: OpCharge, Pages: 1},
	} {
		m.Apply(e)
	}
	r := m.Result()
	if r.Totals.Resyncs != 0 || r.CorrectedPeak.Pages != 2 {
		t.Errorf("%d resyncs, corrected peak %d pages, want 0 and 2", r.Totals.Resyncs, r.CorrectedPeak.Pages)
	}
}

// Many calls missed: the bound is capped by what the replay's state can be
// wrong by (a batch per CPU's stock, its pages in flight, the counter calls
// missed), which must still hold against the simulator's real peak, and
// must be what bounds these traces (narrower than the sum of the misses).
func TestErrorBoundCapHolds(t *testing.T) {
	rnd := lcg(5)
	capped := 0
	for trial := 0; trial < 200; trial++ {
		read := trial%2 == 1
		every := 2 + rnd(8)
		k, r, missed, _ := droppedTrial(rnd, read, every)
		b := ErrorBound(0, missed, r.Totals, 64, 4)
		if sum := ErrorBound(0, missed, r.Totals, 64, 1<<20); b.Pages < sum.Pages {
			capped++
		}
		got, want := int64(r.CorrectedPeak.Pages), int64(k.maxInUse)
		if d := got - want; d > int64(b.Pages) || -d > int64(b.Pages) {
			t.Errorf("trial %d (read %v): corrected peak %d, real peak %d: off by %d, bound %d (1 in %d events dropped)", trial, read, got, want, d, b.Pages, every)
		}
	}
	if capped < 100 {
		t.Errorf("the cap bound only %d of 200 heavily dropped traces", capped)
	}
}

// The cap's two parts against the errors they stand for. Refills missed on
// all 4 CPUs at the peak: the replay counts their 4 x 63 pages as real use,
// within a batch per CPU. Two threads' whole-batch requests on one CPU
// whose ends were missed: the replay holds their 128 pages in flight, not
// real, past one CPU's batch, within its in-flight pages.
func TestErrorBoundCapParts(t *testing.T) {
	k := newKernel(64)
	for cpu := 0; cpu < 4; cpu++ {
		k.fault(cpu, 1)
	}
	var kept []Event
	missed := map[string]uint64{}
	for _, e := range k.events {
		if e.Op == OpRefill {
			missed["refill_stock"]++
			continue
		}
		kept = append(kept, e)
	}
	check := func(name string, events []Event, cpus int, truth uint64) {
		m := NewModel(64, false)
		for _, e := range events {
			m.Apply(e)
		}
		r := m.Result()
		b := ErrorBound(0, missed, r.Totals, 64, cpus)
		d := int64(r.CorrectedPeak.Pages) - int64(truth)
		if d == 0 || d > int64(b.Pages) || -d > int64(b.Pages) {
			t.Errorf("%s: corrected peak %d, real %d: off by %d, bound %d", name, r.CorrectedPeak.Pages, truth, d, b.Pages)
		}
	}
	check("refills missed", kept, 4, k.maxInUse)

	k = newKernel(64)
	k.fault(0, 64)
	k.fault(0, 64)
	kept, missed = nil, map[string]uint64{}
	for i, e := range k.events {
		e.TID = 100 + i/2 // each request's counter charge and end
		if e.Op == OpCharge {
			missed["try_charge_memcg"]++
			continue
		}
		kept = append(kept, e)
	}
	kept = append(kept, Event{CPU: 0, TID: 100, Op: OpCounterUncharge, Pages: 1, Usage: 127})
	check("request ends missed", kept, 1, k.maxInUse)
}

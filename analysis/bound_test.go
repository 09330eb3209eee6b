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
		k := newKernel(64)
		if read {
			k = newReadKernel(64)
		}
		for step := 0; step < 2000; step++ {
			k.randomStep(rnd)
		}
		k.free(0, k.inUse)
		// One trial in four drops nothing; the others drop up to 1 in 50.
		every := uint64(0)
		if trial%4 != 0 {
			every = 20 + rnd(200)
		}
		m := NewModel(64, false)
		if read {
			m.StocksRead()
		}
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
		r := m.Result()
		b := ErrorBound(0, missed, r.Totals, 64)
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

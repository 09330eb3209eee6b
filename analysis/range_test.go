package analysis

import (
	"fmt"
	"testing"
)

// statKernel simulates what the tracepoint programs see: updates of the
// charged statistics of the traced cgroup (real use), the counter with a
// stock of up to a batch per CPU above them, and the kernel's recursion
// guard skipping some updates, of the cgroup's own (the running sum misses
// them; the statistics do not) or of other cgroups' (counted, no effect).
type statKernel struct {
	batch            uint64
	cpus             int
	truth, sum       int64 // the statistics as the kernel counts them; the programs' running sum
	maxTruth         int64
	stock            map[int]uint64
	usage, watermark uint64
	events           []Event
	summary          Summary
	missed, lost     uint64
	t, maxSum        int64
}

func newStatKernel(batch uint64, cpus int) *statKernel {
	return &statKernel{batch: batch, cpus: cpus, stock: map[int]uint64{}, summary: Summary{Stats: true, CPUs: map[int]SummaryCPU{}}}
}

// update changes a statistic by delta pages on cpu; skipped: the programs
// did not run for it (counted as missed), lost: they ran but the ring
// buffer had no room for its event.
func (k *statKernel) update(cpu int, delta int64, skipped, lost bool) {
	k.t++
	k.truth += delta
	k.maxTruth = max(k.maxTruth, k.truth)
	// The counter follows through the CPU's stock: charges take a batch
	// where the stock is short, frees go back to the stock and drain it
	// past a batch.
	if delta > 0 {
		need := uint64(delta)
		if k.stock[cpu] >= need {
			k.stock[cpu] -= need
		} else {
			charge := max(need, k.batch)
			k.usage += charge
			k.stock[cpu] += charge - need
		}
	} else {
		k.stock[cpu] += uint64(-delta)
		if k.stock[cpu] > k.batch {
			k.usage -= k.stock[cpu]
			k.stock[cpu] = 0
		}
	}
	k.watermark = max(k.watermark, k.usage)
	if skipped {
		k.missed++
		return
	}
	k.sum += delta
	k.maxSum = max(k.maxSum, k.sum)
	sc := k.summary.CPUs[cpu]
	if k.sum > sc.MaxReal {
		sc.MaxReal, sc.MaxRealTime = k.sum, uint64(k.t)
	}
	if k.usage == k.watermark && (k.watermark > sc.Watermark || k.sum > sc.WatermarkReal) {
		sc.Watermark, sc.WatermarkReal, sc.WatermarkTime = k.watermark, k.sum, uint64(k.t)
	}
	sc.StatAdded += uint64(max(delta, 0))
	sc.StatRemoved += uint64(max(-delta, 0))
	k.summary.CPUs[cpu] = sc
	if lost {
		k.lost++
		return
	}
	op, pages := OpStatAdd, delta
	if delta < 0 {
		op, pages = OpStatSub, -delta
	}
	k.events = append(k.events, Event{Time: uint64(k.t), CPU: cpu, Op: op, Kind: "anon", Fn: "mod_memcg_lruvec_state", Pages: uint64(pages), Usage: k.usage, Watermark: k.watermark, Real: k.sum})
}

// statTrial is a random tracepoint workload: faults of pages and folios,
// frees, with one update in skipEvery skipped (of one sign only when
// oneSign is positive (+1) or negative (-1), either when 0), one in
// loseEvery lost, and others' skipped updates counted on top.
func statTrial(rnd func(uint64) uint64, steps int, skipEvery, loseEvery uint64, oneSign int, others uint64) *statKernel {
	k := newStatKernel(64, 4)
	// A folio's update is the largest a statistic takes (a PMD folio: 512
	// pages); a skipped one is weighed as the largest the trace saw, so the
	// trace sees one.
	k.update(0, 512, false, false)
	for i := 0; i < steps; i++ {
		cpu := int(rnd(4))
		var d int64
		switch r := rnd(100); {
		case r < 60:
			d = 1
		case r < 63:
			d = 512
		case k.truth > 16:
			d = -int64(1 + rnd(uint64(min(k.truth-1, 512))))
		default:
			d = 1
		}
		skip := skipEvery > 0 && rnd(skipEvery) == 0 && (oneSign == 0 || (oneSign > 0) == (d > 0))
		lose := loseEvery > 0 && rnd(loseEvery) == 0
		k.update(cpu, d, skip, lose)
	}
	k.missed += others
	return k
}

func (k *statKernel) replay(kept bool) Result {
	m := NewModel(k.batch, false)
	m.StatUpdates()
	for _, e := range k.events {
		m.Apply(e)
	}
	if kept {
		m.ApplySummary(k.summary)
	}
	return m.Result()
}

// checkRange fails unless the range lies in [0, watermark], holds the
// corrected peak, and contains the workload's true peak.
func checkRange(t *testing.T, what string, g Range, r Result, truth uint64) {
	t.Helper()
	if g.Low > g.High || g.High > r.Watermark || g.Peak < g.Low || g.Peak > g.High || g.Error > r.Watermark {
		t.Fatalf("%s: range [%d, %d] peak %d error %d outside [0, watermark %d]", what, g.Low, g.High, g.Peak, g.Error, r.Watermark)
	}
	if truth < g.Low || truth > g.High {
		t.Fatalf("%s: true peak %d outside [%d, %d] (corrected %d, %d calls)", what, truth, g.Low, g.High, r.CorrectedPeak.Pages, g.Calls)
	}
}

// FuzzBoundInsideWatermark: over simulated workloads whose true peak of
// real use is known, replayed as each backend records them with any number
// of events lost and calls missed (and misses of other cgroups counted on
// top), the corrected peak's range never leaves [0, watermark] and always
// holds the true peak. Tracepoint traces are checked with and without the
// kernel's end summary and the end's reconciliation; the reconciliation's
// rule takes the cgroup's own skipped updates to have one sign
// (PeakRange, rule 5), so with it they do.
func FuzzBoundInsideWatermark(f *testing.F) {
	for _, s := range [][4]uint64{{1, 0, 0, 0}, {2, 30, 0, 0}, {3, 0, 5, 1000}, {4, 3, 3, 7}, {5, 50, 0, 25}, {6, 2, 1, 0}} {
		f.Add(s[0], s[1], s[2], s[3], uint8(s[0]))
	}
	f.Fuzz(func(t *testing.T, seed, dropEvery, loseEvery, others uint64, how uint8) {
		dropEvery, loseEvery, others = dropEvery%200, loseEvery%200, others%100000
		rnd := lcg(seed)
		switch how % 3 {
		case 0, 1: // per-charge or stock-read: dropped events are missed calls or lost events
			read := how%3 == 1
			// A missed call is weighed as the largest call the trace
			// saw (ErrorBound): it sees a THP's first.
			k, m, seen := workload(rnd, read, 800, func(k *kernel) { k.fault(0, 512) })
			missed := map[string]uint64{}
			var lost uint64
			for i, e := range k.events {
				switch {
				case i < seen:
					m.Apply(e)
				case dropEvery > 0 && rnd(dropEvery) == 0:
					missed[fnOf[e.Op]]++
				case loseEvery > 0 && rnd(loseEvery) == 0:
					lost++
				default:
					m.Apply(e)
				}
			}
			if others > 0 {
				missed["refill_stock"] += others
			}
			r := m.Result()
			if r.Watermark < k.watermark && (lost > 0 || len(missed) > 0) {
				// The events that raised the watermark last were dropped:
				// the report's ceiling is then the cgroup's own peak.
				checkRange(t, "dropped watermark", PeakRange(r, lost, missed, k.watermark, 4, nil), withWatermark(r, k.watermark), k.maxInUse)
				return
			}
			checkRange(t, fmt.Sprintf("read %v", read), PeakRange(r, lost, missed, 0, 4, nil), r, k.maxInUse)
		case 2: // tracepoint
			sign := []int{1, -1, 0}[seed%3]
			k := statTrial(rnd, 1500, dropEvery, loseEvery, sign, others)
			missed := map[string]uint64{}
			if k.missed > 0 {
				missed["mod_memcg_lruvec_state"] = k.missed
			}
			truth := uint64(k.maxTruth)
			for _, kept := range []bool{true, false} {
				r := k.replay(kept)
				ceiling := k.watermark
				checkRange(t, fmt.Sprintf("tracepoint kept %v", kept), PeakRange(r, k.lost, missed, ceiling, 4, nil), withWatermark(r, ceiling), truth)
				if sign != 0 && kept {
					rec := &Reconciliation{StatPages: k.truth, RealPages: k.sum}
					checkRange(t, "tracepoint reconciled", PeakRange(r, k.lost, missed, ceiling, 4, rec), withWatermark(r, ceiling), truth)
				}
			}
		}
	})
}

// withWatermark is r as the report sees it with a ceiling above the traced
// watermark: the range may reach the ceiling.
func withWatermark(r Result, w uint64) Result {
	r.Watermark = max(r.Watermark, w)
	return r
}

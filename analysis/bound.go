package analysis

import "strings"

// Bound is how far the corrected peak can be from the real one because the
// trace lacks calls: Pages either way, from Calls calls the kernel or the
// tracer counted as missed or lost.
type Bound struct {
	Pages uint64
	Calls uint64
}

// ErrorBound bounds the corrected peak's error from what the trace missed:
// lost events, and missed calls by the traced function or program they
// are named after (loader.Tracer.Missed).
//
// The replay takes usage from the kernel at every counter event, so a
// missed call only leaves it wrong about a stock, the pages in flight, or
// usage until the next counter event, and by at most what that call moved:
//   - refill_stock adds at most a batch to a stock (the surplus of one, or
//     a few pages of freed kernel memory);
//   - drain_stock gives back a stock, which a refill can have taken just
//     past a batch before the kernel drains it: under two batches;
//   - a request (try_charge) the stock served took at most a batch; one
//     that charged the counter left that charge in flight: at most the
//     largest counter charge the trace saw;
//   - a counter charge or uncharge, or an event of unknown kind (lost, or
//     a failed read): its pages, at most the largest call the trace saw.
//
// The errors of several missed calls add up at worst. The kernel counts
// misses of every cgroup's calls, so the bound is wide where other cgroups
// were busy too. Resyncs moved the replayed stock by pages the replay
// counted; until then the stock was wrong by those pages, which covers
// kernels that count no misses (kprobes before 6.7).
//
// However many calls were missed, a per-charge replay cannot be further off
// than what its state can be wrong by (cpus: the CPUs the kernel may have
// stocked pages on; the trace's own are counted too). Usage is the
// kernel's at every counter event: wrong only by counter calls missed or
// lost since, each at most the largest call. Each per-CPU stock of the
// kernel holds between 0 and a batch once refill_stock returns, so the
// replayed one, however wrong, is off by at most a batch, or by what it
// holds past a batch. Where a request's end was missed (or an event lost),
// pages the replay holds in flight or draining can be wrong by all of them
// (Totals.Slack, their most at any moment real use was taken). The bound is the smaller of the two. Stock-read traces have a
// cap of their own (below); statistic traces none.
func ErrorBound(lost uint64, missed map[string]uint64, t Totals, batch uint64, cpus int) Bound {
	largest := max(batch, t.MaxPages)
	b := Bound{Pages: lost * largest, Calls: lost}
	counter, drains, requests := lost, uint64(0), lost
	for fn, n := range missed {
		b.Calls += n
		b.Pages += n * missedWeight(fn, t, batch, largest)
		switch {
		case counterFn(fn):
			counter += n
		case strings.Contains(fn, "drain_stock"):
			drains += n
		case strings.Contains(fn, "try_charge"):
			requests += n
		}
	}
	if b.Calls == 0 {
		// Each resync found at least one call missed that no counter saw
		// (or a request that moved CPU mid-way on a preemptible kernel).
		b.Calls = t.Resyncs
	}
	b.Pages += t.ResyncPages
	switch {
	case b.Calls == 0 || t.Stats:
	case t.RequestsUncounted:
		// Stock-read traces: the kernel side reads usage and every stock
		// at each event, so a missed call leaves wrong only the pages it
		// holds per CPU as charged and not yet stocked (at most a batch
		// each) or as draining (a missed drain_stock: its stock, under
		// two batches), or a sample of real use (a lost event).
		b.Pages = min(b.Pages, uint64(max(cpus, 1))*batch+drains*2*batch+counter*largest)
	default:
		// Pages in flight are wrong only where a request's end was
		// missed: a missed refill of a request's surplus leaves them in
		// flight rather than stocked until the request ends, which real
		// use counts the same, and then in no stock (a stock error).
		slots := max(uint64(max(cpus, 1))*t.Cgroups, t.Slots)
		var slack uint64
		if requests > 0 {
			slack = t.Slack
		}
		b.Pages = min(b.Pages, slots*batch+slack+counter*largest)
	}
	return b
}

func counterFn(fn string) bool {
	return strings.Contains(fn, "page_counter") || strings.Contains(fn, "pc_")
}

func missedWeight(fn string, t Totals, batch, largest uint64) uint64 {
	switch {
	case strings.Contains(fn, "refill_stock"):
		return batch
	case strings.Contains(fn, "drain_stock"):
		return 2 * batch
	case counterFn(fn):
		return largest
	case strings.Contains(fn, "try_charge"):
		return max(batch, t.MaxCounterPages)
	}
	return largest
}

// Reconciliation is what the live session read at the end of a tracepoint
// trace, at one quiet moment (nothing of the cgroup's changed for longer
// than the kernel's periodic statistics flush, so the kernel's figures
// were flushed): StatPages, the charged statistics as memory.stat has them
// (v2: anon, file, kernel, sock; v1: rss, cache and the kmem counter), and
// RealPages, the tracepoint programs' running sum of the same statistics
// (real_sum). Both are pages.
type Reconciliation struct {
	StatPages int64
	RealPages int64
}

// Drift is what the kernel counted that the programs' running sum missed:
// the net pages of the traced cgroup's own skipped updates.
func (c Reconciliation) Drift() int64 { return c.StatPages - c.RealPages }

// Range is where the real peak lies, in pages: between Low and High, both
// within [0, the watermark]. Peak is the corrected peak the report gives,
// inside the range; Error the farther of its two ends from Peak (so at most
// the watermark); Calls the calls missed or lost the range is wide for.
type Range struct {
	Low, High, Peak, Error uint64
	Calls                  uint64
	// Reconciled: the kernel's statistics were compared with the trace's
	// running sum; Drift is their difference (StatPages - RealPages).
	Reconciled bool
	Drift      int64
}

// Exact: the range is one value.
func (r Range) Exact() bool { return r.Low == r.High }

// PeakRange bounds the real peak of a replayed trace from both sides with
// every constraint the trace proves (r: the replay's result; lost and
// missed: the tracer's counts at the end; ceiling: the highest watermark
// known, the traced one or the cgroup's own peak file, in pages; rec: the
// end's reconciliation, nil where none was read).
//
// The rules, each sound on its own, are intersected:
//
//  1. The real peak lies in [0, ceiling]: real use is usage minus what the
//     stocks and the charges in flight hold, never below 0, and usage never
//     exceeds the counter's watermark, the most usage ever was (the traced
//     watermark is the kernel's own at each counter event and in an end
//     summary's per-CPU readings, which no lost event takes away; the cgroup's
//     peak file, read at the end, is the same counter's maximum since the
//     cgroup began, so it is the ceiling where the trace missed the events
//     that raised the watermark last).
//  2. It lies within ErrorBound of the corrected peak (the replay's state
//     can be wrong only by what the missed calls moved), either way.
//  3. Where the kernel side kept the maximum of real use itself (an end
//     summary: the tracepoint programs' per-CPU max_real of their running
//     sum; the per-request summary's max_real at every request's end), the
//     ring buffer dropping events changes nothing that maximum was taken
//     from: lost events cost nothing, and the range is centred on the
//     kernel's maximum, not on the replay, whose own state lost events can
//     have made wrong.
//  4. Where nothing was missed (no miss counted, no resync), each real use
//     the kernel side measured itself (a stat or stock-read event's real,
//     a summary's max_real) was real use at that moment: the real peak is
//     at least the largest of them, however many events were lost.
//  5. Tracepoint traces: the running sum is wrong only by the statistics
//     updates the kernel skipped for the traced cgroup (those of other
//     cgroups, which the kernel's recursion count includes, never touch
//     it). Where the end's reconciliation compared the kernel's flushed
//     statistics with the sum, their difference D is the net of those
//     skipped updates: D > 0 (additions skipped) leaves the sum, and so its
//     maximum, too low by at most D, D < 0 (removals skipped) too high by
//     at most -D, and D = 0 costs nothing, whatever the kernel counted.
//     This takes the skipped updates of the cgroup's own to all have one
//     sign; two of its own of opposite sign that cancel to the page would
//     hide from it (interrupt-time updates of the traced cgroup inside the
//     programs' few hundred nanoseconds, twice, of equal size). Without a
//     reconciliation each skipped update may have been the cgroup's, by at
//     most the larger of a batch and the largest update the trace saw.
func PeakRange(r Result, lost uint64, missed map[string]uint64, ceiling uint64, cpus int, rec *Reconciliation) Range {
	t := r.Totals
	ceiling = max(ceiling, r.Watermark)
	corrected := min(r.CorrectedPeak.Pages, ceiling)
	var missedN uint64
	for _, n := range missed {
		missedN += n
	}
	// A kernel maximum above the traced watermark contradicts the trace
	// (the report says so): it is taken at the watermark, so that the
	// corrected peak never exceeds the traced watermark.
	kernel := uint64(min(max(r.KernelReal, 0), int64(r.Watermark)))
	base := corrected
	if r.KeptMax && r.HasKernelReal && (t.Stats || lost > 0) {
		base = kernel
	}
	var out Range
	var up, down uint64
	if t.Stats {
		largest := max(r.Batch, t.MaxPages)
		out.Calls = missedN
		if !r.KeptMax {
			// A lost event may have carried a larger sum.
			out.Calls += lost
			up += lost * largest
		}
		switch {
		case rec != nil:
			out.Reconciled, out.Drift = true, rec.Drift()
			if d := rec.Drift(); d > 0 {
				up += uint64(d)
			} else {
				down += uint64(-d)
			}
		default:
			up += missedN * largest
			down += missedN * largest
		}
	} else {
		counted := lost
		if r.KeptMax {
			counted = 0
		}
		b := ErrorBound(counted, missed, t, r.Batch, cpus)
		up, down = b.Pages, b.Pages
		out.Calls = ErrorBound(lost, missed, t, r.Batch, cpus).Calls
	}
	out.High = min(satAdd(base, up), ceiling)
	out.Low = base - min(base, down)
	if r.HasKernelReal && missedN == 0 && t.Resyncs == 0 {
		out.Low = max(out.Low, kernel)
	}
	out.Low = min(out.Low, out.High)
	out.Peak = min(max(corrected, out.Low), out.High)
	out.Error = max(out.Peak-out.Low, out.High-out.Peak)
	return out
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}

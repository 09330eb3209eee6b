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

package analysis

// Bound is how far the corrected peak can be from the real one because the
// trace lacks calls: Pages either way, from Calls calls the kernel or the
// tracer counted as missed or lost.
type Bound struct {
	Pages uint64
	Calls uint64
}

// ErrorBound bounds the corrected peak's error from what the trace missed.
//
// The replay takes usage from the kernel at every counter event, so a
// missed call only makes it wrong about a stock, the pages in flight, or
// usage until the next counter event; and it moves real use by at most
// that call's pages. A request the stock served takes at most one batch,
// a refill or a drain moves at most one batch, a counter charge or
// uncharge moves its pages. What a missed call moved is not known, so each
// counts as one batch or, if the trace saw larger calls, as the largest it
// saw. The errors of several missed calls add up at worst. The kernel counts
// misses of every cgroup's calls, so the bound is wide where other cgroups
// were busy too. Resyncs moved the replayed stock by pages the replay
// itself counted; until then the stock was wrong by those pages, which
// covers kernels that count no misses (kprobes before 6.7).
func ErrorBound(lost uint64, missed map[string]uint64, t Totals, batch uint64) Bound {
	calls := lost
	for _, n := range missed {
		calls += n
	}
	if calls == 0 {
		// Each resync found at least one call missed that no counter saw.
		calls = t.Resyncs
	}
	per := max(batch, t.MaxPages)
	return Bound{Pages: calls*per + t.ResyncPages, Calls: calls}
}

package analysis

import "sort"

// Timeline is the replay's steps, for a plot or a listing, held in bounded
// memory however long the trace: every step while there are at most
// TimelinePoints, past that per interval of time the first and last step
// and those where usage, real use and the watermark were lowest and
// highest, so every peak is kept exactly.
type Timeline struct {
	Points []Point
	// Interval is 0 when every step is kept; else the width of each
	// interval in ns (a power of two: it doubles as the trace goes on).
	Interval uint64
}

// Timeline bounds: at most TimelinePoints points held, in timelineBins
// intervals of up to 7 points once thinned. 2048 intervals are finer than
// a plot's pixel columns.
const (
	timelineBins   = 2048
	TimelinePoints = 7 * timelineBins
)

// timeline gathers a Timeline while the replay streams.
type timeline struct {
	nbins int  // timelineBins; fewer in tests
	all   bool // tests: keep every step, as before the bound
	pts   []Point
	bins  []bin
	t0    uint64
	width uint64 // ns per bin; 0 while pts holds every step
	seq   uint64
}

type seqPoint struct {
	p   Point
	seq uint64 // the step's place in the replay: the order within a bin
}

// bin is one interval of a thinned timeline.
type bin struct {
	n                                    uint64
	first, last, loU, hiU, loR, hiR, hiW seqPoint
}

func (t *timeline) add(p Point) {
	t.seq++
	if t.width == 0 {
		t.pts = append(t.pts, p)
		if len(t.pts) > 7*t.nbins && !t.all {
			t.thin()
		}
		return
	}
	t.put(seqPoint{p, t.seq})
}

// thin turns the steps held so far into intervals wide enough for their
// span.
func (t *timeline) thin() {
	t.t0 = t.pts[0].Time
	var end uint64
	for _, p := range t.pts {
		end = max(end, p.Time)
	}
	t.width = 1
	for (end-t.t0)/t.width >= uint64(t.nbins) {
		t.width *= 2
	}
	t.bins = make([]bin, t.nbins)
	for i, p := range t.pts {
		t.put(seqPoint{p, uint64(i) + 1})
	}
	t.pts = nil
}

func (t *timeline) put(s seqPoint) {
	var off uint64
	if s.p.Time > t.t0 { // a step stamped before the first (another CPU's clock) goes in the first bin
		off = s.p.Time - t.t0
	}
	for off/t.width >= uint64(t.nbins) {
		t.widen()
	}
	t.bins[off/t.width].add(s)
}

// widen doubles the intervals' width, merging them in pairs.
func (t *timeline) widen() {
	for i := 0; i < t.nbins/2; i++ {
		t.bins[i] = merge(t.bins[2*i], t.bins[2*i+1])
	}
	for i := t.nbins / 2; i < t.nbins; i++ {
		t.bins[i] = bin{}
	}
	t.width *= 2
}

func (b *bin) add(s seqPoint) {
	if b.n == 0 {
		*b = bin{n: 1, first: s, last: s, loU: s, hiU: s, loR: s, hiR: s, hiW: s}
		return
	}
	b.n++
	b.last = s
	b.loU = lower(b.loU, s, func(p Point) int64 { return p.Usage })
	b.hiU = lower(s, b.hiU, func(p Point) int64 { return -p.Usage })
	b.loR = lower(b.loR, s, func(p Point) int64 { return p.Real })
	b.hiR = lower(s, b.hiR, func(p Point) int64 { return -p.Real })
	b.hiW = lower(s, b.hiW, func(p Point) int64 { return -int64(p.Watermark) })
}

// lower is the one of a and b whose f is lower; a on a tie, unless b came
// first in the replay.
func lower(a, b seqPoint, f func(Point) int64) seqPoint {
	if fa, fb := f(a.p), f(b.p); fb < fa || fb == fa && b.seq < a.seq {
		return b
	}
	return a
}

func merge(a, b bin) bin {
	if a.n == 0 {
		return b
	}
	if b.n == 0 {
		return a
	}
	a.n += b.n
	a.last = b.last
	a.loU = lower(a.loU, b.loU, func(p Point) int64 { return p.Usage })
	a.hiU = lower(a.hiU, b.hiU, func(p Point) int64 { return -p.Usage })
	a.loR = lower(a.loR, b.loR, func(p Point) int64 { return p.Real })
	a.hiR = lower(a.hiR, b.hiR, func(p Point) int64 { return -p.Real })
	a.hiW = lower(a.hiW, b.hiW, func(p Point) int64 { return -int64(p.Watermark) })
	return a
}

// result is the timeline as held: every step, or each interval's kept
// steps in replay order.
func (t *timeline) result() Timeline {
	if t.width == 0 {
		return Timeline{Points: t.pts}
	}
	var out []Point
	for _, b := range t.bins {
		if b.n == 0 {
			continue
		}
		kept := []seqPoint{b.first, b.last, b.loU, b.hiU, b.loR, b.hiR, b.hiW}
		sort.Slice(kept, func(i, j int) bool { return kept[i].seq < kept[j].seq })
		for i, s := range kept {
			if i == 0 || s.seq != kept[i-1].seq {
				out = append(out, s.p)
			}
		}
	}
	return Timeline{Points: out, Interval: t.width}
}

// held is how many points the timeline holds now.
func (t *timeline) held() int {
	if t.width == 0 {
		return len(t.pts)
	}
	n := 0
	for _, b := range t.bins {
		n += int(min(b.n, 7))
	}
	return n
}

package analysis

import (
	"math/rand"
	"testing"
)

// A timeline of two million steps (a random walk of usage, real use and the
// watermark over irregular gaps in time) holds at most TimelinePoints at
// every moment, and keeps exactly the highest and lowest of each line, the
// first and the last step, each a step that happened, in order.
func TestTimelineBoundedLarge(t *testing.T) {
	tl := &timeline{nbins: timelineBins}
	var all []Point
	r := rand.New(rand.NewSource(1))
	var now uint64
	var usage, real int64 = 1000, 900
	var mark uint64
	for i := 0; i < 2_000_000; i++ {
		now += uint64(r.Intn(3000)) // some steps share a time
		if r.Intn(100_000) == 0 {
			now += 1e9 // an idle second: the intervals must widen
		}
		usage += int64(r.Intn(129)) - 64
		real = usage - int64(r.Intn(128))
		mark = max(mark, uint64(max(usage, 0)))
		p := Point{Time: now, Usage: usage, Real: real, Watermark: mark, Op: OpCharge, CPU: i % 2}
		tl.add(p)
		all = append(all, p)
		if i%4096 == 0 && tl.held() > TimelinePoints {
			t.Fatalf("after %d steps the timeline holds %d points, more than %d", i+1, tl.held(), TimelinePoints)
		}
	}
	got := tl.result()
	if len(got.Points) > TimelinePoints || got.Interval == 0 {
		t.Fatalf("%d points at intervals of %d ns: want at most %d, thinned", len(got.Points), got.Interval, TimelinePoints)
	}
	sameExtremes(t, all, got.Points)
}

// sameExtremes checks the kept points against every step: the same first
// and last, the same highest and lowest usage, real use and watermark, and
// each kept point one of the steps, in the same order.
func sameExtremes(t *testing.T, all, kept []Point) {
	t.Helper()
	if len(kept) == 0 || kept[0] != all[0] || kept[len(kept)-1] != all[len(all)-1] {
		t.Fatalf("first and last kept points differ from the replay's")
	}
	for _, line := range []struct {
		name string
		f    func(Point) int64
	}{{"usage", func(p Point) int64 { return p.Usage }}, {"real use", func(p Point) int64 { return p.Real }}, {"watermark", func(p Point) int64 { return int64(p.Watermark) }}} {
		lo, hi := extremes(all, line.f)
		klo, khi := extremes(kept, line.f)
		if lo != klo || hi != khi {
			t.Errorf("%s: kept from %d to %d, every step from %d to %d", line.name, klo, khi, lo, hi)
		}
	}
	j := 0
	for _, p := range kept {
		for j < len(all) && all[j] != p {
			j++
		}
		if j == len(all) {
			t.Fatalf("kept point %+v is not one of the steps, or out of order", p)
		}
		j++
	}
}

func extremes(pts []Point, f func(Point) int64) (lo, hi int64) {
	lo, hi = f(pts[0]), f(pts[0])
	for _, p := range pts {
		lo, hi = min(lo, f(p)), max(hi, f(p))
	}
	return lo, hi
}

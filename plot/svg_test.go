package plot

import (
	"bytes"
	"encoding/xml"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
)

// drawing is what a reader of the SVG sees: the polylines by legend name,
// and the axes' scales read from their labels.
type drawing struct {
	lines        map[string][][2]float64 // legend name -> vertices (px)
	yLabels      [][2]float64            // (value MiB, y px)
	xLabels      [][2]float64            // (value ms, x px)
	hasScript    bool
	title        string
	legendColors []string
}

func parse(t *testing.T, svg []byte) drawing {
	t.Helper()
	d := drawing{lines: map[string][][2]float64{}}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	type elem struct {
		name  string
		attrs map[string]string
		text  string
	}
	var elems []elem
	var cur *elem
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v", err)
			}
			break
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			e := elem{name: tk.Name.Local, attrs: map[string]string{}}
			for _, a := range tk.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			elems = append(elems, e)
			cur = &elems[len(elems)-1]
			d.hasScript = d.hasScript || e.name == "script"
		case xml.CharData:
			if cur != nil {
				cur.text += string(tk)
			}
		case xml.EndElement:
			cur = nil
		}
	}
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		return f
	}
	byColor := map[string][][2]float64{}
	for i, e := range elems {
		switch {
		case e.name == "polyline":
			var vs [][2]float64
			for _, p := range strings.Fields(e.attrs["points"]) {
				xs, ys, _ := strings.Cut(p, ",")
				vs = append(vs, [2]float64{num(xs), num(ys)})
			}
			byColor[e.attrs["stroke"]] = vs
		case e.name == "line" && i+1 < len(elems) && elems[i+1].name == "text" && e.attrs["stroke-width"] == "2":
			// A legend entry: its sample line's colour, then its name.
			d.lines[elems[i+1].text] = byColor[e.attrs["stroke"]]
		case e.name == "text" && e.attrs["text-anchor"] == "end":
			d.yLabels = append(d.yLabels, [2]float64{num(e.text), num(e.attrs["y"]) - 4})
		case e.name == "text" && e.attrs["text-anchor"] == "middle" && e.attrs["transform"] == "":
			if v, err := strconv.ParseFloat(e.text, 64); err == nil {
				d.xLabels = append(d.xLabels, [2]float64{v, num(e.attrs["x"])})
			}
		case e.name == "text" && e.attrs["font-size"] == "14":
			d.title = e.text
		}
	}
	return d
}

// scale maps pixels to values through the first and last labels.
func scale(labels [][2]float64) func(px float64) float64 {
	a, b := labels[0], labels[len(labels)-1]
	return func(px float64) float64 { return a[0] + (px-a[1])*(b[0]-a[0])/(b[1]-a[1]) }
}

// A workload that climbs to 3000 pages in use and falls back, its usage
// running up to a batch of 64 ahead: the real-use line drawn must, read back
// through the axes' own labels, reach exactly the most and the least pages
// in use, and every vertex must be a value real use had at that moment.
func TestTimelineRealUseLine(t *testing.T) {
	const page = 4096
	var pts []analysis.Point
	for i := 0; i < 12000; i++ {
		real := int64(i % 6000)
		if i%6000 >= 3000 {
			real = int64(6000 - i%6000)
		}
		u := (real/64 + 1) * 64
		pts = append(pts, analysis.Point{Time: uint64(i) * 1500, Usage: u, Real: real, Watermark: 3008})
	}
	var buf bytes.Buffer
	if err := Timeline(&buf, "touch <3000> & co", pts, page); err != nil {
		t.Fatal(err)
	}
	d := parse(t, buf.Bytes())
	if d.hasScript {
		t.Error("the SVG has a script")
	}
	if d.title != "touch <3000> & co" {
		t.Errorf("title %q", d.title)
	}
	if len(d.yLabels) < 2 || len(d.xLabels) < 2 {
		t.Fatalf("axes without labels: %v %v", d.yLabels, d.xLabels)
	}
	mib, ms := scale(d.yLabels), scale(d.xLabels)
	line := d.lines["real use U - S (stocked pages removed)"]
	usage := d.lines["memory counter usage U (what memory.current reads)"]
	if len(line) == 0 || len(usage) == 0 {
		t.Fatalf("no real-use or usage line in the legend: %v", d.lines)
	}
	if len(line) > 2*maxPoints {
		t.Errorf("%d vertices for %d points: not bounded", len(line), len(pts))
	}
	toMiB := float64(page) / (1 << 20)
	// Half a pixel of rounding, in MiB and in ms.
	tolV := math.Abs(mib(0.5) - mib(0))
	tolT := math.Abs(ms(0.5)-ms(0)) + float64(pts[len(pts)-1].Time-pts[0].Time)/1e6/float64(maxPoints/4)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range line {
		lo, hi = math.Min(lo, mib(v[1])), math.Max(hi, mib(v[1]))
	}
	if want := 3000 * toMiB; math.Abs(hi-want) > tolV {
		t.Errorf("the real-use line tops at %.4f MiB, want %.4f (3000 pages)", hi, want)
	}
	if math.Abs(lo) > tolV {
		t.Errorf("the real-use line bottoms at %.4f MiB, want 0", lo)
	}
	times := make([]float64, len(pts))
	for i, p := range pts {
		times[i] = float64(p.Time-pts[0].Time) / 1e6
	}
	for _, v := range line {
		at, val := ms(v[0]), mib(v[1])
		i := sort.SearchFloat64s(times, at-tolT)
		found := false
		for ; i < len(pts) && times[i] <= at+tolT && !found; i++ {
			found = math.Abs(float64(pts[i].Real)*toMiB-val) <= tolV
		}
		if !found {
			t.Fatalf("vertex at %.3f ms, %.4f MiB: real use never had that value then", at, val)
		}
	}
	// Usage runs ahead of real use: its line tops a batch above.
	top := math.Inf(-1)
	for _, v := range usage {
		top = math.Max(top, mib(v[1]))
	}
	if want := 3008 * toMiB; math.Abs(top-want) > tolV {
		t.Errorf("usage tops at %.4f MiB, want %.4f (3008 pages)", top, want)
	}
}

package plot

import (
	"bytes"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
)

type svgNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []svgNode  `xml:",any"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) num(t *testing.T, name string) float64 {
	v, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return v
}

func (n svgNode) all(class string) []svgNode {
	var out []svgNode
	for _, c := range n.Children {
		if c.attr("class") == class {
			out = append(out, c)
		}
		out = append(out, c.all(class)...)
	}
	return out
}

// The boxes read back, through the axis the SVG itself labels, as the
// quartiles of the values, computed here by sorting.
func TestBoxesMatchTheNumbers(t *testing.T) {
	fast := Group{"./fast", []float64{0.010, 0.012, 0.011, 0.013, 0.030}}
	slow := Group{"./slow 'quoted' <arg>", []float64{0.050, 0.052, 0.049, 0.051}}
	mem := []Group{{"./fast", []float64{4 << 20, 4 << 20, 5 << 20, 4 << 20, 4 << 20}}, {"./slow", []float64{9 << 20, 8 << 20, 9 << 20, 9 << 20}}}
	var buf bytes.Buffer
	err := Boxes(&buf, "two commands", []Panel{
		{Title: "wall time", Unit: "ms", Scale: 1e-3, Groups: []Group{fast, slow}},
		{Title: "cgroup peak", Unit: "MiB", Scale: 1 << 20, Groups: mem},
	})
	if err != nil {
		t.Fatal(err)
	}
	var root svgNode
	if err := xml.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
	}
	panels := root.all("panel")
	if len(panels) != 2 {
		t.Fatalf("%d panels, want 2", len(panels))
	}
	for pi, want := range [][]Group{{fast, slow}, mem} {
		p := panels[pi]
		scale := []float64{1e-3, 1 << 20}[pi]
		ticks := p.all("ytick")
		if len(ticks) < 2 {
			t.Fatalf("panel %d: %d axis ticks", pi, len(ticks))
		}
		// The axis from its first and last labels: value v sits at y = a + b v.
		v0, _ := strconv.ParseFloat(strings.TrimSpace(ticks[0].Text), 64)
		v1, _ := strconv.ParseFloat(strings.TrimSpace(ticks[len(ticks)-1].Text), 64)
		y0, y1 := ticks[0].num(t, "y"), ticks[len(ticks)-1].num(t, "y")
		value := func(y float64) float64 { return v0 + (y-y0)*(v1-v0)/(y1-y0) }
		groups := p.all("group")
		if len(groups) != len(want) {
			t.Fatalf("panel %d: %d groups, want %d", pi, len(groups), len(want))
		}
		for gi, g := range groups {
			if g.attr("data-name") != want[gi].Name {
				t.Errorf("group %d named %q, want %q", gi, g.attr("data-name"), want[gi].Name)
			}
			xs := append([]float64(nil), want[gi].Values...)
			for i := range xs {
				xs[i] /= scale
			}
			sortFloats(xs)
			q := func(p float64) float64 { // type 7, written out again here
				h := p * float64(len(xs)-1)
				lo := math.Floor(h)
				if int(lo)+1 >= len(xs) {
					return xs[len(xs)-1]
				}
				return xs[int(lo)] + (h-lo)*(xs[int(lo)+1]-xs[int(lo)])
			}
			box := g.all("box")[0]
			top, bottom := value(box.num(t, "y")), value(box.num(t, "y")+box.num(t, "height"))
			med := value(g.all("median")[0].num(t, "y1"))
			wh := g.all("whisker")[0]
			tol := (v1 - v0) / 2000 // a hundredth of a pixel, roughly
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"Q3", top, q(0.75)}, {"Q1", bottom, q(0.25)}, {"median", med, q(0.5)}, {"min", value(wh.num(t, "y1")), xs[0]}, {"max", value(wh.num(t, "y2")), xs[len(xs)-1]}} {
				if math.Abs(c.got-c.want) > tol {
					t.Errorf("panel %d group %d: %s reads %.4f, want %.4f", pi, gi, c.what, c.got, c.want)
				}
			}
			if n := len(g.all("run")); n != len(xs) {
				t.Errorf("panel %d group %d: %d dots for %d runs", pi, gi, n, len(xs))
			}
		}
	}
	if err := Boxes(&buf, "x", []Panel{{Title: "t", Groups: []Group{{"a", nil}}}}); err == nil {
		t.Error("a command without runs plotted")
	}
}

func sortFloats(xs []float64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

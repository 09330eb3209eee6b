// Package plot draws a charge timeline as a self-contained SVG: no scripts,
// no external fonts or styles, so any browser or image viewer opens it.
package plot

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/cgpeak/cgpeak/analysis"
)

const (
	width, height          = 900, 420
	left, right, top, bott = 80, 20, 40, 60
	maxPoints              = 1800 // per series: more is invisible at this width
)

type series struct {
	name, color, dash string
	y                 func(analysis.Point) float64
}

// Timeline writes the SVG of usage U, real use U - S and the watermark over
// time, in MiB, with pageSize bytes a page, naming cgroup v2's files.
func Timeline(w io.Writer, title string, pts []analysis.Point, pageSize uint64) error {
	return TimelineOf(w, title, pts, pageSize, "memory.current", "memory.peak")
}

// TimelineOf is Timeline with the files that read the counter's usage and
// watermark where the trace was taken (v1: memory.usage_in_bytes and
// memory.max_usage_in_bytes), so the legend names what the reader has.
func TimelineOf(w io.Writer, title string, pts []analysis.Point, pageSize uint64, usageFile, peakFile string) error {
	if len(pts) == 0 {
		return fmt.Errorf("plotting: the trace has no events")
	}
	mib := float64(pageSize) / (1 << 20)
	all := []series{
		{"memory counter usage U (what " + usageFile + " reads)", "#d62728", "", func(p analysis.Point) float64 { return float64(p.Usage) * mib }},
		{"watermark (what " + peakFile + " reads)", "#7f7f7f", "6,4", func(p analysis.Point) float64 { return float64(p.Watermark) * mib }},
		{"real use U - S (stocked pages removed)", "#1f77b4", "", func(p analysis.Point) float64 { return float64(p.Real) * mib }},
	}
	t0, t1 := pts[0].Time, pts[len(pts)-1].Time
	span := float64(t1 - t0)
	if span == 0 {
		span = 1
	}
	var ymax float64
	for _, p := range pts {
		for _, s := range all {
			ymax = math.Max(ymax, s.y(p))
		}
	}
	ymax = niceCeil(ymax)
	x := func(t uint64) float64 { return left + float64(t-t0)/span*(width-left-right) }
	y := func(v float64) float64 { return height - bott - v/ymax*(height-top-bott) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", left, esc(title))
	// Axes and grid.
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", left, width-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, trim(v))
	}
	for i := 0; i <= 5; i++ {
		t := t0 + uint64(float64(t1-t0)*float64(i)/5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), height-bott+18, trim(float64(t-t0)/1e6))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since the first traced charge (ms)</text>`+"\n", (left+width-right)/2, height-bott+38)
	fmt.Fprintf(&b, `<text x="18" y="%d" transform="rotate(-90 18 %d)" text-anchor="middle">MiB</text>`+"\n", (top+height-bott)/2, (top+height-bott)/2)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, width-left-right, height-top-bott)

	for i, s := range all {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"`, s.color)
		if s.dash != "" {
			fmt.Fprintf(&b, ` stroke-dasharray="%s"`, s.dash)
		}
		b.WriteString(` points="`)
		for _, p := range steps(pts, s.y) {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(p.v))
		}
		b.WriteString("\"/>\n")
		ly := top + 14 + 16*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", left+10, left+34, ly-4, ly-4, s.color, s.dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+40, ly, esc(s.name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type tv struct {
	t uint64
	v float64
}

// steps turns the events into a step line, keeping per pixel column the
// first, lowest, highest and last value so no peak disappears.
func steps(pts []analysis.Point, f func(analysis.Point) float64) []tv {
	t0, t1 := pts[0].Time, pts[len(pts)-1].Time
	buckets := uint64(maxPoints / 4)
	width := (t1-t0)/buckets + 1
	var out []tv
	prev := f(pts[0])
	out = append(out, tv{t0, prev})
	for i := 0; i < len(pts); {
		b := (pts[i].Time - t0) / width
		j := i
		lo, hi := math.Inf(1), math.Inf(-1)
		var tlo, thi uint64
		for ; j < len(pts) && (pts[j].Time-t0)/width == b; j++ {
			v := f(pts[j])
			if v < lo {
				lo, tlo = v, pts[j].Time
			}
			if v > hi {
				hi, thi = v, pts[j].Time
			}
		}
		first, last := pts[i], pts[j-1]
		out = append(out, tv{first.Time, prev}, tv{first.Time, f(first)})
		if tlo < thi {
			out = append(out, tv{tlo, lo}, tv{thi, hi})
		} else {
			out = append(out, tv{thi, hi}, tv{tlo, lo})
		}
		out = append(out, tv{last.Time, f(last)})
		prev = f(last)
		i = j
	}
	return out
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

package plot

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Group is one command's measurements in a distribution panel.
type Group struct {
	Name   string
	Values []float64
}

// Panel is one quantity (wall time, peak memory) across commands, values in
// Unit after dividing by Scale.
type Panel struct {
	Title  string
	Unit   string
	Scale  float64
	Groups []Group
}

const (
	boxPanelW, boxH = 440, 460
	boxTop, boxBott = 50, 110
	boxLeft         = 70
)

var boxColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// Boxes writes box plots side by side, one panel per quantity and one box per
// command: the box spans the quartiles, the thick line is the median, the
// whiskers reach the minimum and maximum, and every run is a dot. The axis
// starts at zero so the boxes' heights compare as ratios do.
func Boxes(w io.Writer, title string, panels []Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("plotting: nothing to plot")
	}
	total := boxPanelW * len(panels)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", total, boxH, total, boxH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">%s</text>`+"\n", esc(title))
	for i, p := range panels {
		if err := boxPanel(&b, i*boxPanelW, p); err != nil {
			return err
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func boxPanel(b *strings.Builder, x0 int, p Panel) error {
	if len(p.Groups) == 0 {
		return fmt.Errorf("plotting %s: no commands", p.Title)
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	var ymax float64
	for _, g := range p.Groups {
		if len(g.Values) == 0 {
			return fmt.Errorf("plotting %s: %s has no runs", p.Title, g.Name)
		}
		for _, v := range g.Values {
			ymax = math.Max(ymax, v/scale)
		}
	}
	ymax = niceCeil(ymax)
	plotW := boxPanelW - boxLeft - 20
	y := func(v float64) float64 { return boxH - boxBott - v/ymax*(boxH-boxTop-boxBott) }
	fmt.Fprintf(b, `<g class="panel" data-title="%s">`+"\n", esc(p.Title))
	fmt.Fprintf(b, `<text x="%d" y="40" font-size="13">%s</text>`+"\n", x0+boxLeft, esc(p.Title))
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.2f" y2="%.2f" stroke="#e0e0e0"/>`+"\n", x0+boxLeft, x0+boxLeft+plotW, y(v), y(v))
		fmt.Fprintf(b, `<text class="ytick" x="%d" y="%.2f" dy="4" text-anchor="end">%s</text>`+"\n", x0+boxLeft-6, y(v), trim(v))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`+"\n", x0+16, (boxTop+boxH-boxBott)/2, x0+16, (boxTop+boxH-boxBott)/2, esc(p.Unit))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", x0+boxLeft, boxTop, plotW, boxH-boxTop-boxBott)
	slot := float64(plotW) / float64(len(p.Groups))
	for i, g := range p.Groups {
		vs := make([]float64, len(g.Values))
		for j, v := range g.Values {
			vs[j] = v / scale
		}
		sort.Float64s(vs)
		q1, med, q3 := quantile(vs, 0.25), quantile(vs, 0.5), quantile(vs, 0.75)
		cx := float64(x0+boxLeft) + slot*(float64(i)+0.5)
		bw := math.Min(60, slot*0.5)
		color := boxColors[i%len(boxColors)]
		fmt.Fprintf(b, `<g class="group" data-name="%s">`+"\n", esc(g.Name))
		fmt.Fprintf(b, `<line class="whisker" x1="%.2f" x2="%.2f" y1="%.2f" y2="%.2f" stroke="#444"/>`+"\n", cx, cx, y(vs[0]), y(vs[len(vs)-1]))
		fmt.Fprintf(b, `<rect class="box" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s" fill-opacity="0.35" stroke="%s"><title>%s: median %s %s</title></rect>`+"\n",
			cx-bw/2, y(q3), bw, y(q1)-y(q3), color, color, esc(g.Name), trim(med), esc(p.Unit))
		fmt.Fprintf(b, `<line class="median" x1="%.2f" x2="%.2f" y1="%.2f" y2="%.2f" stroke="%s" stroke-width="3"/>`+"\n", cx-bw/2, cx+bw/2, y(med), y(med), color)
		for j, v := range vs {
			// A fixed spread across the box, so dots of equal values stay apart.
			dx := (float64(j%7)/6 - 0.5) * bw * 0.8
			fmt.Fprintf(b, `<circle class="run" cx="%.2f" cy="%.2f" r="2.5" fill="%s"/>`+"\n", cx+dx, y(v), color)
		}
		fmt.Fprintf(b, `<text x="%.2f" y="%d" text-anchor="end" transform="rotate(-30 %.2f %d)">%s</text>`+"\n", cx, boxH-boxBott+16, cx, boxH-boxBott+16, esc(shorten(g.Name, 28)))
		b.WriteString("</g>\n")
	}
	b.WriteString("</g>\n")
	return nil
}

// quantile of sorted values with linear interpolation between order
// statistics (the common "type 7" definition, as numpy's default).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

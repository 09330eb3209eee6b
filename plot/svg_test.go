package plot

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
)

// The SVG is well-formed XML, scriptless, and its lines reach the known maxima.
func TestTimelineSVG(t *testing.T) {
	var pts []analysis.Point
	for i := 0; i < 10000; i++ {
		u := int64(64 * (i/64 + 1))
		pts = append(pts, analysis.Point{Time: uint64(i) * 1000, Usage: u, Real: int64(i + 1), Watermark: uint64(u)})
	}
	var buf bytes.Buffer
	if err := Timeline(&buf, "touch <10000> & co", pts, 4096); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var lines [][]float64
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "script" {
				t.Error("svg has a script")
			}
			for _, a := range se.Attr {
				if a.Name.Local == "points" {
					var ys []float64
					for _, p := range strings.Fields(a.Value) {
						_, yv, _ := strings.Cut(p, ",")
						f, err := strconv.ParseFloat(yv, 64)
						if err != nil {
							t.Fatal(err)
						}
						ys = append(ys, f)
					}
					lines = append(lines, ys)
				}
			}
		}
	}
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v", err)
	}
	if len(lines) != 3 {
		t.Fatalf("%d polylines, want 3", len(lines))
	}
	// Max of usage is 10048 pages = 39.25 MiB; the y axis tops at 50 MiB.
	top, bottom := 40.0, 420.0-60
	want := bottom - 39.25/50*(bottom-top)
	for i, ys := range lines[:2] {
		min := ys[0]
		for _, y := range ys {
			if y < min {
				min = y
			}
		}
		if d := min - want; d > 0.2 || d < -0.2 {
			t.Errorf("line %d reaches y=%.1f, want %.1f (39.25 MiB)", i, min, want)
		}
		if len(ys) > 2*maxPoints {
			t.Errorf("line %d has %d points, want at most %d", i, len(ys), 2*maxPoints)
		}
	}
	if !strings.Contains(buf.String(), "touch &lt;10000&gt; &amp; co") {
		t.Error("title not escaped")
	}
}

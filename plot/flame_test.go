package plot

import (
	"bytes"
	"encoding/xml"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Each frame's box is as wide as its share of the pages: big three times
// small, main as wide as the whole, kernel frames orange; well-formed XML.
func TestFlameWidths(t *testing.T) {
	folded := "app;main;big;try_charge_memcg_[k] 300\napp;main;small;try_charge_memcg_[k] 100\n"
	var buf bytes.Buffer
	if err := Flame(&buf, "a <b>", strings.NewReader(folded)); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v", err)
			}
			break
		}
	}
	re := regexp.MustCompile(`<title>([^<]*): (\d+) pages[^<]*</title><rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"[^>]*fill="rgb\((\d+),`)
	width := map[string]float64{}
	for _, m := range re.FindAllStringSubmatch(buf.String(), -1) {
		w, _ := strconv.ParseFloat(m[3], 64)
		width[m[1]] += w
	}
	if width["main"] != 1200 || width["big"] != 900 || width["small"] != 300 || width["try_charge_memcg_[k]"] != 1200 {
		t.Errorf("widths %v, want main 1200, big 900, small 300", width)
	}
	if err := Flame(&buf, "x", strings.NewReader("a;b\n")); err == nil {
		t.Error("a line without a count was accepted")
	}
}

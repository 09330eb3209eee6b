package analysis

import (
	"fmt"
	"strings"
)

// Explain puts the breakdown of the watermark into one sentence, e.g.
// "memory.peak 1048576 B (256 pages) = 196 pages in use + 60 pages
// pre-charged in CPU 0's stock (4 batches of 64)". peakBytes is what the
// cgroup file read (0 if unknown); label names that file.
func Explain(r Result, label string, peakBytes, pageSize uint64) string {
	var b strings.Builder
	w := r.Watermark
	if peakBytes > 0 {
		w = peakBytes / pageSize
		fmt.Fprintf(&b, "%s %d B (%d pages)", label, peakBytes, w)
	} else {
		fmt.Fprintf(&b, "traced watermark %d B (%d pages)", r.Watermark*pageSize, r.Watermark)
	}
	s := r.AtWatermark
	if s == nil {
		b.WriteString(": no charge in the trace set the watermark")
		return b.String()
	}
	fmt.Fprintf(&b, " = %d pages in use", s.InUse)
	var stocked uint64
	for _, c := range sortedCPUs(s.Stock) {
		fmt.Fprintf(&b, " + %d pages pre-charged in CPU %d's stock", s.Stock[c], c)
		stocked += s.Stock[c]
	}
	if len(s.Stock) == 0 && s.StockTotal > 0 {
		fmt.Fprintf(&b, " + %d pages pre-charged in per-CPU stocks", s.StockTotal)
		stocked = s.StockTotal
	}
	if s.Batches > 0 {
		plural := "es"
		if s.Batches == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, " (%d batch%s of %d)", s.Batches, plural, r.Batch)
	}
	if other := int64(w) - int64(s.InUse+stocked); other != 0 {
		// Charged before tracing began, or moved by other CPUs meanwhile.
		fmt.Fprintf(&b, " %+d pages the trace does not account for", -other)
	}
	return b.String()
}

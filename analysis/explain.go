package analysis

import (
	"fmt"
	"strings"
)

// Breakdown splits a cgroup's peak into the pages in use and the pages
// pre-charged in per-CPU stocks at the moment the counter stood at its
// watermark; the rest (Unaccounted) is what the trace cannot place:
// PeakPages = InUse + Stocked + Unaccounted, exactly.
type Breakdown struct {
	Source      string         `json:"source"` // the cgroup file read, or "traced watermark"
	PeakBytes   uint64         `json:"peak_bytes"`
	PeakPages   uint64         `json:"peak_pages"`
	InUse       uint64         `json:"in_use_pages"`
	Stocked     uint64         `json:"stocked_pages"`
	PerCPU      map[int]uint64 `json:"stocked_per_cpu,omitempty"` // empty when only the stocks' sum is known
	Batches     uint64         `json:"batches"`
	Batch       uint64         `json:"batch_pages"`
	Unaccounted int64          `json:"unaccounted_pages"` // charged before tracing began, or moved by calls not traced
	Known       bool           `json:"at_watermark"`      // false: no charge in the trace set the watermark
}

// Break computes the breakdown of the peak. peakBytes is what the cgroup
// file read (0 if unknown); label names that file.
func Break(r Result, label string, peakBytes, pageSize uint64) Breakdown {
	b := Breakdown{Source: "traced watermark", PeakPages: r.Watermark, Batch: r.Batch}
	if peakBytes > 0 {
		b.Source, b.PeakPages = label, peakBytes/pageSize
		b.PeakBytes = peakBytes
	} else {
		b.PeakBytes = r.Watermark * pageSize
	}
	s := r.AtWatermark
	if s == nil {
		b.Unaccounted = int64(b.PeakPages) // bounded like every page count
		return b
	}
	b.Known, b.InUse, b.Batches = true, s.InUse, s.Batches
	if len(s.Stock) > 0 {
		b.PerCPU = map[int]uint64{}
		for c, v := range s.Stock {
			b.PerCPU[c] = v
			b.Stocked += v
		}
	} else {
		b.Stocked = s.StockTotal
	}
	// Each term is a page count the trace reader bounds far below 2^62.
	b.Unaccounted = int64(b.PeakPages) - int64(b.InUse) - int64(b.Stocked)
	return b
}

// Explain puts the breakdown of the watermark into one sentence, e.g.
// "memory.peak 1048576 B (256 pages) = 196 pages in use + 60 pages
// pre-charged in CPU 0's stock (4 batches of 64)". peakBytes is what the
// cgroup file read (0 if unknown); label names that file.
func Explain(r Result, label string, peakBytes, pageSize uint64) string {
	return Break(r, label, peakBytes, pageSize).String()
}

func (d Breakdown) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d B (%d pages)", d.Source, d.PeakBytes, d.PeakPages)
	if !d.Known {
		b.WriteString(": no charge in the trace set the watermark")
		return b.String()
	}
	fmt.Fprintf(&b, " = %d pages in use", d.InUse)
	for _, c := range sortedCPUs(d.PerCPU) {
		fmt.Fprintf(&b, " + %d pages pre-charged in CPU %d's stock", d.PerCPU[c], c)
	}
	if len(d.PerCPU) == 0 && d.Stocked > 0 {
		fmt.Fprintf(&b, " + %d pages pre-charged in per-CPU stocks", d.Stocked)
	}
	if d.Batches > 0 {
		plural := "es"
		if d.Batches == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, " (%d batch%s of %d)", d.Batches, plural, d.Batch)
	}
	switch {
	case d.Unaccounted > 0:
		// Charged before tracing began, or moved by other CPUs meanwhile.
		fmt.Fprintf(&b, " + %d pages the trace does not account for", d.Unaccounted)
	case d.Unaccounted < 0:
		fmt.Fprintf(&b, " - %d pages the trace counts in use or stocked beyond the peak (it missed uncharges)", -d.Unaccounted)
	}
	return b.String()
}

package kpeak

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
)

// SampleInterval is how often memory.current is read where the kernel keeps
// no peak file and BPF cannot read the watermark; the lower bound it gives
// says so.
const SampleInterval = 10 * time.Millisecond

// WatermarkSource labels a peak read from the kernel by BPF, not from a file.
const WatermarkSource = "page_counter.watermark read by BPF (no memory.peak before Linux 5.19)"

// ErrNoBPF: the caller turned BPF off (a test switch).
var ErrNoBPF = errors.New("BPF turned off")

// Fallback stands in for memory.peak on cgroup v2 before 5.19: the memcg's
// watermark read by BPF once the run ends, and, should that fail, a lower
// bound sampled while it runs.
type Fallback struct {
	leaf    *cgroup.Leaf
	btf     string
	noBPF   bool
	sampler *cgroup.Sampler
}

// StartFallback begins sampling when the kernel has no peak file for the
// leaf; nil where it has one. noBPF: never read the watermark.
func StartFallback(leaf *cgroup.Leaf, kernelBTF string, noBPF bool) *Fallback {
	if leaf.HasPeakFile() {
		return nil
	}
	return &Fallback{leaf: leaf, btf: kernelBTF, noBPF: noBPF, sampler: leaf.SampleCurrent(SampleInterval)}
}

// LowerBound is the largest usage sampled, where no peak could be read.
type LowerBound struct {
	Bytes  uint64
	Source string
}

// Finish puts the watermark into f as the cgroup's peak; where BPF cannot
// read it, f.Missing says why and the sampled lower bound is returned.
func (p *Fallback) Finish(f *cgroup.Figures) *LowerBound {
	low, samples := p.sampler.Stop()
	err := Watermark(f, p.leaf.Path, p.btf, p.noBPF)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNoBPF) {
		f.Missing = append(f.Missing, NoPeak(err))
	} else {
		f.Missing = append(f.Missing, NoPeak(err)+" (run as root on a kernel with BTF)")
	}
	return &LowerBound{low, fmt.Sprintf("largest of %d samples of memory.current, one every %s: a lower bound, not the kernel's peak", samples, SampleInterval)}
}

// Abort stops sampling.
func (p *Fallback) Abort() {
	if p != nil {
		p.sampler.Stop()
	}
}

// NoPeak says why a figure has no peak, for Figures.Missing.
func NoPeak(err error) string {
	return "cgroup peak: this kernel keeps no memory.peak (Linux 5.19+) and its watermark could not be read with BPF: " + oneLine(err)
}

// Watermark makes the memcg's watermark, read by BPF, the peak of f where
// the kernel has no peak file (cgroup v2 before 5.19). The "cgroup peak"
// entry of f.Missing goes either way: the caller says why on failure.
func Watermark(f *cgroup.Figures, dir, kernelBTF string, noBPF bool) error {
	f.Missing = DropPeakMissing(f.Missing)
	if noBPF {
		return ErrNoBPF
	}
	r, err := Read(dir, kernelBTF)
	if err != nil {
		return err
	}
	f.PeakBytes, f.HavePeak, f.PeakFile = r.WatermarkPages*uint64(os.Getpagesize()), true, WatermarkSource
	return nil
}

// DropPeakMissing is m without its "cgroup peak" entry.
func DropPeakMissing(m []string) []string {
	var out []string
	for _, s := range m {
		if !strings.HasPrefix(s, "cgroup peak:") {
			out = append(out, s)
		}
	}
	return out
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// Live keeps the watermark reader attached while a v2 cgroup without
// memory.peak is sampled.
type Live struct{ r *Reader }

// OpenLive returns nil where the kernel has the peak file; an error
// saying why no peak can be shown where BPF cannot stand in.
func OpenLive(l *cgroup.Leaf, noBPF bool) (*Live, error) {
	if !l.H.V2 || l.HasPeakFile() {
		return nil, nil
	}
	if noBPF {
		return nil, fmt.Errorf("this kernel keeps no memory.peak (Linux 5.19+) and %w", ErrNoBPF)
	}
	r, err := Open(l.Path, "")
	if err != nil {
		return nil, fmt.Errorf("this kernel keeps no memory.peak (Linux 5.19+) and its watermark cannot be read with BPF (%s; run as root)", oneLine(err))
	}
	return &Live{r}, nil
}

// Fill puts the watermark into f as its peak.
func (p *Live) Fill(f *cgroup.Figures) {
	if p == nil {
		return
	}
	if r, err := p.r.Read(); err == nil {
		f.PeakBytes, f.HavePeak, f.PeakFile = r.WatermarkPages*uint64(os.Getpagesize()), true, WatermarkSource
	}
}

// Close detaches the reader.
func (p *Live) Close() {
	if p != nil {
		p.r.Close()
	}
}

package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
)

// sampleInterval is how often memory.current is read where the kernel keeps
// no peak file; the lower bound it gives says so.
const sampleInterval = 10 * time.Millisecond

// watermarkSource labels a peak read from the kernel by BPF, not from a file.
const watermarkSource = "page_counter.watermark read by BPF (no memory.peak before Linux 5.19)"

// peakFallback stands in for memory.peak on cgroup v2 before 5.19: the
// memcg's watermark read by BPF once the run ends, and, should that fail, a
// lower bound sampled while it runs.
type peakFallback struct {
	leaf    *cgroup.Leaf
	btf     string
	sampler *cgroup.Sampler
}

// startPeakFallback begins sampling when the kernel has no peak file for the
// leaf; nil where it has one.
func startPeakFallback(leaf *cgroup.Leaf, kernelBTF string) *peakFallback {
	if leaf.HasPeakFile() {
		return nil
	}
	return &peakFallback{leaf: leaf, btf: kernelBTF, sampler: leaf.SampleCurrent(sampleInterval)}
}

// fill puts the watermark into f as the cgroup's peak, or, without BPF,
// the sampled lower bound into the report, and says why there is no peak.
func (p *peakFallback) fill(f *cgroup.Figures, rep *Report) {
	if p == nil {
		return
	}
	low, samples := p.sampler.Stop()
	err := watermarkPeak(f, p.leaf.Path, p.btf)
	if err == nil {
		return
	}
	f.Missing = append(f.Missing, "cgroup peak: this kernel keeps no memory.peak (Linux 5.19+) and its watermark could not be read with BPF: "+oneLine(err)+" (run as root on a kernel with BTF)")
	rep.PeakLowerBoundBytes = &low
	rep.PeakLowerBoundSource = fmt.Sprintf("largest of %d samples of memory.current, one every %s: a lower bound, not the kernel's peak", samples, sampleInterval)
}

// watermarkPeak makes the memcg's watermark, read by BPF, the peak of f
// where the kernel has no peak file (cgroup v2 before 5.19). The "cgroup
// peak" entry of f.Missing goes either way: the caller says why on failure.
func watermarkPeak(f *cgroup.Figures, dir, kernelBTF string) error {
	f.Missing = dropPeakMissing(f.Missing)
	if os.Getenv("CGPEAK_PEAK_NO_BPF") != "" {
		return fmt.Errorf("BPF turned off by CGPEAK_PEAK_NO_BPF")
	}
	r, err := kpeak.Read(dir, kernelBTF)
	if err != nil {
		return err
	}
	f.PeakBytes, f.HavePeak, f.PeakFile = r.WatermarkPages*uint64(os.Getpagesize()), true, watermarkSource
	return nil
}

func dropPeakMissing(m []string) []string {
	var out []string
	for _, s := range m {
		if !strings.HasPrefix(s, "cgroup peak:") {
			out = append(out, s)
		}
	}
	return out
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func (p *peakFallback) abort() {
	if p != nil {
		p.sampler.Stop()
	}
}

// livePeak keeps the watermark reader attached while cgpeak watch samples a
// v2 cgroup that has no memory.peak.
type livePeak struct{ r *kpeak.Reader }

// openLivePeak returns nil where the kernel has the peak file, and, where
// BPF cannot stand in, says once on stderr that no peak will be shown.
func openLivePeak(l *cgroup.Leaf) *livePeak {
	if !l.H.V2 || l.HasPeakFile() {
		return nil
	}
	if os.Getenv("CGPEAK_PEAK_NO_BPF") != "" {
		fmt.Fprintln(os.Stderr, "cgpeak: this kernel keeps no memory.peak (Linux 5.19+) and BPF is turned off (CGPEAK_PEAK_NO_BPF): no peak shown")
		return nil
	}
	r, err := kpeak.Open(l.Path, "")
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: this kernel keeps no memory.peak (Linux 5.19+) and its watermark cannot be read with BPF (%s; run as root): no peak shown\n", oneLine(err))
		return nil
	}
	return &livePeak{r}
}

func (p *livePeak) fill(f *cgroup.Figures) {
	if p == nil {
		return
	}
	if r, err := p.r.Read(); err == nil {
		f.PeakBytes, f.HavePeak, f.PeakFile = r.WatermarkPages*uint64(os.Getpagesize()), true, watermarkSource
	}
}

func (p *livePeak) close() {
	if p != nil {
		p.r.Close()
	}
}

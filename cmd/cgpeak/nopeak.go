package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
)

// noPeakBPF is the test switch that makes cgpeak behave as where BPF cannot
// read the watermark.
func noPeakBPF() bool { return os.Getenv("CGPEAK_PEAK_NO_BPF") != "" }

// openLivePeak returns nil where the kernel has the peak file, and, where
// BPF cannot stand in, says once on stderr that no peak will be shown.
func openLivePeak(l *cgroup.Leaf) *kpeak.Live {
	live, err := kpeak.OpenLive(l, noPeakBPF())
	if err != nil {
		if errors.Is(err, kpeak.ErrNoBPF) {
			err = fmt.Errorf("%w by CGPEAK_PEAK_NO_BPF", err)
		}
		fmt.Fprintf(os.Stderr, "cgpeak: %v: no peak shown\n", err)
	}
	return live
}

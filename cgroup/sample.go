package cgroup

import (
	"os"
	"path/filepath"
	"sync"
	"time"
)

// HasPeakFile says whether the kernel keeps a peak file for this cgroup:
// memory.max_usage_in_bytes on v1 always, memory.peak on v2 from Linux 5.19.
func (l *Leaf) HasPeakFile() bool {
	name := "memory.peak"
	if !l.H.V2 {
		name = "memory.max_usage_in_bytes"
	}
	_, err := os.Stat(filepath.Join(l.Path, name))
	return err == nil
}

// Sampler polls memory.current (memory.usage_in_bytes on v1) at a fixed
// interval and keeps the largest value read. It sees only the instants it
// samples, so its maximum is a lower bound of the cgroup's peak.
type Sampler struct {
	Interval time.Duration
	stop     chan struct{}
	wg       sync.WaitGroup
	max      uint64
	samples  int
}

// SampleCurrent starts sampling the leaf every interval until Stop.
func (l *Leaf) SampleCurrent(interval time.Duration) *Sampler {
	name := "memory.current"
	if !l.H.V2 {
		name = "memory.usage_in_bytes"
	}
	s := &Sampler{Interval: interval, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := l.readUint(name); err == nil {
				s.samples++
				s.max = max(s.max, v)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the largest value read, in bytes, and
// how many samples were read.
func (s *Sampler) Stop() (maxBytes uint64, samples int) {
	close(s.stop)
	s.wg.Wait()
	return s.max, s.samples
}

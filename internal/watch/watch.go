// Package watch samples one running memory cgroup at an interval until it
// goes away, a stop signal arrives or a duration passes.
package watch

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/report"
)

// Sample is one look at the cgroup; bytes, stable JSON names (docs/json.md).
type Sample struct {
	Schema      int               `json:"schema"`
	Time        string            `json:"time"` // RFC 3339
	Seconds     float64           `json:"seconds"`
	UsageBytes  uint64            `json:"usage_bytes"`
	UsageSource string            `json:"usage_source"`
	PeakBytes   *uint64           `json:"cgroup_peak_bytes,omitempty"`
	PeakSource  string            `json:"cgroup_peak_source,omitempty"`
	LimitBytes  *uint64           `json:"limit_bytes"` // null: no limit
	Stat        map[string]uint64 `json:"memory_stat,omitempty"`
	Events      map[string]uint64 `json:"memory_events,omitempty"`
	Pressure    *cgroup.Pressure  `json:"pressure,omitempty"`
	Ended       string            `json:"ended,omitempty"` // last line: "cgroup removed", "signal" or "duration"
}

// StatKeys are the memory.stat entries a sample keeps, v2 names then v1's.
var StatKeys = []string{"anon", "file", "kernel", "shmem", "sock", "rss", "cache", "mapped_file"}

// ErrUnreadable: the cgroup's memory files failed several reads in a row
// while its directory stayed.
var ErrUnreadable = errors.New("its memory files cannot be read")

// maxIncomplete is how many incomplete reads in a row are waited out: a
// cgroup being removed fails its files before its directory goes.
const maxIncomplete = 5

// Options say how long to follow the cgroup and how often to look.
type Options struct {
	Interval time.Duration
	Duration time.Duration    // 0: until the cgroup goes or a stop signal
	Stop     <-chan os.Signal // the signals that end the watch
	// Fill, if set, completes each sample's figures before they are shown
	// (the watermark read by BPF where v2 has no memory.peak).
	Fill func(*cgroup.Figures)
}

// Follow samples target until it ends and calls show for each sample, then
// end with a last one saying why it ended. show's or end's error stops it
// and is returned; so is ErrUnreadable.
func Follow(target *cgroup.Leaf, o Options, show, end func(Sample) error) error {
	start := time.Now()
	stamp := func(s Sample) Sample {
		s.Schema, s.Seconds, s.Time = report.Schema, time.Since(start).Seconds(), time.Now().UTC().Format(time.RFC3339Nano)
		return s
	}
	var timeout <-chan time.Time
	if o.Duration > 0 {
		timeout = time.After(o.Duration)
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	incomplete := 0
	for {
		s, err := target.Sample()
		switch {
		case errors.Is(err, cgroup.ErrIncomplete):
			if incomplete++; incomplete >= maxIncomplete {
				return fmt.Errorf("%s: %w (%d tries)", target.Path, ErrUnreadable, incomplete)
			}
		case err != nil:
			return end(stamp(Sample{Ended: "cgroup removed"}))
		default:
			incomplete = 0
			if o.Fill != nil {
				o.Fill(&s.Figures)
			}
			if err := show(stamp(fromCgroup(target, s))); err != nil {
				return err
			}
		}
		select {
		case <-o.Stop:
			return end(stamp(Sample{Ended: "signal"}))
		case <-timeout:
			return end(stamp(Sample{Ended: "duration"}))
		case <-tick.C:
		}
	}
}

func fromCgroup(l *cgroup.Leaf, s cgroup.Sample) Sample {
	w := Sample{UsageBytes: s.CurrentBytes, UsageSource: "memory.current", Events: s.Events, Pressure: s.Pressure, Stat: map[string]uint64{}}
	if !l.H.V2 {
		w.UsageSource = "memory.usage_in_bytes"
	}
	if s.HavePeak {
		v := s.PeakBytes
		w.PeakBytes, w.PeakSource = &v, s.PeakFile
	}
	if s.Limited {
		v := s.Limit
		w.LimitBytes = &v
	}
	for _, k := range StatKeys {
		if v, ok := s.Stat[k]; ok {
			w.Stat[k] = v
		}
	}
	return w
}

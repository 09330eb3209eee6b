package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/series"
	"github.com/cgpeak/cgpeak/stats"
)

// shellRuns is how many empty command lines measure the shell's own cost.
const shellRuns = 20

// shellCost is the shell's own start and exit, measured as a run of an
// empty command line, so the series can take it off the commands' times.
type shellCost struct {
	series.ShellCost
}

// measureShell runs `SHELL -c ”` shellRuns times, each in a fresh cgroup
// like the commands; nil and an exit code when it cannot.
func measureShell(h cgroup.Hierarchy, shell string, stdout *os.File, stopped <-chan os.Signal) (*shellCost, int) {
	spec := commandSpec{name: shell + " -c ''", argv: []string{shell, "-c", ""}}
	if code := spec.resolve(); code != 0 {
		return nil, code
	}
	var wall, user, sys []float64
	var peaks []uint64
	for i := 0; i < shellRuns; i++ {
		r, code := measure(h, spec, -1, -1, traceOpts{}, stdout, stopped)
		if r == nil {
			return nil, code
		}
		if r.Interrupted {
			fmt.Fprintf(os.Stderr, "cgpeak: %s: stopped while measuring the shell; no statistics\n", r.InterruptedBy)
			return nil, r.exitCode()
		}
		wall, user, sys = append(wall, r.WallSeconds), append(user, r.UserSeconds), append(sys, r.SysSeconds)
		if r.PeakBytes != nil {
			peaks = append(peaks, *r.PeakBytes)
		}
	}
	c := &shellCost{series.ShellCost{Shell: shell, Runs: shellRuns,
		WallSeconds: stats.Summarize(wall).Mean, UserSeconds: stats.Summarize(user).Mean, SysSeconds: stats.Summarize(sys).Mean}}
	if len(peaks) == shellRuns {
		sort.Slice(peaks, func(i, j int) bool { return peaks[i] < peaks[j] })
		m := peaks[len(peaks)/2]
		c.CgroupPeakBytes = &m
	}
	return c, 0
}

// subtract takes the shell's mean times off a run's, never below zero.
func (c *shellCost) subtract(r *Report) {
	sub := func(v *float64, d float64) { *v = max(0, *v-d) }
	sub(&r.WallSeconds, c.WallSeconds)
	sub(&r.UserSeconds, c.UserSeconds)
	sub(&r.SysSeconds, c.SysSeconds)
}

func (c *shellCost) report() *series.ShellCost {
	if c == nil {
		return nil
	}
	return &c.ShellCost
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/cgpeak/cgpeak/cgroup"
)

// WatchSample is one line of `cgpeak watch --json`; bytes, stable names.
type WatchSample struct {
	Time         string            `json:"time"` // RFC 3339
	Seconds      float64           `json:"seconds"`
	CurrentBytes uint64            `json:"current_bytes"`
	UsageSource  string            `json:"current_source"`
	PeakBytes    *uint64           `json:"peak_bytes,omitempty"`
	PeakSource   string            `json:"peak_source,omitempty"`
	LimitBytes   *uint64           `json:"limit_bytes"` // null: no limit
	Stat         map[string]uint64 `json:"stat,omitempty"`
	Events       map[string]uint64 `json:"events,omitempty"`
	Pressure     *cgroup.Pressure  `json:"pressure,omitempty"`
	Ended        string            `json:"ended,omitempty"` // last line: "cgroup removed", "signal" or "duration"
}

// The memory.stat entries shown, v2 names then v1's.
var watchStat = []string{"anon", "file", "kernel", "shmem", "sock", "rss", "cache", "mapped_file"}

func watchCmd(args []string) int {
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	var tgt targetOpts
	tgt.flags(fs, "watch")
	interval := fs.Duration("interval", time.Second, "time between samples")
	asJSON := fs.Bool("json", false, "one JSON object a sample (JSON Lines)")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage: cgpeak watch (--cgroup PATH | --pid PID) [flags]\n\nFollows one memory cgroup live: memory.current, its peak and limit, the\nmemory.stat breakdown, memory.events and memory pressure. On a terminal, a\nredrawn screen with a history graph; otherwise a line a sample, or JSON Lines.\nEnds when the cgroup goes away, on Ctrl-C or after --duration.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if err := tgt.check("watch", "cgpeak run -- CMD", fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	if *interval < 10*time.Millisecond {
		fmt.Fprintln(os.Stderr, "cgpeak: --interval must be at least 10ms, e.g. 500ms or 2s")
		return exitUsage
	}
	target, err := tgt.resolve()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitCgroup
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var timeout <-chan time.Time
	if tgt.duration > 0 {
		timeout = time.After(tgt.duration)
	}
	var v watchView
	switch {
	case *asJSON:
		v = &jsonView{enc: json.NewEncoder(os.Stdout)}
	case isTerminal(os.Stdout):
		v = &screenView{w: os.Stdout, target: target}
	default:
		v = &lineView{w: os.Stdout}
	}
	live := openLivePeak(target)
	defer live.close()
	start := time.Now()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		s, err := target.Sample()
		if errors.Is(err, cgroup.ErrIncomplete) {
			<-tick.C // going away: the next look will tell
			continue
		}
		if err != nil {
			v.end(WatchSample{Seconds: time.Since(start).Seconds(), Time: time.Now().UTC().Format(time.RFC3339Nano), Ended: "cgroup removed"})
			return 0
		}
		live.fill(&s.Figures)
		v.show(watchSample(target, s, start))
		select {
		case <-sig:
			v.end(WatchSample{Seconds: time.Since(start).Seconds(), Time: time.Now().UTC().Format(time.RFC3339Nano), Ended: "signal"})
			return 0
		case <-timeout:
			v.end(WatchSample{Seconds: time.Since(start).Seconds(), Time: time.Now().UTC().Format(time.RFC3339Nano), Ended: "duration"})
			return 0
		case <-tick.C:
		}
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func watchSample(l *cgroup.Leaf, s cgroup.Sample, start time.Time) WatchSample {
	w := WatchSample{Time: time.Now().UTC().Format(time.RFC3339Nano), Seconds: time.Since(start).Seconds(),
		CurrentBytes: s.CurrentBytes, UsageSource: "memory.current", Events: s.Events, Pressure: s.Pressure, Stat: map[string]uint64{}}
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
	for _, k := range watchStat {
		if v, ok := s.Stat[k]; ok {
			w.Stat[k] = v
		}
	}
	return w
}

type watchView interface {
	show(WatchSample)
	end(WatchSample)
}

type jsonView struct{ enc *json.Encoder }

func (v *jsonView) show(s WatchSample) { v.enc.Encode(s) }
func (v *jsonView) end(s WatchSample)  { v.enc.Encode(s) }

// lineView prints a line a sample: for logs and pipes.
type lineView struct{ w io.Writer }

func (v *lineView) show(s WatchSample) { fmt.Fprintln(v.w, sampleLine(s)) }
func (v *lineView) end(s WatchSample) {
	fmt.Fprintf(v.w, "%8.1fs  watch ended: %s\n", s.Seconds, s.Ended)
}

func sampleLine(s WatchSample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%8.1fs  current %s (%s)", s.Seconds, human(s.CurrentBytes), s.UsageSource)
	if s.PeakBytes != nil {
		fmt.Fprintf(&b, "  peak %s (%s)", human(*s.PeakBytes), s.PeakSource)
	}
	if s.LimitBytes != nil {
		fmt.Fprintf(&b, "  limit %s", human(*s.LimitBytes))
	} else {
		b.WriteString("  limit none")
	}
	for _, k := range watchStat {
		if v, ok := s.Stat[k]; ok {
			fmt.Fprintf(&b, "  %s %s", k, human(v))
		}
	}
	if len(s.Events) > 0 {
		keys := make([]string, 0, len(s.Events))
		for k := range s.Events {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s %d", k, s.Events[k])
		}
	}
	if p := s.Pressure; p != nil {
		fmt.Fprintf(&b, "  pressure some %.2f%% full %.2f%%", p.Some10, p.Full10)
	}
	return b.String()
}

// screenView redraws the terminal with the figures and a history graph of
// memory.current.
type screenView struct {
	w       io.Writer
	target  *cgroup.Leaf
	history []uint64
}

var bars = []rune("▁▂▃▄▅▆▇█")

func (v *screenView) show(s WatchSample) {
	v.history = append(v.history, s.CurrentBytes)
	const width = 60
	if len(v.history) > width {
		v.history = v.history[len(v.history)-width:]
	}
	var top uint64 = 1
	for _, h := range v.history {
		top = max(top, h)
	}
	if s.PeakBytes != nil {
		top = max(top, *s.PeakBytes)
	}
	var g strings.Builder
	for _, h := range v.history {
		g.WriteRune(bars[int(h*uint64(len(bars)-1)/top)])
	}
	var b strings.Builder
	b.WriteString("\033[H\033[2J")
	fmt.Fprintf(&b, "cgpeak watch: %s (cgroup v%d), %.0fs; Ctrl-C to stop\n\n", v.target.Path, map[bool]int{true: 2, false: 1}[v.target.H.V2], s.Seconds)
	fmt.Fprintf(&b, "  current     %10s   (%s)\n", human(s.CurrentBytes), s.UsageSource)
	if s.PeakBytes != nil {
		fmt.Fprintf(&b, "  peak        %10s   (%s: includes per-CPU charge batching)\n", human(*s.PeakBytes), s.PeakSource)
	}
	if s.LimitBytes != nil {
		fmt.Fprintf(&b, "  limit       %10s\n", human(*s.LimitBytes))
	} else {
		fmt.Fprintf(&b, "  limit       %10s\n", "none")
	}
	fmt.Fprintf(&b, "\n  current, last %d samples (top %s):\n  %s\n\n", len(v.history), human(top), g.String())
	for _, k := range watchStat {
		if x, ok := s.Stat[k]; ok {
			fmt.Fprintf(&b, "  %-12s %10s   (memory.stat)\n", k, human(x))
		}
	}
	for _, k := range []string{"high", "max", "oom", "oom_kill"} {
		if x, ok := s.Events[k]; ok {
			fmt.Fprintf(&b, "  %-12s %10d   (memory.events)\n", k, x)
		}
	}
	if p := s.Pressure; p != nil {
		fmt.Fprintf(&b, "  pressure     some %.2f%% full %.2f%% (avg10), some %.2f%% full %.2f%% (avg60)   (memory.pressure)\n", p.Some10, p.Full10, p.Some60, p.Full60)
	}
	fmt.Fprint(v.w, b.String())
}

func (v *screenView) end(s WatchSample) {
	fmt.Fprintf(v.w, "\nwatch ended after %.1fs: %s\n", s.Seconds, s.Ended)
}

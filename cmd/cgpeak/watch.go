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
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/internal/watch"
)

// WatchSample is one line of `cgpeak watch --json`.
type WatchSample = watch.Sample

func watchCmd(args []string) int {
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	var tgt targetOpts
	tgt.flags(fs, "watch")
	interval := fs.Duration("interval", time.Second, "time between samples")
	asJSON := fs.Bool("json", false, "one JSON object a sample (JSON Lines)")
	setUsage(fs, "Usage: cgpeak watch (--cgroup PATH | --pid PID) [flags]\n\nFollows one memory cgroup live: memory.current, its peak and limit, the\nmemory.stat breakdown, memory.events and memory pressure. On a terminal, a\nredrawn screen with a history graph; otherwise a line a sample, or JSON Lines.\nEnds when the cgroup goes away, on Ctrl-C or after --duration.\n\nFlags:\n")
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
	signal.Notify(sig, stopSignals...)
	defer signal.Stop(sig)
	out := &outfile.ErrWriter{W: os.Stdout}
	var v watchView
	switch {
	case *asJSON:
		v = &jsonView{enc: json.NewEncoder(out)}
	case isTerminal(os.Stdout):
		v = &screenView{w: out, target: target}
	default:
		v = &lineView{w: out}
	}
	live := openLivePeak(target)
	defer live.Close()
	err = watch.Follow(target, watch.Options{Interval: *interval, Duration: tgt.duration, Stop: sig, Fill: live.Fill}, func(s WatchSample) error {
		v.show(s)
		return out.Err
	}, func(s WatchSample) error {
		v.end(s)
		return out.Err
	})
	if errors.Is(err, watch.ErrUnreadable) {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitCgroup
	}
	return writeFailed(err, "the samples")
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
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
	fmt.Fprintf(&b, "%8.1fs  current %s (%s)", s.Seconds, human(s.UsageBytes), s.UsageSource)
	if s.PeakBytes != nil {
		fmt.Fprintf(&b, "  peak %s (%s)", human(*s.PeakBytes), s.PeakSource)
	}
	if s.LimitBytes != nil {
		fmt.Fprintf(&b, "  limit %s", human(*s.LimitBytes))
	} else {
		b.WriteString("  limit none")
	}
	for _, k := range watch.StatKeys {
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
	v.history = append(v.history, s.UsageBytes)
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
	fmt.Fprintf(&b, "  current     %10s   (%s)\n", human(s.UsageBytes), s.UsageSource)
	if s.PeakBytes != nil {
		fmt.Fprintf(&b, "  peak        %10s   (%s: includes per-CPU charge batching)\n", human(*s.PeakBytes), s.PeakSource)
	}
	if s.LimitBytes != nil {
		fmt.Fprintf(&b, "  limit       %10s\n", human(*s.LimitBytes))
	} else {
		fmt.Fprintf(&b, "  limit       %10s\n", "none")
	}
	fmt.Fprintf(&b, "\n  current, last %d samples (top %s):\n  %s\n\n", len(v.history), human(top), g.String())
	for _, k := range watch.StatKeys {
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

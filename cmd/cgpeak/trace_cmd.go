package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kpeak"
	"github.com/cgpeak/cgpeak/loader"
)

// TraceCmdReport is `cgpeak trace --json`.
type TraceCmdReport struct {
	Schema        int          `json:"schema"`
	Cgroup        string       `json:"cgroup"`
	CgroupVersion int          `json:"cgroup_version"`
	Seconds       float64      `json:"traced_seconds"`
	Ended         string       `json:"ended"` // "duration", "signal" or "cgroup removed"
	StartBytes    *uint64      `json:"start_usage_bytes,omitempty"`
	PeakBytes     *uint64      `json:"cgroup_peak_bytes,omitempty"`
	PeakSource    string       `json:"cgroup_peak_source,omitempty"`
	CurrentBytes  *uint64      `json:"end_usage_bytes,omitempty"`
	UsageSource   string       `json:"usage_source,omitempty"`
	Trace         *TraceReport `json:"trace"`
	Missing       []string     `json:"missing,omitempty"`
}

func traceCmd(args []string) int {
	fs := pflag.NewFlagSet("trace", pflag.ContinueOnError)
	var o traceOpts
	var tgt targetOpts
	tgt.flags(fs, "trace")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	out := fs.String("output", "", "write the report to FILE instead of stderr")
	fs.BoolVar(&o.charges, "trace-charges", false, "record every charge request with its kernel stack, not only the summary (slower)")
	fs.BoolVar(&o.descend, "descendants", false, "also trace the cgroups below it (a container's or a slice's children; implies --trace-charges)")
	fs.StringVar(&o.output, "trace-output", "", "write the charge trace to FILE as JSON Lines (docs/trace-format.md)")
	fs.StringVar(&o.backend, "backend", "auto", "charge tracing backend: auto, fentry, kprobe or tracepoint")
	fs.StringVar(&o.kernelBTF, "kernel-btf", "", "kernel BTF FILE for kernels without /sys/kernel/btf/vmlinux")
	o.testFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, "Usage: cgpeak trace (--cgroup PATH | --pid PID) [flags]\n\nAttaches the charge tracer to a running memory cgroup (a container, a service)\nuntil Ctrl-C, SIGTERM, --duration or the cgroup's removal, then explains what\nthe trace saw. Needs root (see cgpeak probe).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if err := tgt.check("trace", "cgpeak run --trace -- CMD", fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	o.charges = o.charges || o.descend
	if !validBackend(o.backend) {
		fmt.Fprintf(os.Stderr, "cgpeak: unknown --backend %q: use auto, fentry, kprobe or tracepoint\n", o.backend)
		return exitUsage
	}
	if err := checkDests(dest{"--output", *out}, dest{"--trace-output", o.output}); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	target, err := tgt.resolve()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitCgroup
	}
	// Signals are caught before attaching, so Ctrl-C at any moment detaches.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopSignals...)
	defer signal.Stop(sig)

	rep := &TraceCmdReport{Schema: reportSchema, Cgroup: target.Path, CgroupVersion: 1}
	if target.H.V2 {
		rep.CgroupVersion = 2
	}
	start := target.Read()
	if o.descend && !target.H.V2 {
		if b, err := os.ReadFile(filepath.Join(target.Path, "memory.use_hierarchy")); err == nil && strings.TrimSpace(string(b)) == "0" {
			rep.Missing = append(rep.Missing, "descendants in the cgroup's counter: its memory.use_hierarchy is 0 (cgroup v1 before 5.11), so its counter, watermark and peak leave out what its descendants charge")
		}
	}
	ts, err := startTrace(o, target, nil, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitTrace
	}
	began := time.Now()
	fmt.Fprintf(os.Stderr, "cgpeak: tracing %s (%s backend); stop with Ctrl-C\n", target.Path, ts.Backend())
	v := start.CurrentBytes
	rep.StartBytes = &v
	var timeout <-chan time.Time
	if tgt.duration > 0 {
		timeout = time.After(tgt.duration)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-sig:
			rep.Ended = "signal"
			break wait
		case <-timeout:
			rep.Ended = "duration"
			break wait
		case <-tick.C:
			if _, err := os.Stat(filepath.Join(target.Path, "cgroup.procs")); err != nil {
				rep.Ended = "cgroup removed"
				break wait
			}
		}
	}
	rep.Seconds = time.Since(began).Seconds()
	var f cgroup.Figures
	if rep.Ended == "cgroup removed" {
		rep.Missing = append(rep.Missing, "cgroup figures: the cgroup was removed before tracing ended")
	} else {
		f = target.Read()
		if !f.HavePeak && target.H.V2 {
			if err := kpeak.Watermark(&f, target.Path, o.kernelBTF, noPeakBPF()); err != nil {
				f.Missing = append(f.Missing, kpeak.NoPeak(err))
			}
		}
		rep.Missing = append(rep.Missing, f.Missing...)
		if f.HavePeak {
			v := f.PeakBytes
			rep.PeakBytes, rep.PeakSource = &v, f.PeakFile
		}
		v := f.CurrentBytes
		rep.CurrentBytes = &v
	}
	rep.UsageSource = "memory.current"
	if !target.H.V2 {
		rep.UsageSource = "memory.usage_in_bytes"
	}
	tr, err := ts.stop(f)
	rep.Trace = tr
	var we *writeError
	failed := 0
	switch {
	case errors.As(err, &we):
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		failed = exitWrite
	case err != nil:
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitTrace
	}
	if code := emit(dest{"--output", *out}, os.Stderr, func(w io.Writer) error {
		if *asJSON {
			return writeJSON(w, rep)
		}
		writeTraceCmdText(w, rep)
		return nil
	}); code != 0 {
		return code
	}
	// A signal is how this command is meant to end: it exits 0 then.
	return failed
}

func validBackend(b string) bool { return b == loader.Auto || slices.Contains(loader.Backends(), b) }

func writeTraceCmdText(w io.Writer, r *TraceCmdReport) {
	fmt.Fprintf(w, "cgpeak trace: %s (cgroup v%d)\n", r.Cgroup, r.CgroupVersion)
	fmt.Fprintf(w, "  traced for               %10.3f s     (until %s)\n", r.Seconds, r.Ended)
	if r.StartBytes != nil {
		fmt.Fprintf(w, "  usage when tracing began %10s     (%s; its stocks and history are not in the trace)\n", human(*r.StartBytes), r.UsageSource)
	}
	if r.CurrentBytes != nil {
		fmt.Fprintf(w, "  usage when tracing ended %10s     (%s)\n", human(*r.CurrentBytes), r.UsageSource)
	}
	if r.PeakBytes != nil {
		fmt.Fprintf(w, "  cgroup peak memory       %10s     (%s: since the cgroup was made or last reset, not only while traced)\n", human(*r.PeakBytes), r.PeakSource)
	}
	if r.Trace != nil {
		writeTraceReport(w, r.Trace)
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "  missing: %s\n", m)
	}
}

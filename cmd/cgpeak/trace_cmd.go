package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/session"
	"github.com/cgpeak/cgpeak/loader"
)

// TraceCmdReport is `cgpeak trace --json`.
type TraceCmdReport = session.RunningReport

func traceCmd(args []string) int {
	fs := pflag.NewFlagSet("trace", pflag.ContinueOnError)
	var o traceOpts
	var tgt targetOpts
	tgt.flags(fs, "trace")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	out := fs.String("output", "", "write the report to FILE instead of stderr (- for stdout)")
	fs.BoolVar(&o.charges, "trace-charges", false, "record every charge request with its kernel stack, not only the summary (slower)")
	fs.BoolVar(&o.descend, "descendants", false, "also trace the cgroups below it (a container's or a slice's children; implies --trace-charges)")
	fs.StringVar(&o.output, "trace-output", "", "write the charge trace to FILE, binary unless --trace-format jsonl (docs/trace-format.md)")
	o.formatFlag(fs)
	fs.StringVar(&o.backend, "backend", "auto", "charge tracing backend: auto, fentry, kprobe or tracepoint")
	fs.StringVar(&o.kernelBTF, "kernel-btf", "", "kernel BTF FILE for kernels without /sys/kernel/btf/vmlinux")
	o.testFlags(fs)
	setUsage(fs, "Usage: cgpeak trace (--cgroup PATH | --pid PID) [flags]\n\nAttaches the charge tracer to a running memory cgroup (a container, a service)\nuntil Ctrl-C, SIGTERM, --duration or the cgroup's removal, then explains what\nthe trace saw. Needs root (see cgpeak probe).\n\nFlags:\n")
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
	if err := o.checkFormat(); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
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

	rep, err := session.TraceRunning(target, session.Running{Options: o.session(nil, true), Schema: reportSchema, Duration: tgt.duration, Stop: sig, NoPeakBPF: noPeakBPF(),
		Started: func(backend string) {
			fmt.Fprintf(os.Stderr, "cgpeak: tracing %s (%s backend); stop with Ctrl-C\n", target.Path, backend)
		}})
	failed := 0
	switch {
	case errors.Is(err, session.ErrOutput):
		// The trace was taken but not written: the report still shows.
		fmt.Fprintln(os.Stderr, "cgpeak:", traceAdvice(err))
		failed = exitWrite
	case err != nil:
		fmt.Fprintln(os.Stderr, "cgpeak:", traceAdvice(err))
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

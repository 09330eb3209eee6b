package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/measure"
	"github.com/cgpeak/cgpeak/internal/params"
	"github.com/cgpeak/cgpeak/internal/runner"
	"github.com/cgpeak/cgpeak/internal/units"
)

type runOpts struct {
	json      bool
	output    string
	memoryMax string
	swapMax   string
	quiet     bool
	from      string
	user      string
	trace     traceOpts
	series    seriesOpts
}

// Report is one run's result (internal/measure).
type Report = measure.Report

func runCmd(args []string) int {
	var o runOpts
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.BoolVar(&o.json, "json", false, "print the report as one JSON object")
	fs.StringVarP(&o.output, "output", "o", "", "write the report to FILE, - for stdout (default: stderr for one run, whose command owns stdout; stdout for a series)")
	fs.StringVar(&o.memoryMax, "memory-max", "", "memory limit for the run, e.g. 512M, 1.5G")
	fs.StringVar(&o.swapMax, "swap-max", "", "swap limit for the run (0 turns swap off)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print no report, only errors")
	fs.StringVar(&o.user, "user", "", "run the command as this user (name or uid; root only); under sudo the default is the user who ran sudo, --user root keeps root")
	fs.StringVar(&o.from, "cgroup-from", "auto", "where the run's cgroup comes from: auto, delegated (a cgroup delegated to cgpeak), systemd (a transient scope) or direct")
	fs.BoolVar(&o.trace.on, "trace", false, "trace every memory cgroup charge with eBPF and explain the peak (root; see cgpeak probe)")
	fs.BoolVar(&o.trace.charges, "trace-charges", false, "record every charge request with its kernel stack, not only the summary (implies --trace; slower)")
	fs.BoolVar(&o.trace.descend, "descendants", false, "also trace the cgroups the workload makes below its own (implies --trace-charges)")
	fs.StringVar(&o.trace.output, "trace-output", "", "write the charge trace to FILE, binary unless --trace-format jsonl (implies --trace)")
	o.trace.formatFlag(fs)
	fs.StringVar(&o.trace.backend, "backend", "auto", "charge tracing backend: auto, fentry, kprobe or tracepoint")
	fs.StringVar(&o.trace.kernelBTF, "kernel-btf", "", "kernel BTF FILE for kernels without /sys/kernel/btf/vmlinux")
	o.trace.testFlags(fs)
	o.series.flags(fs)
	setUsage(fs, `Usage: cgpeak run [flags] -- CMD [ARGS...]
       cgpeak run [flags] 'COMMAND LINE' ['COMMAND LINE'...]

Runs CMD in a fresh memory cgroup; when it ends, reports wall/user/sys time,
the cgroup's peak memory (memory.peak on v2, memory.max_usage_in_bytes on v1),
ru_maxrss and memory.stat. Exits with CMD's exit code (128+signal if killed).

After --, the words are one command, run once as they are, as time(1) runs
it: the command keeps cgpeak's stdin and stdout, and the report goes to
stderr (-o FILE to put it elsewhere, -o - on stdout).

Without --, each argument is a command line run by /bin/sh -c, as hyperfine
does: give several to compare them, and --runs N to repeat each (every run in
a fresh cgroup). Such a series (several commands, --runs, --warmup, a hook or
an export) prints its results on stdout, as hyperfine does; every run reads
/dev/null (--input FILE gives it a file) and its output is discarded
(--show-output); -o and the --export-* flags take - for stdout (the text
report then goes to stderr). Ctrl-C reports the runs that finished, marked
interrupted, writes the exports and exits 130.

Flags:
`)
	args, err := params.JoinMultiWord(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: run: %v (see cgpeak run --help)\n", err)
		return exitUsage
	}
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	o.trace.charges = o.trace.charges || o.trace.descend
	o.trace.on = o.trace.on || o.trace.output != "" || o.trace.charges
	if !validBackend(o.trace.backend) {
		fmt.Fprintf(os.Stderr, "cgpeak: unknown --backend %q: use auto, fentry, kprobe or tracepoint\n", o.trace.backend)
		return exitUsage
	}
	if err := o.trace.checkFormat(); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	if code := chooseUser(&o); code != 0 {
		return code
	}
	if !slices.Contains(cgroup.Providers, o.from) {
		fmt.Fprintf(os.Stderr, "cgpeak: unknown --cgroup-from %q: use %s\n", o.from, strings.Join(cgroup.Providers, ", "))
		return exitUsage
	}
	cmdArgs := fs.Args()
	if len(cmdArgs) == 0 {
		fmt.Fprintln(os.Stderr, "cgpeak: no command given: use cgpeak run -- CMD [ARGS...]")
		return exitUsage
	}
	dash := fs.ArgsLenAtDash()
	specs, err := o.series.commandSpecs(cmdArgs, dash)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	if err := o.series.check(); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	mem, err := parseSizeFlag("--memory-max", o.memoryMax)
	if err == nil && mem >= 0 && mem < minMemoryMax {
		err = fmt.Errorf("--memory-max %s is below %s: less than a program needs to start, so the run would be OOM-killed at once; give at least 1M", o.memoryMax, human(minMemoryMax))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	swap, err := parseSizeFlag("--swap-max", o.swapMax)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	for i := range specs {
		if code := specs[i].resolve(); code != 0 {
			return code
		}
	}
	if err := checkDests(dest{"--output", o.output}, dest{"--trace-output", o.trace.output}, dest{"--export-json", o.series.exportJSON},
		dest{"--export-csv", o.series.exportCSV}, dest{"--export-markdown", o.series.exportMarkdown}, dest{"--export-plot", o.series.exportPlot}); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	// Before any cgroup is made: v1 is the machine's, whichever source.
	if mh, err := cgroup.FindMemory(); err == nil && !mh.V2 && swap >= 0 && mem < 0 {
		fmt.Fprintln(os.Stderr, "cgpeak: --swap-max on cgroup v1 needs --memory-max too (v1 limits memory and swap together)")
		return exitUsage
	}
	// Caught from here on, so that a signal before or between runs stops
	// cgpeak cleanly instead of killing it with a cgroup made.
	stopped := make(chan os.Signal, 1)
	signal.Notify(stopped, stopSignals...)
	defer signal.Stop(stopped)
	src, err := cgroup.Acquire(cgroup.Options{From: o.from, Description: "cgpeak run: " + specNames(specs)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitCgroup
	}
	defer closeSource(src)
	h := src.H
	if len(specs) > 1 || o.series.repeated(dash) {
		return runSeries(o, h, specs, mem, swap, stopped, dash == 0)
	}
	rep, ce := measureOne(h, specs[0], mem, swap, o.trace, os.Stdout, stopped)
	if ce != nil {
		if ce.sig != nil {
			fmt.Fprintf(os.Stderr, "cgpeak: %s before the command started\n", signalName(ce.sig))
		}
		return ce.code
	}
	if !o.quiet {
		if code := emit(dest{"--output", o.output}, os.Stderr, func(w io.Writer) error {
			if o.json {
				return writeJSON(w, rep)
			}
			writeText(w, rep)
			return nil
		}); code != 0 {
			return code
		}
	}
	return exitCodeOf(rep)
}

// stopSignals end cgpeak: each kills the workload and removes its cgroup
// first, and cgpeak exits 128+signal.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE}

// signalCode is cgpeak's exit code when sig ended it.
func signalCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

// exitCodeOf is cgpeak's code after a run: 128+signal when a signal to cgpeak
// ended it, exitWrite when a file it was to write could not be, else the
// command's own.
func exitCodeOf(r *Report) int {
	switch {
	case r.StoppedBy != nil:
		return signalCode(r.StoppedBy)
	case r.WriteFailed:
		return exitWrite
	}
	return r.ExitCode
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// measureOne runs one command once in a fresh leaf cgroup (internal/measure).
// On failure it says why on stderr and returns a nil report and cgpeak's
// exit code, with the signal if one stopped cgpeak before the command ran.
func measureOne(h cgroup.Hierarchy, spec commandSpec, mem, swap int64, topts traceOpts, stdout *os.File, stopped <-chan os.Signal) (*Report, *codeError) {
	o := measure.Options{Schema: reportSchema, Memory: mem, Swap: swap, Stdout: stdout, Stdin: spec.stdin, Stop: stopped, As: topts.as, WaitAll: spec.waitAll,
		KernelBTF: topts.kernelBTF, NoPeakBPF: noPeakBPF(), TraceError: traceAdvice}
	if topts.on {
		so := topts.session(spec.argv, false)
		o.Trace = &so
	}
	rep, err := measure.Once(h, spec.path, spec.argv, o, func(err error) { fmt.Fprintln(os.Stderr, "cgpeak:", err) })
	var me *measure.Error
	if errors.As(err, &me) {
		fail := func(code int) (*Report, *codeError) { return nil, &codeError{code: code} }
		switch me.Stage {
		case measure.StageStopped:
			return nil, &codeError{code: signalCode(me.Signal), sig: me.Signal}
		case measure.StageInput:
			fmt.Fprintf(os.Stderr, "cgpeak: --input: %v\n", me)
			return fail(exitUsage)
		}
		fmt.Fprintln(os.Stderr, "cgpeak:", me)
		switch me.Stage {
		case measure.StageCgroup:
			return fail(exitCgroup)
		case measure.StageTrace:
			return fail(exitTrace)
		case measure.StageExec:
			return fail(me.Code)
		}
		return fail(exitInternal)
	}
	if rep.TraceErr != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", rep.TraceErr)
	}
	return rep, nil
}

// minMemoryMax is the smallest --memory-max taken: below it even a static
// program that touches nothing is OOM-killed while it starts.
const minMemoryMax = 1 << 20

func parseSizeFlag(name, v string) (int64, error) {
	if v == "" {
		return -1, nil
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// statKeys are the memory.stat entries shown in the text report, v2 then v1 names.
var statKeys = []string{"anon", "file", "kernel", "kernel_stack", "pagetables", "slab", "shmem", "sock", "rss", "cache", "mapped_file"}

func writeText(w io.Writer, r *Report) {
	fmt.Fprintf(w, "cgpeak: %s\n", shellJoin(r.Command))
	if r.CgroupFrom != "" {
		fmt.Fprintf(w, "  cgroup from: %s\n", r.CgroupFrom)
	}
	if r.RanAs != "" {
		fmt.Fprintf(w, "  ran as: %s\n", r.RanAs)
	}
	fmt.Fprintf(w, "  wall time                %10s     (%s)\n", units.Seconds(r.WallSeconds), r.WallSource)
	fmt.Fprintf(w, "  user time                %10s     (getrusage of the command's tree)\n", units.Seconds(r.UserSeconds))
	fmt.Fprintf(w, "  sys time                 %10s     (getrusage)\n", units.Seconds(r.SysSeconds))
	if r.PeakBytes != nil {
		fmt.Fprintf(w, "  cgroup peak memory       %10s     (%s, cgroup v%d; includes per-CPU charge batching)\n", human(*r.PeakBytes), r.PeakSource, r.CgroupVersion)
	}
	if r.PeakLowerBoundBytes != nil {
		fmt.Fprintf(w, "  cgroup peak, lower bound %10s     (%s)\n", human(*r.PeakLowerBoundBytes), r.PeakLowerBoundSource)
	}
	if r.SwapPeakBytes != nil {
		label := "swap peak               "
		if r.CgroupVersion == 1 {
			label = "memory+swap peak        "
		}
		fmt.Fprintf(w, "  %s %10s     (%s)\n", label, human(*r.SwapPeakBytes), r.SwapSource)
	}
	fmt.Fprintf(w, "  peak RSS, one process    %10s     (ru_maxrss: the largest single process, not the tree)\n", human(r.MaxRSSBytes))
	if len(r.Stat) > 0 {
		var parts []string
		for _, k := range statKeys {
			if v, ok := r.Stat[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %s", k, human(v)))
			}
		}
		fmt.Fprintf(w, "  at exit (memory.stat)    %s\n", strings.Join(parts, ", "))
	}
	if len(r.Events) > 0 {
		keys := make([]string, 0, len(r.Events))
		for k := range r.Events {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Events[k]))
		}
		fmt.Fprintf(w, "  memory events            %s\n", strings.Join(parts, ", "))
	}
	writeLeftBehind(w, r.LeftBehind)
	if r.Trace != nil {
		writeTraceReport(w, r.Trace)
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "  missing: %s\n", m)
	}
	status := fmt.Sprintf("code %d", r.ExitCode)
	if r.Signal != "" {
		status = fmt.Sprintf("killed by signal %s, exit code %d", r.Signal, r.ExitCode)
	}
	kills := r.Events["oom_kill"]
	switch {
	case r.Interrupted:
		fmt.Fprintf(w, "  exit                     cgpeak got %s and killed the workload (its status: %s); these are the figures so far; cgpeak exits %d\n", r.InterruptedBy, status, exitCodeOf(r))
	case r.OOMKilled && r.Signal == syscall.SIGKILL.String():
		fmt.Fprintf(w, "  exit                     killed by the OOM killer (memory.events oom_kill %d), exit code %d\n", kills, r.ExitCode)
	case r.OOMKilled:
		fmt.Fprintf(w, "  exit                     %s; the OOM killer ended %d of its processes (memory.events oom_kill)\n", status, kills)
	default:
		fmt.Fprintf(w, "  exit                     %s\n", status)
	}
}

func signalName(sig os.Signal) string { return runner.SignalName(sig) }

// writeLeftBehind names the processes the command left in its cgroup: their
// memory until then is in the figures, and by default cgpeak killed them.
func writeLeftBehind(w io.Writer, left []runner.Process) {
	if len(left) == 0 {
		return
	}
	names := make([]string, len(left))
	for i, p := range left {
		names[i] = fmt.Sprintf("%s (pid %d)", p.Comm, p.PID)
	}
	what := "killed at the command's exit (--wait-all waits for them)"
	switch left[0].Done {
	case "waited for":
		what = "waited for (--wait-all): the times run to the last one's exit"
	case "killed by a signal to cgpeak":
		what = "waited for (--wait-all), then killed by a signal to cgpeak"
	}
	n := "process"
	if len(left) > 1 {
		n = "processes"
	}
	fmt.Fprintf(w, "  left behind              %d %s: %s; %s; their memory until then is in the figures\n", len(left), n, strings.Join(names, ", "), what)
}

// shellJoin writes a command as a shell would need it typed, so that the
// echo of `sh -c 'a | b'` is not read as a pipeline of cgpeak's.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

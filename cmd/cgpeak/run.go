package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/launcher"
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

// Report is one run's result; JSON field names are stable.
type Report struct {
	Command       []string          `json:"command"`
	Cgroup        string            `json:"cgroup"`
	CgroupFrom    string            `json:"cgroup_from,omitempty"`
	RanAs         string            `json:"ran_as,omitempty"`
	CgroupVersion int               `json:"cgroup_version"`
	WallSeconds   float64           `json:"wall_seconds"`
	UserSeconds   float64           `json:"user_seconds"`
	SysSeconds    float64           `json:"sys_seconds"`
	PeakBytes     *uint64           `json:"cgroup_peak_bytes,omitempty"`
	PeakSource    string            `json:"cgroup_peak_source,omitempty"`
	SwapPeakBytes *uint64           `json:"swap_peak_bytes,omitempty"`
	SwapSource    string            `json:"swap_peak_source,omitempty"`
	MaxRSSBytes   uint64            `json:"ru_maxrss_bytes"`
	Stat          map[string]uint64 `json:"memory_stat,omitempty"`
	Events        map[string]uint64 `json:"memory_events,omitempty"`
	ExitCode      int               `json:"exit_code"`
	Signal        string            `json:"signal,omitempty"`
	OOMKilled     bool              `json:"oom_killed"`
	Interrupted   bool              `json:"interrupted,omitempty"`
	Missing       []string          `json:"missing,omitempty"`
	Trace         *TraceReport      `json:"trace,omitempty"`

	// Where the kernel keeps no peak and BPF cannot read it: the most
	// memory.current was seen at, a lower bound.
	PeakLowerBoundBytes  *uint64 `json:"cgroup_peak_lower_bound_bytes,omitempty"`
	PeakLowerBoundSource string  `json:"cgroup_peak_lower_bound_source,omitempty"`
}

func runCmd(args []string) int {
	var o runOpts
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.BoolVar(&o.json, "json", false, "print the report as one JSON object")
	fs.StringVarP(&o.output, "output", "o", "", "write the report to FILE (default: stderr)")
	fs.StringVar(&o.memoryMax, "memory-max", "", "memory limit for the run, e.g. 512M, 1.5G")
	fs.StringVar(&o.swapMax, "swap-max", "", "swap limit for the run (0 turns swap off)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print no report, only errors")
	fs.StringVar(&o.user, "user", "", "run the command as this user (name or uid; root only); under sudo the default is the user who ran sudo, --user root keeps root")
	fs.StringVar(&o.from, "cgroup-from", "auto", "where the run's cgroup comes from: auto, delegated (a cgroup delegated to cgpeak), systemd (a transient scope) or direct")
	fs.BoolVar(&o.trace.on, "trace", false, "trace every memory cgroup charge with eBPF and explain the peak (root; see cgpeak probe)")
	fs.BoolVar(&o.trace.charges, "trace-charges", false, "record every charge request with its kernel stack, not only the summary (implies --trace; slower)")
	fs.BoolVar(&o.trace.descend, "descendants", false, "also trace the cgroups the workload makes below its own (implies --trace-charges)")
	fs.StringVar(&o.trace.output, "trace-output", "", "write the charge trace to FILE as JSON Lines (implies --trace)")
	fs.StringVar(&o.trace.backend, "backend", "auto", "charge tracing backend: auto, fentry, kprobe or tracepoint")
	fs.StringVar(&o.trace.kernelBTF, "kernel-btf", "", "kernel BTF FILE for kernels without /sys/kernel/btf/vmlinux")
	o.trace.testFlags(fs)
	o.series.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, `Usage: cgpeak run [flags] -- CMD [ARGS...]
       cgpeak run [flags] 'COMMAND LINE' ['COMMAND LINE'...]

Runs CMD in a fresh memory cgroup; when it ends, reports wall/user/sys time,
the cgroup's peak memory (memory.peak on v2, memory.max_usage_in_bytes on v1),
ru_maxrss and memory.stat. Exits with CMD's exit code (128+signal if killed).

After --, the words are one command, run as they are. Without --, each
argument is a command line run by /bin/sh -c, as hyperfine does: give several
to compare them, and --runs N to repeat each (every run in a fresh cgroup).

Flags:
`)
		fs.PrintDefaults()
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
	specs, err := commandSpecs(cmdArgs, fs.ArgsLenAtDash())
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	if err := o.series.check(); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	mem, err := parseSizeFlag("--memory-max", o.memoryMax)
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
	// Caught from here on, so that Ctrl-C before or between runs stops
	// cgpeak cleanly instead of killing it with a cgroup made.
	stopped := make(chan os.Signal, 1)
	signal.Notify(stopped, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stopped)
	src, err := cgroup.Acquire(cgroup.Options{From: o.from, Description: "cgpeak run: " + specNames(specs)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitCgroup
	}
	defer closeSource(src)
	h := src.H
	if len(specs) > 1 || o.series.repeated() {
		return runSeries(o, h, specs, mem, swap, stopped)
	}
	// The report file is opened once the first run has its cgroup, so a
	// failed start leaves no empty report behind.
	var out io.Writer = os.Stderr
	var outFile *os.File
	defer func() {
		if outFile != nil {
			outFile.Close()
		}
	}()
	opened := func() error {
		if o.output == "" {
			return nil
		}
		f, err := os.Create(o.output)
		if err != nil {
			return fmt.Errorf("opening --output: %w", err)
		}
		outFile, out = f, f
		return nil
	}
	rep, code := measure(h, specs[0], mem, swap, o.trace, os.Stdout, opened, stopped)
	if rep == nil {
		return code
	}
	if !o.quiet {
		if o.json {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			writeText(out, rep)
		}
	}
	return rep.ExitCode
}

// measure runs one command once in a fresh leaf cgroup, removed after. On
// failure it says why on stderr and returns a nil report and cgpeak's exit
// code. ready runs once the leaf exists (and may fail the run).
//
// A signal on stopped before the command starts ends the run there (exit
// 130); once it runs, execute kills it and reports the figures so far.
func measure(h cgroup.Hierarchy, spec commandSpec, mem, swap int64, topts traceOpts, stdout *os.File, ready func() error, stopped <-chan os.Signal) (*Report, int) {
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return nil, exitCgroup
	}
	defer func() {
		if err := leaf.Remove(); err != nil {
			fmt.Fprintln(os.Stderr, "cgpeak:", err)
		}
	}()
	if err := leaf.SetLimits(mem, swap); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return nil, exitCgroup
	}
	if ready != nil {
		if err := ready(); err != nil {
			fmt.Fprintln(os.Stderr, "cgpeak:", err)
			return nil, exitUsage
		}
	}
	select {
	case <-stopped:
		fmt.Fprintln(os.Stderr, "cgpeak: interrupted before the command started")
		return nil, 130
	default:
	}
	rep, err := execute(leaf, spec.path, spec.argv, topts, stdout, stopped)
	var te *traceStartError
	if errors.As(err, &te) {
		fmt.Fprintln(os.Stderr, "cgpeak:", te.err)
		return nil, exitTrace
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		_ = leaf.Kill()
		return nil, exitInternal
	}
	return rep, 0
}

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

// execute starts the command inside the leaf, waits for it (killing the whole
// tree on SIGINT/SIGTERM) and reads the figures before the leaf goes away.
// stop delivers SIGINT and SIGTERM (caught by the caller since before the
// cgroup was made); nil to catch them here.
func execute(leaf *cgroup.Leaf, path string, args []string, topts traceOpts, stdout *os.File, stop <-chan os.Signal) (*Report, error) {
	var cg *os.File
	var err error
	if leaf.H.V2 {
		cg, err = os.Open(leaf.Path)
	} else {
		cg, err = os.OpenFile(filepath.Join(leaf.Path, "cgroup.procs"), os.O_WRONLY, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the run's cgroup: %w", err)
	}
	defer cg.Close()

	var l *launcher.Launch
	var cmd *exec.Cmd
	var missing []string
	if launcher.Available() {
		if l, err = launcher.Command(leaf.H.V2, cg, path, args); err != nil {
			return nil, err
		}
		cmd = l.Cmd
	} else {
		// No launcher for this architecture: start the command from cgpeak
		// itself, and say that ru_maxrss is inflated by it.
		missing = append(missing, "exact ru_maxrss: no small launcher for "+runtime.GOARCH+"; ru_maxrss includes cgpeak's own size at exec")
		if leaf.H.V2 {
			cmd = exec.Command(path, args[1:]...)
			cmd.Args[0] = args[0]
			// CLONE_INTO_CGROUP: the child is born in the leaf, so no page is charged elsewhere.
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		} else {
			self, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("finding cgpeak's own binary: %w", err)
			}
			cmd = exec.Command(self, append([]string{shimArg, path}, args...)...)
			cmd.ExtraFiles = []*os.File{cg}
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, os.Stderr
	runAs(topts.as, l, cmd)

	sigs := stop
	if sigs == nil {
		c := make(chan os.Signal, 2)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(c)
		sigs = c
	}

	var ts *traceSession
	if topts.on {
		if ts, err = startTrace(topts, leaf, args, false); err != nil {
			return nil, &traceStartError{err}
		}
	}
	start := time.Now()
	if l != nil {
		err = l.Start()
	} else {
		err = cmd.Start()
	}
	if err != nil {
		if ts != nil {
			ts.abort()
		}
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	pf := startPeakFallback(leaf, topts.kernelBTF)
	type end struct {
		ws  syscall.WaitStatus
		ru  syscall.Rusage
		err error
	}
	done := make(chan end, 1)
	go func() {
		if l != nil {
			r, err := l.Wait()
			done <- end{r.Status, r.Rusage, err}
			return
		}
		err := cmd.Wait()
		var e end
		if cmd.ProcessState != nil {
			e.ws, _ = cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				e.ru = *ru
			}
		} else {
			e.err = err
		}
		done <- e
	}()
	interrupted := false
	var e end
loop:
	for {
		select {
		case e = <-done:
			break loop
		case <-sigs:
			interrupted = true
			_ = leaf.Kill()
		}
	}
	wall := time.Since(start)
	// Children the command left behind still count: end them before reading.
	_ = leaf.Kill()
	if e.err != nil {
		pf.abort()
		if ts != nil {
			ts.abort()
		}
		return nil, e.err
	}

	rep := &Report{
		Command:       args,
		Cgroup:        leaf.Path,
		CgroupFrom:    leaf.H.From,
		RanAs:         ranAs(topts.as),
		CgroupVersion: 1,
		WallSeconds:   wall.Seconds(),
		UserSeconds:   tv(e.ru.Utime),
		SysSeconds:    tv(e.ru.Stime),
		MaxRSSBytes:   uint64(e.ru.Maxrss) * 1024,
		Interrupted:   interrupted,
	}
	if leaf.H.V2 {
		rep.CgroupVersion = 2
	}
	switch {
	case e.ws.Exited():
		rep.ExitCode = e.ws.ExitStatus()
	case e.ws.Signaled():
		rep.Signal = e.ws.Signal().String()
		rep.ExitCode = 128 + int(e.ws.Signal())
	}
	f := leaf.Read()
	pf.fill(&f, rep)
	if f.HavePeak {
		v := f.PeakBytes
		rep.PeakBytes, rep.PeakSource = &v, f.PeakFile
	}
	if f.HaveSwapPeak {
		v := f.SwapPeakBytes
		rep.SwapPeakBytes, rep.SwapSource = &v, f.SwapPeakFile
	}
	rep.Stat, rep.Events = f.Stat, f.Events
	rep.Missing = append(missing, f.Missing...)
	rep.OOMKilled = f.Events["oom_kill"] > 0
	if ts != nil {
		if rep.Trace, err = ts.stop(f); err != nil {
			rep.Missing = append(rep.Missing, "part of the charge trace: "+err.Error())
		}
	}
	return rep, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// statKeys are the memory.stat entries shown in the text report, v2 then v1 names.
var statKeys = []string{"anon", "file", "kernel", "kernel_stack", "pagetables", "slab", "shmem", "sock", "rss", "cache", "mapped_file"}

func writeText(w io.Writer, r *Report) {
	fmt.Fprintf(w, "cgpeak: %s\n", strings.Join(r.Command, " "))
	if r.CgroupFrom != "" {
		fmt.Fprintf(w, "  cgroup from: %s\n", r.CgroupFrom)
	}
	if r.RanAs != "" {
		fmt.Fprintf(w, "  ran as: %s\n", r.RanAs)
	}
	fmt.Fprintf(w, "  wall time                %10.3f s\n", r.WallSeconds)
	fmt.Fprintf(w, "  user time                %10.3f s   (getrusage of the command's tree)\n", r.UserSeconds)
	fmt.Fprintf(w, "  sys time                 %10.3f s   (getrusage)\n", r.SysSeconds)
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
	if r.Trace != nil {
		writeTraceText(w, r.Trace)
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "  missing: %s\n", m)
	}
	switch {
	case r.OOMKilled:
		fmt.Fprintf(w, "  exit                     killed by the OOM killer (memory.events oom_kill), exit code %d\n", r.ExitCode)
	case r.Signal != "":
		fmt.Fprintf(w, "  exit                     killed by signal %s, exit code %d\n", r.Signal, r.ExitCode)
	default:
		fmt.Fprintf(w, "  exit                     code %d\n", r.ExitCode)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "  interrupted: cgpeak was signalled; the workload was killed and these are the figures so far")
	}
}

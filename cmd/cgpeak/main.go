// Command cgpeak runs a command in its own memory cgroup and reports its time
// and its peak memory as the kernel accounts it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/exitcode"
	"github.com/cgpeak/cgpeak/internal/report"
	"github.com/cgpeak/cgpeak/internal/runner"
)

var version = "0.1.0-dev"

// reportSchema versions the JSON reports of every command (docs/json.md).
const reportSchema = report.Schema

// Exit codes of cgpeak's own failures (internal/exitcode: 120-125, apart
// from the codes a command gives); a finished workload's code passes through.
const (
	exitUsage    = exitcode.Usage
	exitCgroup   = exitcode.Cgroup
	exitTrace    = exitcode.Trace // charge tracing asked for but not possible here
	exitBadTrace = exitcode.BadTrace
	exitNoStacks = exitcode.NoStacks
	exitWrite    = exitcode.Write // a report, export, trace or plot could not be written
	exitNotFound = runner.ExitNotFound
	exitNoExec   = runner.ExitNoExec
	exitInternal = exitcode.Internal
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == runner.ShimArg {
		runner.Shim(os.Args[2:])
	}
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		// Not asked for: an error, so on stderr.
		usage(os.Stderr)
		return exitUsage
	}
	if cmd, ok := subcommands[args[0]]; ok {
		return cmd(args[1:])
	}
	switch args[0] {
	case "--version", "version":
		fmt.Println(versionLine())
		return 0
	case "-h", "--help":
		usage(os.Stdout)
		return 0
	case "help":
		return helpCmd(args[1:])
	}
	fmt.Fprintf(os.Stderr, "cgpeak: unknown command %q: use \"cgpeak run -- CMD\" (see cgpeak --help)\n", args[0])
	return exitUsage
}

// subcommands are cgpeak's commands, for `cgpeak help CMD`.
var subcommands = map[string]func([]string) int{"run": runCmd, "trace": traceCmd, "watch": watchCmd, "explain": explainCmd, "convert": convertCmd, "probe": probeCmd}

// helpCmd is `cgpeak help [CMD]`: the command's --help, on stdout.
func helpCmd(args []string) int {
	if len(args) == 0 {
		usage(os.Stdout)
		return 0
	}
	cmd, ok := subcommands[args[0]]
	if !ok || len(args) > 1 {
		fmt.Fprintf(os.Stderr, "cgpeak: help %s: no such command: use cgpeak help run, trace, watch, explain, convert or probe\n", strings.Join(args, " "))
		return exitUsage
	}
	return cmd([]string{"--help"})
}

func usage(w io.Writer) {
	fmt.Fprint(w, `cgpeak: a command's time and peak memory, as the kernel accounts it

Usage:
  cgpeak run [flags] -- CMD [ARGS...]   run CMD in a fresh memory cgroup and report
                                        (--trace: record every charge with eBPF, explain the peak)
  cgpeak trace --cgroup PATH | --pid PID [--duration D]
                                        trace a running cgroup's charges until Ctrl-C
  cgpeak watch --cgroup PATH | --pid PID
                                        follow a cgroup's memory live
  cgpeak explain TRACE                  replay a saved trace (binary or JSON Lines) offline
                                        and explain the peak (--top N, --pprof FILE, --folded FILE,
                                        --flame FILE: which functions charged the pages, from --trace-charges)
  cgpeak convert [--to jsonl|binary] IN OUT
                                        rewrite a trace in the other form (JSON Lines to grep)
  cgpeak probe                          what this kernel lets cgpeak measure, and why
  cgpeak --version

The report of one run goes to stderr (the command owns stdout, as with
time(1)), or to -o FILE (-o - for stdout); a series' results go to stdout,
as hyperfine prints them. Help is on stdout.

Run "cgpeak run --help" (or cgpeak help CMD) for the flags.

`)
	exitcode.WriteHelp(w)
}

// setUsage makes fs's --help print head, the flags and the exit codes on
// stdout: help is asked for, so it goes where a pager or grep reads it.
// Bad flags are named on stderr by parseFlags.
func setUsage(fs *pflag.FlagSet, head string) {
	fs.SetOutput(os.Stdout)
	fs.Usage = func() {
		fmt.Fprint(os.Stdout, head)
		fs.PrintDefaults()
		fmt.Fprintln(os.Stdout)
		exitcode.WriteHelp(os.Stdout)
	}
}

// Flags are parsed by pflag, not cobra: five subcommands with hand-written
// help need no command tree, and cobra would bring its own usage and error
// printing to undo. Completions and man pages may be the reason to move.

// parseFlags parses a subcommand's flags; stop says to exit with code: 0
// after --help, exitUsage on a bad flag, named in one line (pflag does not
// print it when it continues on error).
func parseFlags(fs *pflag.FlagSet, args []string) (code int, stop bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, pflag.ErrHelp):
		return 0, true
	}
	fmt.Fprintf(os.Stderr, "cgpeak: %s: %v (see cgpeak %s --help)\n", fs.Name(), err, fs.Name())
	return exitUsage, true
}

// versionLine is cgpeak's version with what a bug report needs: the commit
// it was built from (and whether the tree had changes), the Go toolchain,
// and the cilium/ebpf library that loads its programs, from the build
// information Go embeds.
func versionLine() string {
	line := "cgpeak " + version
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return line
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+changes"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown (built without version control information)"
	}
	ebpf := "unknown"
	for _, d := range bi.Deps {
		if d.Path == "github.com/cilium/ebpf" {
			ebpf = d.Version
		}
	}
	return fmt.Sprintf("%s (commit %s%s, %s, cilium/ebpf %s)", line, rev, dirty, bi.GoVersion, ebpf)
}

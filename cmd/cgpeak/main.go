// Command cgpeak runs a command in its own memory cgroup and reports its time
// and its peak memory as the kernel accounts it.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/report"
	"github.com/cgpeak/cgpeak/internal/runner"
)

var version = "0.1.0-dev"

// reportSchema versions the JSON reports of every command (docs/json.md).
const reportSchema = report.Schema

// Exit codes of cgpeak's own failures; a finished workload's code passes through.
const (
	exitUsage    = 2
	exitCgroup   = 3
	exitTrace    = 4 // charge tracing asked for but not possible here
	exitBadTrace = 5 // a trace file that cannot be read
	exitWrite    = 6 // a report, export, trace or plot could not be written
	exitNotFound = runner.ExitNotFound
	exitNoExec   = runner.ExitNoExec
	exitInternal = 125
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == runner.ShimArg {
		runner.Shim(os.Args[2:])
	}
	os.Exit(dispatch(os.Args[1:]))
}

func dispatch(args []string) int {
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:])
	case "trace":
		return traceCmd(args[1:])
	case "watch":
		return watchCmd(args[1:])
	case "explain":
		return explainCmd(args[1:])
	case "convert":
		return convertCmd(args[1:])
	case "probe":
		return probeCmd(args[1:])
	case "--version", "version":
		fmt.Println("cgpeak", version)
		return 0
	case "-h", "--help", "help":
		usage()
		return 0
	}
	fmt.Fprintf(os.Stderr, "cgpeak: unknown command %q: use \"cgpeak run -- CMD\" (see cgpeak --help)\n", args[0])
	return exitUsage
}

func usage() {
	fmt.Fprint(os.Stderr, `cgpeak: a command's time and peak memory, as the kernel accounts it

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

Run "cgpeak run --help" for the flags.
`)
}

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

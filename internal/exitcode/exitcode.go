// Package exitcode is cgpeak's own exit codes: their numbers, what each
// means, and the table printed in --help and kept in the README. They sit
// at 119-125, below 126/127 (found but cannot run, not found) and 128+N (a
// signal), as GNU time, env and timeout keep their own failures at 125-127:
// a script can tell cgpeak's failure from the command's own code, which
// passes through, unless the command itself exits 120-125.
package exitcode

import (
	"fmt"
	"io"
)

// cgpeak's own failures, one code per kind.
const (
	// NoStacks: explain was asked for a profile (--top, --pprof, --folded,
	// --flame) of a trace that has no charge requests to attribute (a
	// summary trace, or any trace of the tracepoint backend, which sees
	// statistic updates): the trace is fine, it cannot answer that.
	NoStacks = 119
	// Usage: a bad flag or argument, including a file to write that cannot
	// be written (checked before any run).
	Usage = 120
	// Cgroup: no cgroup can be made, or the cgroup or pid given to trace or
	// watch does not exist or has no memory controller.
	Cgroup = 121
	// Trace: charge tracing is not possible here.
	Trace = 122
	// Write: a report, export, trace or plot could not be written once the
	// work was done.
	Write = 123
	// BadTrace: a trace file that cannot be read. Only explain gives it,
	// which never passes a command's code on: 124, what timeout(1) exits
	// when its command timed out, stays unambiguous in cgpeak run.
	BadTrace = 124
	// Internal: cgpeak itself failed (a bug, or the system refused
	// something cgpeak cannot do without).
	Internal = 125
	// NoExec and NotFound are the shell's: the command was found but cannot
	// be executed, or was not found (or its #! interpreter is missing).
	NoExec   = 126
	NotFound = 127
)

// Code is one exit code and when cgpeak gives it.
type Code struct {
	Code    string
	Meaning string
}

// Table lists every exit code of cgpeak, in order, as --help prints it and
// the README's table gives it (a test keeps the two the same).
var Table = []Code{
	{"0", "the command (every run of a series) exited 0; trace and watch stopped by a signal or --duration"},
	{fmt.Sprint(NoStacks), "explain: the trace has no charge requests to attribute by stack (a summary trace, or one of the tracepoint backend): record with --trace-charges where fentry or kprobes work"},
	{fmt.Sprint(Usage), "bad usage: a flag, an argument, a file to write that cannot be (checked before any run)"},
	{fmt.Sprint(Cgroup), "no cgroup can be made; for trace and watch, the cgroup or pid does not exist or has no memory controller"},
	{fmt.Sprint(Trace), "charge tracing is not possible here (no root, no BTF, no kprobes, fentry or memcg tracepoints)"},
	{fmt.Sprint(Write), "a report, export, trace or plot could not be written once the work was done (the figures go to stderr)"},
	{fmt.Sprint(BadTrace), "explain: a trace file that cannot be read"},
	{fmt.Sprint(Internal), "an internal error of cgpeak"},
	{fmt.Sprint(NoExec), "the command was found but cannot be executed"},
	{fmt.Sprint(NotFound), "the command was not found, or its #! interpreter is missing"},
	{"128+N", "signal N: the command was killed by it, or it stopped cgpeak (130: Ctrl-C; a series still reports its finished runs)"},
	{"other", "the command's own exit code, passed through (a series without -i: the first failing run's)"},
}

// WriteHelp prints the table for --help.
func WriteHelp(w io.Writer) {
	fmt.Fprintln(w, "Exit codes (a command's own code passes through; cgpeak's failures say so in a line on stderr):")
	for _, c := range Table {
		fmt.Fprintf(w, "  %-6s %s\n", c.Code, c.Meaning)
	}
}

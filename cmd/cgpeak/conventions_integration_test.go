package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/exitcode"
	"github.com/cgpeak/cgpeak/internal/outfile/outfiletest"
)

// The conventions users bring from hyperfine and GNU time (issue: where
// output goes, stdin in a series, Ctrl-C in a series, exit codes).

// run runs cgpeak with args, stdin from in ("" for none), killed after
// limit so that a regression fails rather than hangs; it returns stdout,
// stderr and the exit code.
func runCgpeak(t *testing.T, cgpeak string, in string, limit time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c := exec.CommandContext(ctx, cgpeak, args...)
	if in != "" {
		c.Stdin = strings.NewReader(in)
	}
	var o, e strings.Builder
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not end within %v (stdout %q, stderr %q)", args, limit, o.String(), e.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return o.String(), e.String(), c.ProcessState.ExitCode()
}

// A pipe reads the report: `--json -o -` of one run, a series' results, and
// `--export-json -` of a series, each whole and alone on stdout.
func TestReportsToAPipe(t *testing.T) {
	cgpeak, _ := build(t)
	out, errs, code := runCgpeak(t, cgpeak, "", time.Minute, "run", "--json", "-o", "-", "--", "true")
	var r Report
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.ExitCode != 0 || len(r.Command) != 1 {
		t.Errorf("run --json -o - -- true: exit %d, %v, stdout %q, stderr %q", code, err, out, errs)
	}
	// One run without -o: the command owns stdout, the report is on stderr.
	out, errs, code = runCgpeak(t, cgpeak, "", time.Minute, "run", "--", "echo", "mine")
	if code != 0 || out != "mine\n" || !strings.Contains(errs, "peak RSS, one process") {
		t.Errorf("run -- echo mine: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	out, errs, code = runCgpeak(t, cgpeak, "", time.Minute, "run", "--runs", "2", "-N", "echo noise", "true")
	if code != 0 || !strings.Contains(out, "cgpeak: echo noise (2 runs, each in a fresh cgroup)") || !strings.Contains(out, "times faster than") ||
		strings.Contains(out, "noise\n") || strings.Contains(errs, "runs, each") {
		t.Errorf("a series: exit %d, want its results on stdout, the commands' output discarded: stdout %q, stderr %q", code, out, errs)
	}
	out, errs, code = runCgpeak(t, cgpeak, "", time.Minute, "run", "--runs", "2", "--export-json", "-", "-N", "true")
	var s SeriesReport
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil || len(s.Results) != 1 || s.Results[0].Runs != 2 || !strings.Contains(errs, "(2 runs, each in a fresh cgroup)") {
		t.Errorf("--export-json -: exit %d, %v, want the JSON alone on stdout and the text on stderr: stdout %q, stderr %q", code, err, out, errs)
	}
	wantOneLineError(t, cgpeak, []string{"run", "--runs", "2", "-o", "-", "--export-csv", "-", "true"}, exitUsage)
}

// --help of every command, -h and `cgpeak help CMD` print the command's
// usage, its flags and the exit codes on stdout, nothing on stderr, and
// exit 0; the top level's too.
func TestHelpOnStdout(t *testing.T) {
	cgpeak, _ := build(t)
	var table strings.Builder
	exitcode.WriteHelp(&table)
	check := func(args []string, head string) {
		t.Helper()
		out, errs, code := runCgpeak(t, cgpeak, "", time.Minute, args...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, head) || !strings.HasSuffix(out, table.String()) {
			t.Errorf("%q: exit %d, stderr %q, stdout:\n%s\nwant %q first and the exit codes last", args, code, errs, out, head)
		}
	}
	for _, c := range []string{"run", "trace", "watch", "explain", "probe"} {
		for _, args := range [][]string{{c, "--help"}, {c, "-h"}, {"help", c}} {
			check(args, "Usage: cgpeak "+c+" ")
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		check(args, "cgpeak: a command's time and peak memory")
	}
	if out, _, _ := runCgpeak(t, cgpeak, "", time.Minute, "run", "--help"); !strings.Contains(out, "--export-json") || !strings.Contains(out, "--show-output") {
		t.Errorf("run --help does not list the export flags:\n%s", out)
	}
	// Not asked for: the usage is an error, on stderr.
	if out, errs, code := runCgpeak(t, cgpeak, "", time.Minute); code != exitUsage || out != "" || !strings.Contains(errs, "Usage:") {
		t.Errorf("cgpeak alone: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	wantOneLineError(t, cgpeak, []string{"help", "no-such-command"}, exitUsage)
}

// Every run of a series reads /dev/null, as hyperfine's do: cat ends at
// once in each, with a terminal-like stdin that never ends (a pipe kept
// open), and piped input is not fed to the first run only. --input feeds
// every run; one run keeps cgpeak's stdin (TestStdioEnvAndDirPassThrough).
func TestSeriesStdinIsDevNull(t *testing.T) {
	cgpeak, _ := build(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, cgpeak, "run", "-q", "--runs", "3", "-N", "cat")
	c.Stdin = r
	err = c.Run()
	r.Close()
	if ctx.Err() != nil {
		t.Fatal("a series of cat waited on cgpeak's stdin: every run must read /dev/null")
	}
	if err != nil {
		t.Errorf("--runs 3 cat: %v", err)
	}
	out, errs, code := runCgpeak(t, cgpeak, "hello\n", time.Minute, "run", "-q", "--runs", "2", "--show-output", "-N", "cat")
	if code != 0 || out != "" {
		t.Errorf("echo hello | run --runs 2 --show-output cat: exit %d, stdout %q (want nothing: no run reads cgpeak's stdin), stderr %q", code, out, errs)
	}
	// The hooks read /dev/null too.
	out, _, code = runCgpeak(t, cgpeak, "hello\n", time.Minute, "run", "-q", "--runs", "2", "--show-output", "--prepare", "cat", "-N", "true")
	if code != 0 || out != "" {
		t.Errorf("--prepare cat: exit %d, stdout %q", code, out)
	}
}

// SIGINT after k of n runs of a series: the statistics of the k finished
// runs are printed and exported, marked interrupted, cgpeak exits 130, the
// stopped workload is killed and its cgroup removed.
func TestSeriesInterruptKeepsFinishedRuns(t *testing.T) {
	cgpeak, _ := build(t)
	h, _ := cgroup.FindMemory()
	parent, _ := h.Parent()
	dir := t.TempDir()
	j := filepath.Join(dir, "int.json")
	const k = 3
	// Runs 1..k end at once; run k+1 sleeps until the signal.
	script := fmt.Sprintf(`n=$(cat %[1]s/n 2>/dev/null || echo 0); echo $((n+1)) > %[1]s/n; [ "$n" -lt %d ] || exec sleep 300`, dir, k)
	c := exec.Command(cgpeak, "run", "--runs", "5", "--export-json", j, "--", "sh", "-c", script)
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	// The (k+1)th run's sleep, in this cgpeak's own leaf.
	var workload []int
	for i := 0; i < 1500 && len(workload) == 0; i++ {
		for _, p := range leafProcs(parent, c.Process.Pid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); string(b) == "sleep\x00300\x00" {
				workload = append(workload, p)
			}
		}
		if len(workload) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(workload) == 0 {
		t.Fatalf("run %d's sleep never appeared in its cgroup; stderr %q", k+1, stderr.String())
	}
	_ = c.Process.Signal(syscall.SIGINT)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("cgpeak after SIGINT: %v, want exit 130", err)
	}
	if !strings.Contains(stdout.String(), "interrupted by SIGINT") || !strings.Contains(stdout.String(), fmt.Sprintf("(%d runs, each in a fresh cgroup)", k)) {
		t.Errorf("want the statistics of the %d finished runs on stdout, marked interrupted: stdout %q, stderr %q", k, stdout.String(), stderr.String())
	}
	var rep SeriesReport
	raw, err := os.ReadFile(j)
	if err == nil {
		err = json.Unmarshal(raw, &rep)
	}
	if err != nil || !rep.Interrupted || rep.InterruptedBy != "SIGINT" || len(rep.Results) != 1 || rep.Results[0].Runs != k || len(rep.Results[0].Times) != k {
		t.Errorf("export: %v, want %d runs marked interrupted by SIGINT:\n%s", err, k, raw)
	}
	if left := cgroup.LeavesOf(parent, c.Process.Pid); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if alive := living(workload); len(alive) > 0 {
		t.Errorf("the workload survives: pids %v", alive)
	}
}

// cgpeak's own failures have codes of their own, none a command's plain
// exit 3 (which passes through), each reached as the README says.
func TestOwnExitCodes(t *testing.T) {
	cgpeak, _ := build(t)
	if _, _, code := runCgpeak(t, cgpeak, "", time.Minute, "run", "-q", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("sh -c 'exit 3': exit %d, want the command's 3", code)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	noexec := filepath.Join(dir, "noexec")
	for _, f := range []string{bad, noexec} {
		if err := os.WriteFile(f, []byte("not a trace\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of /dev/full (the VMs' /dev may lack it); none without root.
	full := outfiletest.Targets(t, dir)[outfiletest.FullDevice]
	seen := map[int]bool{3: true}
	for _, c := range []struct {
		code int
		args []string
	}{
		{exitcode.Usage, []string{"run", "--no-such-flag"}},
		{exitcode.Cgroup, []string{"watch", "--cgroup", filepath.Join(dir, "no-such-cgroup")}},
		// A BTF file that cannot be read: tracing is not possible (root or not).
		{exitcode.Trace, []string{"run", "--trace", "--kernel-btf", bad, "--", "true"}},
		{exitcode.Write, []string{"run", "-o", full, "--", "true"}},
		{exitcode.BadTrace, []string{"explain", bad}},
		{exitcode.NoExec, []string{"run", "--", noexec}},
		{exitcode.NotFound, []string{"run", "--", "no-such-command-cgpeak"}},
		{128 + int(syscall.SIGTERM), []string{"run", "--", "sh", "-c", "kill -TERM $$"}},
	} {
		if c.code == exitcode.Write && full == "" {
			t.Log("not root: no full device to fail a write, exit 123 not tried")
			continue
		}
		_, errs, code := runCgpeak(t, cgpeak, "", time.Minute, c.args...)
		if code != c.code || !strings.Contains(errs, "cgpeak") {
			t.Errorf("%q: exit %d, want %d; stderr %q", c.args, code, c.code, errs)
		}
		if seen[code] {
			t.Errorf("%q: exit %d, given to something else too", c.args, code)
		}
		seen[code] = true
	}
	// exitcode.Internal (125) is not reached: no input leads there, only a
	// bug or a system that refuses what cgpeak cannot do without.
}

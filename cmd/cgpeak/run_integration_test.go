package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgpeak/cgpeak/cgroup"
)

// build compiles cgpeak and the touch workload once per test binary.
func build(t *testing.T) (cgpeak, touch string) {
	t.Helper()
	if _, err := cgroup.FindMemory(); err != nil {
		t.Skipf("no memory cgroup controller on this machine: %v", err)
	}
	// In the VMs there is no compiler: the harness ships prebuilt binaries.
	cgpeak, touch = os.Getenv("CGPEAK_TEST_CGPEAK"), os.Getenv("CGPEAK_TEST_TOUCH")
	if cgpeak != "" && touch != "" {
		return
	}
	dir := t.TempDir()
	cgpeak = filepath.Join(dir, "cgpeak")
	if out, err := exec.Command("go", "build", "-o", cgpeak, ".").CombinedOutput(); err != nil {
		t.Fatalf("building cgpeak: %v\n%s", err, out)
	}
	touch = filepath.Join(dir, "touch")
	if out, err := exec.Command("gcc", "-O1", "-static", "-o", touch, "../../testdata/touch/touch.c").CombinedOutput(); err != nil {
		t.Fatalf("building touch: %v\n%s", err, out)
	}
	return
}

func runJSON(t *testing.T, cgpeak string, args ...string) (Report, int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "r.json")
	if !strings.HasPrefix(args[0], "-") {
		args = append([]string{"--"}, args...)
	}
	cmd := exec.Command(cgpeak, append([]string{"run", "--json", "--output", out}, args...)...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return readReport(t, out), code
}

// noPeakFile skips a peak check on v2 kernels before 5.19, which have no
// memory.peak, once the report has said so rather than printing a lesser figure.
func noPeakFile(t *testing.T, r Report) {
	t.Helper()
	if r.PeakBytes == nil && r.CgroupVersion == 2 && strings.Contains(strings.Join(r.Missing, " "), "needs Linux 5.19+") {
		t.Skipf("this kernel has no memory.peak (5.19+); the report says so: %v", r.Missing)
	}
}

func readReport(t *testing.T, path string) Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return r
}

func TestRunTouchesNPages(t *testing.T) {
	cgpeak, touch := build(t)
	page := uint64(os.Getpagesize())
	for _, n := range []uint64{1000, 20000} {
		r, code := runJSON(t, cgpeak, touch, strconv.FormatUint(n, 10))
		noPeakFile(t, r)
		if code != 0 || r.PeakBytes == nil {
			t.Fatalf("n=%d: exit %d, peak %v, missing %v", n, code, r.PeakBytes, r.Missing)
		}
		// At least the N touched pages; at most N plus one charge batch (64)
		// per CPU plus the workload's own binary, stack and page tables (64 pages).
		lo, hi := n*page, (n+64*uint64(runtime.NumCPU())+64)*page
		t.Logf("n=%d pages: cgroup peak %d bytes (%s), ru_maxrss %d", n, *r.PeakBytes, r.PeakSource, r.MaxRSSBytes)
		if *r.PeakBytes < lo || *r.PeakBytes > hi {
			t.Errorf("n=%d: peak %d not in [%d, %d]", n, *r.PeakBytes, lo, hi)
		}
		if r.MaxRSSBytes < n*page {
			t.Errorf("n=%d: ru_maxrss %d below the touched pages", n, r.MaxRSSBytes)
		}
	}
}

func TestRunExitCodesAndSignals(t *testing.T) {
	cgpeak, _ := build(t)
	if r, code := runJSON(t, cgpeak, "sh", "-c", "exit 7"); code != 7 || r.ExitCode != 7 {
		t.Errorf("exit 7: got %d / %d", code, r.ExitCode)
	}
	if r, code := runJSON(t, cgpeak, "sh", "-c", "kill -TERM $$"); code != 128+15 || r.Signal == "" {
		t.Errorf("SIGTERM: got %d, signal %q", code, r.Signal)
	}
	if err := exec.Command(cgpeak, "run", "--", "no-such-command-cgpeak").Run(); err == nil || err.(*exec.ExitError).ExitCode() != 127 {
		t.Errorf("missing command: %v, want exit 127", err)
	}
	if err := exec.Command(cgpeak, "run", "--memory-max", "12X", "--", "true").Run(); err == nil || err.(*exec.ExitError).ExitCode() != exitUsage {
		t.Errorf("bad size: %v, want exit %d", err, exitUsage)
	}
}

func TestRunOOM(t *testing.T) {
	cgpeak, touch := build(t)
	r, code := runJSON(t, cgpeak, "--memory-max", "16M", "--swap-max", "0", "--", touch, "20000")
	if !r.OOMKilled || code != 128+9 {
		t.Errorf("want an OOM kill (exit 137): exit %d, events %v", code, r.Events)
	}
}

func TestRunLeavesNoCgroup(t *testing.T) {
	cgpeak, _ := build(t)
	h, _ := cgroup.FindMemory()
	var cmds []*exec.Cmd
	for i := 0; i < 8; i++ {
		c := exec.Command(cgpeak, "run", "-q", "--", "sh", "-c", "exit 0")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("parallel run: %v", err)
		}
	}
	parent, _ := h.Parent()
	for _, c := range cmds {
		if left := cgroup.LeavesOf(parent, c.Process.Pid); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	}
}

// Every signal that ends cgpeak kills the workload's whole tree, removes
// its cgroup, still writes the figures so far, and cgpeak exits
// 128+signal: its own signal, not the workload's SIGKILL (issue 11, items 5
// and 8: SIGHUP, SIGQUIT and SIGPIPE used to leave the workload running,
// SIGINT exited 137).
func TestInterruptKillsTreeAndCleansUp(t *testing.T) {
	cgpeak, _ := build(t)
	h, _ := cgroup.FindMemory()
	parent, _ := h.Parent()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			marker := "cgpeak-interrupt-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(int(sig))
			out := filepath.Join(t.TempDir(), "r.json")
			// A tree: a shell with a background child, both sleeping.
			c := exec.Command(cgpeak, "run", "--json", "--output", out, "--", "sh", "-c", "sleep 300 & exec sleep 301 # "+marker)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			leaf := waitLeaf(t, parent, c.Process.Pid, 2)
			_ = c.Process.Signal(sig)
			err := c.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(sig) {
				t.Errorf("cgpeak after %v: %v, want exit %d", sig, err, 128+int(sig))
			}
			if _, err := os.Stat(filepath.Join(parent, leaf)); !os.IsNotExist(err) {
				t.Errorf("cgroup %s still there: %v", leaf, err)
			}
			if o, _ := exec.Command("pgrep", "-f", marker).Output(); len(o) > 0 {
				t.Errorf("workload processes survive: %s", o)
			}
			b, err := os.ReadFile(out)
			if err != nil || !strings.Contains(string(b), `"interrupted": true`) || !strings.Contains(string(b), `"interrupted_by": "`+unix.SignalName(sig)+`"`) {
				t.Errorf("report after %v: %s %v", sig, b, err)
			}
		})
	}
}

// leafProcs lists the processes in the leaf cgroups of the cgpeak with pid.
func leafProcs(parent string, pid int) []int {
	var procs []int
	for _, l := range cgroup.LeavesOf(parent, pid) {
		b, _ := os.ReadFile(filepath.Join(l, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				procs = append(procs, p)
			}
		}
	}
	return procs
}

// living returns the pids that still run (a zombie has ended).
func living(pids []int) []int {
	var alive []int
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] != 'Z' {
			alive = append(alive, p)
		}
	}
	return alive
}

// waitLeaf waits until the cgroup of the cgpeak with pid holds at least n
// processes, and returns its name.
func waitLeaf(t *testing.T, parent string, pid, n int) string {
	t.Helper()
	// Up to 30 s: the start of a run on a loaded machine, not a timing test.
	for i := 0; i < 1500; i++ {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), cgroup.NamePrefix+strconv.Itoa(pid)+"-") {
				b, _ := os.ReadFile(filepath.Join(parent, e.Name(), "cgroup.procs"))
				if len(strings.Fields(string(b))) >= n {
					return e.Name()
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("workload never appeared in its cgroup")
	return ""
}

func TestStaleCgroupsRemovedLiveOnesKept(t *testing.T) {
	cgpeak, _ := build(t)
	h, _ := cgroup.FindMemory()
	parent, _ := h.Parent()
	// A pid that is surely dead: a finished child's.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, cgroup.NamePrefix+strconv.Itoa(dead.Process.Pid)+"-0-0")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(stale)
	// A live cgpeak's leaf: a running cgpeak run, there until the test ends
	// it (a run that ended by itself would take its leaf away).
	live := exec.Command(cgpeak, "run", "-q", "--", "sleep", "300")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = live.Process.Signal(syscall.SIGTERM)
		_ = live.Wait()
	}()
	waitLeaf(t, parent, live.Process.Pid, 1)
	if err := exec.Command(cgpeak, "run", "-q", "--", "true").Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale cgroup of dead pid %d not removed", dead.Process.Pid)
	}
	if len(cgroup.LeavesOf(parent, live.Process.Pid)) == 0 {
		t.Error("the leaf of a running cgpeak was removed")
	}
}

// No figure may hold cgpeak's own memory: the launcher's pages (on v1 the
// page it shares with the child for the start time) are charged to
// cgpeak's cgroup, not the run's. The command reads its own cgroup's
// memory.stat while it runs: sh itself maps no shared memory.
func TestLauncherPagesNotInTheRun(t *testing.T) {
	cgpeak, _ := build(t)
	script := `v1=$(grep ':memory:' /proc/self/cgroup | cut -d: -f3)
if [ -n "$v1" ] && [ -f "/sys/fs/cgroup/memory$v1/memory.stat" ]; then f="/sys/fs/cgroup/memory$v1/memory.stat"
else f="/sys/fs/cgroup$(grep '^0::' /proc/self/cgroup | cut -d: -f3)/memory.stat"; fi
grep '^shmem ' "$f"`
	out, err := exec.Command(cgpeak, "run", "-q", "--", "sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) != 2 || f[0] != "shmem" || f[1] != "0" {
		t.Errorf("the run's own memory.stat during the run says %q, want shmem 0: the launcher's pages are in the run's figures", out)
	}
}

// The launcher (and so its child until the command's exec, whose charges a
// trace names by process) is called cgpeak-launcher, not after the memfd's
// fd number it was started from.
func TestLauncherNamed(t *testing.T) {
	cgpeak, _ := build(t)
	out, err := exec.Command(cgpeak, "run", "-q", "--", "sh", "-c", "cat /proc/$PPID/comm").Output()
	if err != nil || strings.TrimSpace(string(out)) != "cgpeak-launcher" {
		t.Errorf("the command's parent is called %q (%v), want cgpeak-launcher", out, err)
	}
}

// A process the command leaves in its cgroup is killed at the command's
// exit and named in the report; --wait-all waits for it instead, as
// systemd-run --wait does for a scope, and the time runs to its end.
func TestLeftBehind(t *testing.T) {
	cgpeak, _ := build(t)
	for _, wait := range []bool{false, true} {
		done := filepath.Join(t.TempDir(), "done")
		// The orphan sleeps, then says it ran to its end.
		script := "(sleep 2; echo yes > " + done + ") & sleep 0.05"
		args := []string{"run", "--json", "-o", "-"}
		if wait {
			args = append(args, "--wait-all")
		}
		out, err := exec.Command(cgpeak, append(args, "--", "sh", "-c", script)...).Output()
		var r Report
		if err != nil || json.Unmarshal(out, &r) != nil {
			t.Fatalf("wait-all %v: %v\n%s", wait, err, out)
		}
		_, ferr := os.Stat(done)
		sleeps := 0
		for _, p := range r.LeftBehind {
			if p.Comm == "sleep" {
				sleeps++
			}
			if p.Done != r.LeftBehind[0].Done || p.PID <= 0 {
				t.Errorf("wait-all %v: left behind %+v", wait, r.LeftBehind)
			}
		}
		switch {
		case sleeps != 1 || len(r.LeftBehind) > 2:
			t.Errorf("wait-all %v: left behind %+v, want the subshell and its sleep", wait, r.LeftBehind)
		case !wait && (r.LeftBehind[0].Done != "killed" || ferr == nil || r.WallSeconds >= 2):
			t.Errorf("the orphan was not killed at the command's exit: %+v, it finished: %v, wall %v s", r.LeftBehind[0], ferr == nil, r.WallSeconds)
		case wait && (r.LeftBehind[0].Done != "waited for" || ferr != nil || r.WallSeconds < 2):
			t.Errorf("--wait-all did not wait: %+v, it finished: %v, wall %v s", r.LeftBehind[0], ferr == nil, r.WallSeconds)
		}
	}
	// Nothing left: no list at all.
	if r, _ := runJSON(t, cgpeak, "true"); len(r.LeftBehind) != 0 {
		t.Errorf("true left behind %+v", r.LeftBehind)
	}
}

// ru_maxrss must be the command's own, not cgpeak's: a static program that
// touches one page stays far below cgpeak's size (GNU time reports about 1 MiB).
func TestMaxRSSExcludesCgpeak(t *testing.T) {
	cgpeak, touch := build(t)
	r, code := runJSON(t, cgpeak, touch, "1")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	t.Logf("touch 1: ru_maxrss %d bytes, user %.3fs", r.MaxRSSBytes, r.UserSeconds)
	if r.MaxRSSBytes == 0 || r.MaxRSSBytes > 2<<20 {
		t.Errorf("ru_maxrss %d bytes for a one-page static program: cgpeak's own memory leaked in", r.MaxRSSBytes)
	}
}

func TestStdioEnvAndDirPassThrough(t *testing.T) {
	cgpeak, _ := build(t)
	dir := t.TempDir()
	c := exec.Command(cgpeak, "run", "-q", "--", "sh", "-c", `read x; echo "$x|$CGPEAK_T|$(pwd)"; echo err >&2`)
	c.Dir = dir
	c.Env = append(os.Environ(), "CGPEAK_T=v 1")
	c.Stdin = strings.NewReader("hello\n")
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if want := "hello|v 1|" + dir + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if stderr.String() != "err\n" {
		t.Errorf("stderr %q", stderr.String())
	}
}

// wantOneLineError runs cgpeak with args and wants it to fail with code and
// a single "cgpeak: ..." line naming the problem. It returns the pid that
// cgpeak ran as, so a test can look for what that run left.
func wantOneLineError(t *testing.T, cgpeak string, args []string, code int) int {
	t.Helper()
	c := exec.Command(cgpeak, args...)
	out, err := c.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != code {
		t.Errorf("%q: %v, want exit %d", args, err, code)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "cgpeak: ") {
		t.Errorf("%q: want one line, got %q", args, out)
	}
	if c.Process == nil {
		return 0
	}
	return c.Process.Pid
}

// A bad flag on any subcommand is named in one line with the help to read.
func TestBadFlagsNamed(t *testing.T) {
	cgpeak, _ := build(t)
	for _, c := range []string{"run", "trace", "watch", "explain", "probe"} {
		wantOneLineError(t, cgpeak, []string{c, "--no-such-flag"}, exitUsage)
	}
	wantOneLineError(t, cgpeak, []string{"run", "--runs", "many", "true"}, exitUsage)
}

package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/loader"
)

// cgpeaks started under other names (a symlink, a copy) run in parallel
// with a plain one: the later runs' stale-cgroup cleanup must not take the
// earlier runs' live cgroups for dead, and each finishes with its own
// figures (issue 11, item 2: the first run was SIGKILLed).
func TestParallelRunsUnderOtherNames(t *testing.T) {
	cgpeak, touch := build(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "peak")
	if err := os.Symlink(cgpeak, link); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "other")
	copyFile(t, cgpeak, cp)
	page := uint64(os.Getpagesize())
	type run struct {
		bin   string
		pages uint64
		hold  string
		cmd   *exec.Cmd
		out   string
	}
	runs := []*run{{bin: link, pages: 3000, hold: "2"}, {bin: cp, pages: 2000, hold: "1.5"}, {bin: cgpeak, pages: 1000, hold: "0"}}
	for i, r := range runs {
		r.out = filepath.Join(dir, "r"+strconv.Itoa(i)+".json")
		// Each touches its pages, then holds its cgroup while the next starts.
		r.cmd = exec.Command(r.bin, "run", "--json", "-o", r.out, "--", "sh", "-c", touch+" "+strconv.FormatUint(r.pages, 10)+" && sleep "+r.hold)
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
	}
	for _, r := range runs {
		err := r.cmd.Wait()
		if err != nil {
			t.Errorf("%s: %v (137: killed by another cgpeak's cleanup)", filepath.Base(r.bin), err)
			continue
		}
		rep := readReport(t, r.out)
		noPeakFile(t, rep)
		if rep.ExitCode != 0 || rep.Signal != "" || rep.PeakBytes == nil {
			t.Errorf("%s: exit %d, signal %q, peak %v", filepath.Base(r.bin), rep.ExitCode, rep.Signal, rep.PeakBytes)
			continue
		}
		lo, hi := r.pages*page, (r.pages+64*uint64(runtime.NumCPU())+256)*page
		t.Logf("%s: touched %d pages, cgroup peak %d bytes", filepath.Base(r.bin), r.pages, *rep.PeakBytes)
		if *rep.PeakBytes < lo || *rep.PeakBytes > hi {
			t.Errorf("%s: peak %d not its own: want [%d, %d]", filepath.Base(r.bin), *rep.PeakBytes, lo, hi)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// Asking for a backend the kernel lacks fails in one line with the tracing
// exit code, not a panic (issue 11, item 3). Only a kernel without the
// backend can show it: where both exist, attaching succeeds.
func TestMissingBackendNoPanic(t *testing.T) {
	cgpeak, _ := build(t)
	var missing []string
	have := backends(t)
	for _, b := range []string{loader.Fentry, loader.Kprobe} {
		if !slices.Contains(have, b) {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		t.Skip("this kernel has both backends: a failed attach cannot be provoked by asking for one")
	}
	h, _ := cgroup.FindMemory()
	parent, _ := h.Parent()
	for _, b := range missing {
		for _, args := range [][]string{{"run", "--trace", "--backend", b, "--", "true"}, {"trace", "--pid", "1", "--backend", b, "--duration", "5s"}} {
			pid := wantOneLineError(t, cgpeak, args, exitTrace)
			if left := cgroup.LeavesOf(parent, pid); len(left) > 0 {
				t.Errorf("%q: cgroups left: %v", args, left)
			}
		}
	}
}

// watch on a cgroup the memory controller does not account (another v1
// hierarchy, a v2 cgroup whose parent does not enable memory) says so in
// one line at once instead of waiting forever (issue 11, item 4).
func TestWatchNonMemoryCgroup(t *testing.T) {
	cgpeak, _ := build(t)
	h, _ := cgroup.FindMemory()
	targets := []string{"../cpu", "../../.."}
	if h.V2 {
		// A cgroup two levels down, memory enabled only for the first.
		top := mkcg(t, filepath.Join(h.Mount, "cgpeak-test-nomem-"+strconv.Itoa(os.Getpid())))
		low := mkcg(t, filepath.Join(top, "low"))
		if _, err := os.Stat(filepath.Join(low, "memory.stat")); err == nil {
			t.Fatalf("%s has memory.stat though %s/cgroup.subtree_control does not enable memory", low, top)
		}
		targets = append(targets, low)
	}
	for _, tg := range targets {
		// --duration bounds even a watch that would wait: the old one
		// ignored it, so the test kills it too.
		args := []string{"watch", "--cgroup", tg, "--duration", "5s"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		out, err := exec.CommandContext(ctx, cgpeak, args...).CombinedOutput()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitCgroup {
			t.Errorf("%v: %v after %v, want exit %d at once", args, err, time.Since(start), exitCgroup)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "cgpeak: ") {
			t.Errorf("%v: want one line, got %q", args, out)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%v took %v: want an error at once", args, d)
		}
	}
}

// The smaller failures of issue 11, item 8, each against what a user sees.
func TestSmallFailures(t *testing.T) {
	cgpeak, touch := build(t)
	h, _ := cgroup.FindMemory()
	dir := t.TempDir()
	t.Run("limits too small or not plain numbers", func(t *testing.T) {
		for _, v := range []string{"0", "1", "1e3", "0x100000", "Inf"} {
			wantOneLineError(t, cgpeak, []string{"run", "--memory-max", v, "--", "true"}, exitUsage)
		}
	})
	t.Run("swap-max alone on v1", func(t *testing.T) {
		if h.V2 {
			t.Skip("v2 limits swap on its own: --swap-max alone is valid there")
		}
		wantOneLineError(t, cgpeak, []string{"run", "--swap-max", "0", "--", "true"}, exitUsage)
	})
	t.Run("probe takes no arguments", func(t *testing.T) {
		wantOneLineError(t, cgpeak, []string{"probe", "extra"}, exitUsage)
	})
	t.Run("exports checked before the first run", func(t *testing.T) {
		marker := filepath.Join(dir, "ran")
		wantOneLineError(t, cgpeak, []string{"run", "--runs", "2", "--export-json", "/nonexistent/x.json", "touch " + marker}, exitUsage)
		if _, err := os.Stat(marker); err == nil {
			t.Error("the command ran before the export destination was found bad")
		}
	})
	t.Run("why a command cannot run", func(t *testing.T) {
		script := filepath.Join(dir, "script")
		os.WriteFile(script, []byte("#!/nonexistent/interpreter\n"), 0o755)
		garbage := filepath.Join(dir, "garbage")
		os.WriteFile(garbage, []byte("\x00\x01\x02 not a program"), 0o755)
		os.WriteFile(filepath.Join(dir, "here"), []byte("#!/bin/sh\n"), 0o755)
		for _, c := range []struct {
			args []string
			env  string
			code int
			want string
		}{
			{[]string{script}, "", exitNotFound, "/nonexistent/interpreter"},
			{[]string{garbage}, "", exitNoExec, "exec format error"},
			{[]string{"here"}, ".:" + os.Getenv("PATH"), exitNotFound, "./here"},
		} {
			cmd := exec.Command(cgpeak, append([]string{"run", "--"}, c.args...)...)
			cmd.Dir = dir
			if c.env != "" {
				cmd.Env = append(os.Environ(), "PATH="+c.env)
			}
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != c.code {
				t.Errorf("%v: %v, want exit %d", c.args, err, c.code)
			}
			if s := strings.TrimSpace(string(out)); strings.Count(s, "\n") != 0 || !strings.Contains(s, c.want) || strings.Contains(s, "chmod") {
				t.Errorf("%v: want one line naming %q, got %q", c.args, c.want, out)
			}
		}
	})
	t.Run("OOM kill of a child only", func(t *testing.T) {
		// The shell survives its child's OOM kill and exits 0.
		out, err := exec.Command(cgpeak, "run", "--memory-max", "16M", "--swap-max", "0", "--", "sh", "-c", touch+" 20000; exit 0").CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		s := string(out)
		if strings.Contains(s, "killed by the OOM killer") || !strings.Contains(s, "code 0; the OOM killer ended 1 of its processes") {
			t.Errorf("report of a run whose child alone was OOM-killed:\n%s", s)
		}
	})
	t.Run("explain JSON keys", func(t *testing.T) {
		out, err := exec.Command(cgpeak, "explain", "--json", "../../testdata/traces/bookworm-seed-charges-touch196.jsonl").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{`"requested_pages"`, `"counter_charges"`, `"comm"`, `"from_stock_pages"`} {
			if !strings.Contains(string(out), k) {
				t.Errorf("explain --json lacks %s", k)
			}
		}
		for _, k := range []string{`"Requests"`, `"RequestedPages"`, `"Comm"`, `"CounterCharges"`} {
			if strings.Contains(string(out), k) {
				t.Errorf("explain --json has CamelCase key %s", k)
			}
		}
	})
}

// probe as a normal user says what run will then do: where run cannot get a
// cgroup, probe says it will not measure, with run's own reason, and it says
// that tracing needs root instead of blaming lockdown or leaking a
// library's advice on RLIMIT_MEMLOCK (issue 25, item 7).
func TestProbeAsNormalUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become another user")
	}
	cgpeak, _ := build(t)
	dir, err := os.MkdirTemp("", "cgpeak-probe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "cgpeak")
	if b, err := os.ReadFile(cgpeak); err != nil || os.WriteFile(bin, b, 0o755) != nil || os.Chmod(dir, 0o755) != nil {
		t.Fatal("copying cgpeak for another user")
	}
	as := func(args ...string) (string, int) {
		c := exec.Command(bin, args...)
		c.Dir = "/"
		c.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := c.CombinedOutput()
		return string(out), exitCode(err)
	}
	probe, code := as("probe")
	if code != 0 {
		t.Fatalf("probe as nobody: exit %d\n%s", code, probe)
	}
	run, runCode := as("run", "-q", "--", "true")
	verdict := probe[strings.Index(probe, "so cgpeak will:"):]
	switch {
	case runCode == exitCgroup && !strings.Contains(verdict, "- not measure: "+strings.TrimPrefix(strings.TrimSpace(run), "cgpeak: ")):
		t.Errorf("run as nobody says %q (exit %d), probe's verdict does not:\n%s", run, runCode, verdict)
	case runCode == 0 && !strings.Contains(verdict, "- measure each run"):
		t.Errorf("run as nobody works, probe's verdict says otherwise:\n%s", verdict)
	case runCode != 0 && runCode != exitCgroup:
		t.Errorf("run as nobody: exit %d: %s", runCode, run)
	}
	if !strings.Contains(verdict, "not trace charges: loading BPF programs needs root") {
		t.Errorf("the verdict does not say that tracing needs root:\n%s", verdict)
	}
	if strings.Contains(probe, "rlimit") || strings.Contains(probe, "lockdown, or a policy") {
		t.Errorf("probe blames lockdown or leaks library advice:\n%s", probe)
	}
}

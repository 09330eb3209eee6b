package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/outfile/outfiletest"
)

// Every cgpeak command that writes a file the user names, pointed at a
// read-only file, a copy of /dev/null, a copy of /dev/full, a path in a
// missing directory and a directory: the target is left exactly as it was
// (same inode, type, device numbers, permissions, content, and nothing left
// beside it), and the exit code says what happened (issue 11, items 1 and 6).
func TestNamedOutputsLeftAsTheyWere(t *testing.T) {
	cgpeak, _ := build(t)
	traced := tracingHere(t)
	trace := "../../testdata/traces/bookworm-seed-summary-touch196.jsonl"
	pid := strconv.Itoa(os.Getpid())
	type cmd struct {
		name   string
		args   func(target string) []string
		traces bool // the work needs charge tracing
	}
	cmds := []cmd{
		{"run -o", func(p string) []string { return []string{"run", "-o", p, "--", "true"} }, false},
		{"run --json -o", func(p string) []string { return []string{"run", "--json", "-o", p, "--", "true"} }, false},
		{"run --trace-output", func(p string) []string { return []string{"run", "-q", "--trace-output", p, "--", "true"} }, true},
		{"run --trace -o", func(p string) []string { return []string{"run", "--trace", "-o", p, "--", "true"} }, true},
		{"run --runs -o", func(p string) []string { return []string{"run", "--runs", "2", "-o", p, "true"} }, false},
		{"run --export-json", func(p string) []string { return []string{"run", "-q", "--runs", "2", "--export-json", p, "true"} }, false},
		{"run --export-csv", func(p string) []string { return []string{"run", "-q", "--runs", "2", "--export-csv", p, "true"} }, false},
		{"run --export-markdown", func(p string) []string { return []string{"run", "-q", "--runs", "2", "--export-markdown", p, "true"} }, false},
		{"trace --output", func(p string) []string { return []string{"trace", "--pid", pid, "--duration", "500ms", "--output", p} }, true},
		{"trace --trace-output", func(p string) []string {
			return []string{"trace", "--pid", pid, "--duration", "500ms", "--trace-output", p}
		}, true},
		{"explain --plot", func(p string) []string { return []string{"explain", "--plot", p, trace} }, false},
	}
	for _, c := range cmds {
		targets := outfiletest.Targets(t, t.TempDir())
		dir := filepath.Join(t.TempDir(), "a-directory")
		os.Mkdir(dir, 0o755)
		targets["directory"] = dir
		for kind, path := range targets {
			t.Run(c.name+"/"+kind, func(t *testing.T) {
				before := outfiletest.Snap(path)
				out, err := exec.Command(cgpeak, c.args(path)...).CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if after := outfiletest.Snap(path); after != before {
					t.Errorf("target changed:\n before %+v\n after  %+v\n%s", before, after, out)
				}
				if strings.Contains(string(out), "panic") {
					t.Errorf("panic:\n%s", out)
				}
				want := map[string]int{outfiletest.ReadOnly: exitUsage, outfiletest.Missing: exitUsage, "directory": exitUsage,
					outfiletest.DeviceNode: 0, outfiletest.FullDevice: exitWrite}[kind]
				if c.traces && !traced && (kind == outfiletest.DeviceNode || kind == outfiletest.FullDevice) {
					want = exitTrace // no tracing here: it fails before anything is written
				}
				if code != want {
					t.Errorf("exit %d, want %d\n%s", code, want, out)
				}
				if want == exitWrite && strings.HasPrefix(c.name, "run") && !strings.Contains(c.name, "export") && !strings.Contains(c.name, "trace-output") &&
					!strings.Contains(string(out), "wall") {
					t.Errorf("the report that could not be written is not shown on stderr:\n%s", out)
				}
			})
		}
	}
}

// A report file that exists is kept whole when the run fails before its
// report: a command not found, tracing that cannot start, a trace that
// cannot be read.
func TestExistingReportKeptOnFailure(t *testing.T) {
	cgpeak, _ := build(t)
	runs := [][]string{
		{"run", "-o", "FILE", "--", "no-such-command-cgpeak"},
		{"run", "--trace-output", "FILE", "--", "no-such-command-cgpeak"},
		{"trace", "--pid", "999999999", "--output", "FILE"},
		{"explain", "--plot", "FILE", "/no/such/trace.jsonl"},
	}
	if !tracingHere(t) {
		runs = append(runs, []string{"run", "--trace", "-o", "FILE", "--", "true"}, []string{"run", "--trace-output", "FILE", "--", "true"},
			[]string{"trace", "--pid", "1", "--backend", "kprobe", "--output", "FILE"}, []string{"trace", "--pid", "1", "--trace-output", "FILE"})
	}
	for _, args := range runs {
		f := filepath.Join(t.TempDir(), "existing.txt")
		os.WriteFile(f, []byte("an earlier report\n"), 0o644)
		before := outfiletest.Snap(f)
		for i := range args {
			if args[i] == "FILE" {
				args[i] = f
			}
		}
		out, err := exec.Command(cgpeak, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v succeeded", args)
		}
		if after := outfiletest.Snap(f); after != before {
			t.Errorf("%v changed the file:\n before %+v\n after  %+v\n%s", args, before, after, out)
		}
	}
}

// Reports on stdout are checked too: explain, watch, probe, a series and
// -o - to a full stdout fail with exitWrite, not 0.
func TestFullStdout(t *testing.T) {
	cgpeak, _ := build(t)
	if os.Geteuid() != 0 {
		t.Skip("a copy of /dev/full needs mknod (root)")
	}
	full := outfiletest.Targets(t, t.TempDir())[outfiletest.FullDevice]
	mh, err := cgroup.FindMemory()
	if err != nil {
		t.Fatal(err)
	}
	h := mh.Self
	for _, args := range [][]string{
		{"explain", "../../testdata/traces/bookworm-seed-summary-touch196.jsonl"},
		{"explain", "--json", "../../testdata/traces/bookworm-seed-summary-touch196.jsonl"},
		{"watch", "--cgroup", h, "--duration", "300ms"},
		{"watch", "--json", "--cgroup", h, "--duration", "300ms"},
		{"probe"},
		{"run", "--runs", "2", "-N", "true"}, // a series' results are on stdout
		{"run", "--json", "-o", "-", "--", "true"},
	} {
		f, err := os.OpenFile(full, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := exec.Command(cgpeak, args...)
		c.Stdout = f
		var stderr strings.Builder
		c.Stderr = &stderr
		err = c.Run()
		f.Close()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitWrite {
			t.Errorf("%v to a full stdout: %v, want exit %d", args, err, exitWrite)
		}
		if !strings.Contains(stderr.String(), syscall.ENOSPC.Error()) {
			t.Errorf("%v: the error does not say why: %q", args, stderr.String())
		}
	}
}

package measure

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/cgpeak/cgpeak/cgroup"
)

// hierarchy is the machine's memory controller, where a cgroup can be made.
func hierarchy(t *testing.T) cgroup.Hierarchy {
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Skipf("no memory cgroup controller on this machine: %v", err)
	}
	l, err := cgroup.NewLeaf(h)
	if err != nil {
		t.Skipf("cannot make a cgroup here (root, or a delegated one, is needed): %v", err)
	}
	l.Remove()
	return h
}

// leaves lists the cgroups this test process made under h's directory:
// none may be left. Other packages' tests, run at the same time, make
// leaves there too; those are theirs to check.
func leaves(t *testing.T, h cgroup.Hierarchy) []string {
	dir, _ := h.Parent()
	return cgroup.LeavesOf(dir, os.Getpid())
}

// One run of a workload touching exactly N pages: its cgroup peak holds
// them (the kernel's own figure), its code is the command's, and the leaf is
// gone after.
func TestOnceMeasuresTheWorkload(t *testing.T) {
	h := hierarchy(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the workload (apt-get install gcc)")
	}
	_, file, _, _ := runtime.Caller(0)
	touch := filepath.Join(t.TempDir(), "touch")
	if out, err := exec.Command("gcc", "-O1", "-static", "-o", touch, filepath.Join(filepath.Dir(file), "../../testdata/touch/touch.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	const n = 4096
	rep, err := Once(h, touch, []string{touch, strconv.Itoa(n)}, Options{Schema: 7, Memory: -1, Swap: -1, Stdout: os.Stdout}, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	page := uint64(os.Getpagesize())
	if rep.Schema != 7 || rep.ExitCode != 0 || rep.PeakBytes == nil || *rep.PeakBytes < n*page {
		t.Errorf("touch %d: schema %d, exit %d, peak %v (want at least %d bytes)", n, rep.Schema, rep.ExitCode, rep.PeakBytes, n*page)
	}
	if f := rep.SeriesFigures(); f.Peak == nil || *f.Peak != *rep.PeakBytes || f.Wall != rep.WallSeconds || f.Corrected != nil {
		t.Errorf("series figures %+v from %+v", f, rep.Report)
	}
	if left := leaves(t, h); len(left) > 0 {
		t.Errorf("cgroups left after the run: %v", left)
	}
}

// Each failure before figures says where it happened, and leaves no cgroup.
func TestOnceFailures(t *testing.T) {
	h := hierarchy(t)
	sh, _ := exec.LookPath("sh")
	stop := make(chan os.Signal, 1)
	stop <- syscall.SIGTERM
	for _, c := range []struct {
		name  string
		path  string
		o     Options
		stage Stage
	}{
		{"signal before start", sh, Options{Memory: -1, Swap: -1, Stop: stop}, StageStopped},
		{"missing input", sh, Options{Memory: -1, Swap: -1, Stdin: "/nonexistent/input"}, StageInput},
		{"not executable", "/etc/passwd", Options{Memory: -1, Swap: -1}, StageExec},
	} {
		_, err := Once(h, c.path, []string{c.path, "-c", "true"}, c.o, func(err error) { t.Error(err) })
		var me *Error
		if !errors.As(err, &me) || me.Stage != c.stage {
			t.Errorf("%s: %v, want stage %d", c.name, err, c.stage)
			continue
		}
		if c.stage == StageStopped && me.Signal != syscall.SIGTERM {
			t.Errorf("%s: signal %v", c.name, me.Signal)
		}
		if c.stage == StageExec && me.Code != 126 {
			t.Errorf("%s: code %d, want 126", c.name, me.Code)
		}
	}
	if left := leaves(t, h); len(left) > 0 {
		t.Errorf("cgroups left after the failures: %v", left)
	}
}

package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cgpeak/cgpeak/cgroup"
)

// Why a command cannot run, for files the test makes: the code a shell
// would give, and a reason naming the real cause.
func TestResolveAndExecErrors(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/nonexistent/sh -e\n"), 0o755)
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("data"), 0o644)
	for _, c := range []struct {
		name string
		code int
		want string
	}{
		{"no-such-command-cgpeak", ExitNotFound, "command not found"},
		{dir, ExitNoExec, "is a directory"},
		{plain, ExitNoExec, "chmod +x"},
	} {
		_, err := Resolve(c.name)
		var xe *ExecError
		if !errors.As(err, &xe) || xe.Code != c.code || !strings.Contains(xe.Msg, c.want) {
			t.Errorf("Resolve(%s): %v, want code %d saying %q", c.name, err, c.code, c.want)
		}
	}
	if p, err := Resolve(script); err != nil || p != script {
		t.Errorf("Resolve(%s) = %q, %v", script, p, err)
	}
	if xe := NewExecError(script, syscall.ENOENT); xe.Code != ExitNotFound || !strings.Contains(xe.Msg, "/nonexistent/sh") {
		t.Errorf("missing interpreter: %+v", xe)
	}
	if xe := NewExecError(plain, syscall.ENOEXEC); xe.Code != ExitNoExec || !strings.Contains(xe.Msg, "exec format error") {
		t.Errorf("bad format: %+v", xe)
	}
}

// A command run in a fresh leaf: its exit code, its cgroup's figures, and
// an exec failure reported with its reason, not as the command's 127.
func TestRunInLeaf(t *testing.T) {
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Skipf("no memory cgroup controller on this machine: %v", err)
	}
	leaf, err := cgroup.NewLeaf(h)
	if err != nil {
		t.Skipf("cannot make a cgroup here (root, or a delegated one, is needed): %v", err)
	}
	defer leaf.Remove()
	sh, _ := Resolve("sh")
	r, err := Run(leaf, Command{Path: sh, Args: []string{"sh", "-c", "exit 7"}, Stdout: os.Stdout})
	if err != nil || r.ExitCode != 7 || r.Interrupted || r.Cgroup != leaf.Path || r.PeakSource == "" {
		t.Fatalf("exit 7: %+v, %v", r, err)
	}
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/nonexistent/interpreter\n"), 0o755)
	_, err = Run(leaf, Command{Path: script, Args: []string{script}, Stdout: os.Stdout})
	var xe *ExecError
	if !errors.As(err, &xe) || xe.Code != ExitNotFound || !strings.Contains(xe.Msg, "/nonexistent/interpreter") {
		t.Errorf("a script with a missing interpreter: %v", err)
	}
}

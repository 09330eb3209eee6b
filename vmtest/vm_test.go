package vmtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The archive is checked by the system's cpio, an independent reader.
func TestCPIOReadBackByCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed (apt-get install cpio)")
	}
	dir := t.TempDir()
	host := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(host, "sub"), 0o755)
	os.WriteFile(filepath.Join(host, "sub", "f"), []byte("nested"), 0o600)
	var buf bytes.Buffer
	c := newCPIO(&buf)
	c.file("/a/b/c.txt", 0o644, []byte("hello"))
	c.file("/odd", 0o755, []byte("123")) // lengths that need padding
	c.symlink("/bin/sh", "busybox")
	c.copyTree("/t", host)
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command("cpio", "-idm", "--quiet")
	cmd.Dir, cmd.Stdin = out, &buf
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, b)
	}
	for p, want := range map[string]string{"a/b/c.txt": "hello", "odd": "123", "t/sub/f": "nested"} {
		if b, err := os.ReadFile(filepath.Join(out, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", p, b, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(out, "odd")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("mode of odd: %v %v", st.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(out, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("symlink: %q %v", l, err)
	}
}

// bootable returns a kernel to boot, failing where the harness cannot work.
func bootable(t *testing.T) Kernel {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install qemu-system-x86): the VM harness cannot run here")
	}
	if testing.Short() {
		t.Skip("boots a VM; not in -short")
	}
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ResolveKernel(context.Background(), envOr("CGPEAK_VM_TEST_KERNEL", "bookworm"), dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// A program's stdout, stderr, arguments and exit code cross the VM boundary unchanged.
func TestRunPassesOutputAndExitCode(t *testing.T) {
	k := bootable(t)
	bb, err := findBusybox()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	script := `printf '%s|' "$@"; printf 'no newline'; echo oops >&2; cat /proc/self/cgroup >&2; exit 7`
	code, err := Run(context.Background(), Config{
		Kernel: k, Mode: ModeV2, Program: bb,
		Args:   []string{"sh", "-c", script, "sh", "a b", "it's", ""},
		Stdout: &stdout, Stderr: &stderr, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	if want := "a b|it's||no newline"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if !strings.HasPrefix(stderr.String(), "oops\n0::/") {
		t.Errorf("stderr %q, want oops then a cgroup2 membership", stderr.String())
	}
}

// A kernel that panics before the program starts is an infrastructure
// failure, retried once, reported with its console, never a result.
func TestBootPanicIsInfrastructureFailure(t *testing.T) {
	k := bootable(t)
	bb, _ := findBusybox()
	var tries int
	code, err := Run(context.Background(), Config{
		Kernel: k, Program: bb, Args: []string{"true"},
		Append: "rdinit=/no-such-init", Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{},
		Logf: func(f string, a ...any) { tries++ },
	})
	var ie *InfraError
	if !errors.As(err, &ie) {
		t.Fatalf("got code %d, err %v; want an InfraError", code, err)
	}
	if !strings.Contains(ie.Console, "Kernel panic") {
		t.Errorf("console does not show the panic:\n%s", ie.Console)
	}
	if tries < 2 {
		t.Errorf("%d attempts logged, want a retry", tries)
	}
}

package procmaps

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func build(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: cannot build the test workload")
	}
	bin := filepath.Join(dir, "smallbig")
	if out, err := exec.Command("gcc", "-O1", "-static", "-o", bin, "../../testdata/userstacks/smallbig.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

func readelfID(t *testing.T, bin string) string {
	out, err := exec.Command("readelf", "-n", bin).Output()
	if err != nil {
		t.Skipf("readelf: %v", err)
	}
	_, id, _ := strings.Cut(string(out), "Build ID: ")
	return strings.TrimSpace(strings.SplitN(id, "\n", 2)[0])
}

// A stopped process's maps name its binary with readelf's build ID, even
// once the file was deleted (read through map_files); after it is gone,
// Read says it exited.
func TestReadLiveDeletedAndExited(t *testing.T) {
	bin := build(t, t.TempDir())
	want := readelfID(t, bin)
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Start returns when the close-on-exec pipe closes, before the new
	// image is mapped: wait for the traced child's stop after its exec.
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(cmd.Process.Pid, &ws, 0, nil); err != nil || !ws.Stopped() {
		t.Fatalf("waiting for the child's stop at exec: %v (status %v)", err, ws)
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	r := New()
	ms, err := r.Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		if m.Path == bin {
			found = true
			if m.BuildID != want || m.End <= m.Start {
				t.Errorf("mapping %+v, want build ID %s (readelf)", m, want)
			}
		}
	}
	if !found {
		t.Errorf("no executable mapping of %s in %+v", bin, ms)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := r.Read(cmd.Process.Pid); !errors.Is(err, ErrExited) {
		t.Errorf("after exit: %v, want ErrExited", err)
	}
}

func TestParseLine(t *testing.T) {
	for l, want := range map[string]bool{
		"00400000-00401000 r-xp 00001000 08:01 1234 /usr/bin/with blank (deleted)": true,
		"00400000-00401000 r--p 00000000 08:01 1234 /usr/bin/x":                    false,
		"7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]":                           false,
		"7f000000-7f001000 rwxp 00000000 00:00 0":                                  false,
	} {
		m, ok := parseLine(l)
		if ok != want {
			t.Errorf("%q: ok %v", l, ok)
		}
		if ok && (m.Path != "/usr/bin/with blank" || m.Start != 0x400000 || m.End != 0x401000 || m.Offset != 0x1000) {
			t.Errorf("%q: %+v", l, m)
		}
	}
}

package outfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cgpeak/cgpeak/internal/outfile/outfiletest"
)

func TestFailedWritesLeaveTargetAsItWas(t *testing.T) {
	dir := t.TempDir()
	targets := outfiletest.Targets(t, dir)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	failing := errors.New("the work failed")
	for name, path := range targets {
		before := outfiletest.Snap(path)
		// The work fails after writing: nothing may change.
		err := Write(path, func(w io.Writer) error {
			w.Write([]byte("half a report"))
			return failing
		})
		if err == nil {
			t.Errorf("%s: a failed fill was committed", name)
		}
		if after := outfiletest.Snap(path); after != before {
			t.Errorf("%s: changed by a failed write:\n before %+v\n after  %+v", name, before, after)
		}
		// The work succeeds: special files are written in place, the
		// others refuse (and stay).
		err = Write(path, func(w io.Writer) error {
			_, err := w.Write([]byte("a report\n"))
			return err
		})
		after := outfiletest.Snap(path)
		switch name {
		case outfiletest.DeviceNode:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case outfiletest.FullDevice:
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("%s: want ENOSPC, got %v", name, err)
			}
		default:
			if err == nil {
				t.Errorf("%s: written", name)
			}
		}
		if after != before {
			t.Errorf("%s: changed:\n before %+v\n after  %+v", name, before, after)
		}
	}
	// A FIFO is written in place, not replaced by a regular file.
	got := make(chan string)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	if err := Write(fifo, func(w io.Writer) error { _, err := io.WriteString(w, "through\n"); return err }); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "through\n" {
		t.Errorf("fifo read %q", s)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo replaced: %v %v", st.Mode(), err)
	}
}

func TestRegularFileReplacedOnlyOnCommit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(p, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("report.txt", link); err != nil {
		t.Fatal(err)
	}
	o, err := Create(link)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "new\n")
	if b, _ := os.ReadFile(p); string(b) != "old\n" {
		t.Errorf("before commit the file reads %q", b)
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new\n" {
		t.Errorf("after commit the file reads %q", b)
	}
	if st, _ := os.Lstat(link); st.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced instead of the file it names")
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("permissions %v, want the old 0640", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}
	// A new file that is aborted is never made.
	n := filepath.Join(dir, "new.txt")
	o, err = Create(n)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "x")
	o.Abort()
	if _, err := os.Lstat(n); !os.IsNotExist(err) {
		t.Errorf("an aborted new file exists: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// "-" is standard output: checked without a file, written in place, and
// left open after Commit and Abort (later reports still go there).
func TestDashIsStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	saved := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = saved }()
	if err := Check(Stdout); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one\n", "two\n"} {
		if err := Write(Stdout, func(o io.Writer) error { _, err := io.WriteString(o, s); return err }); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Create(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if _, err := w.WriteString("three\n"); err != nil {
		t.Fatalf("stdout closed by Abort: %v", err)
	}
	w.Close()
	b, _ := io.ReadAll(r)
	if string(b) != "one\ntwo\nthree\n" {
		t.Errorf("stdout got %q", b)
	}
	if _, err := os.Stat(Stdout); err == nil {
		t.Error("a file named - was made")
	}
}

package launcher

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"golang.org/x/sys/unix"
)

// The launcher's wall time is the command's own: at least what the command
// sleeps, and less than cgpeak's view from starting the launcher to reading
// its result, which also holds the launcher's own start.
func TestLauncherTimesTheCommand(t *testing.T) {
	if !Available() {
		t.Skip("no launcher image for this architecture")
	}
	h, err := cgroup.FindMemory()
	if err != nil {
		t.Skipf("no memory cgroup controller on this machine: %v", err)
	}
	// The test's own cgroup: moving the child where it already is changes nothing.
	var cg *os.File
	if h.V2 {
		cg, err = os.Open(h.Self)
	} else {
		cg, err = os.OpenFile(filepath.Join(h.Self, "cgroup.procs"), os.O_WRONLY, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	for _, c := range []struct {
		args  []string
		sleep time.Duration
		code  int
	}{
		{[]string{"sleep", "0.2"}, 200 * time.Millisecond, 0},
		{[]string{"sh", "-c", "sleep 0.05; exit 3"}, 50 * time.Millisecond, 3},
	} {
		path, err := exec.LookPath(c.args[0])
		if err != nil {
			t.Skip(err)
		}
		l, err := Command(h.V2, cg, path, c.args)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		r, err := l.Wait()
		outer := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.ExitStatus() != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, r.Status.ExitStatus(), c.code)
		}
		if r.Wall < c.sleep || r.Wall > outer {
			t.Errorf("%v: launcher wall %v, want between the sleep %v and cgpeak's outer %v", c.args, r.Wall, c.sleep, outer)
		}
		t.Logf("%v: command %v, cgpeak's outer view %v", c.args, r.Wall, outer)
	}
}

// On v1 the child joins the cgroup by writing cgroup.procs, which can wait
// for an RCU grace period: cgpeak's cost, kept out of the command's time.
// A full pipe stands in for cgroup.procs, so the join blocks until the test
// drains it; the command's wall time must not hold that wait.
func TestLauncherV1JoinIsOutsideTheTime(t *testing.T) {
	if !Available() {
		t.Skip("no launcher image for this architecture")
	}
	path, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// Fd puts the pipe in blocking mode: take it once, fill the pipe without
	// blocking, then leave it blocking for the child's write.
	fd := int(w.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := unix.Write(fd, make([]byte, 4096)); err != nil {
			break
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		t.Fatal(err)
	}
	l, err := Command(false, w, path, []string{"true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	// Were the join inside the command's time, that time would be at
	// least held: so the check below needs no assumption about how fast
	// true runs on a loaded machine, only that it takes less than held.
	const held = 1500 * time.Millisecond
	time.Sleep(held)
	go io.Copy(io.Discard, r)
	res, err := l.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Status.ExitStatus() != 0 {
		t.Fatalf("true exited %d", res.Status.ExitStatus())
	}
	if res.Wall <= 0 || res.Wall >= held {
		t.Errorf("the command's wall time is %v with the cgroup join held %v: the join is inside it", res.Wall, held)
	}
	t.Logf("join held %v, command %v", held, res.Wall)
}

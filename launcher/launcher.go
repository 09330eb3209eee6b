// Package launcher starts a measured command from a process a few pages in
// size, inside its cgroup, so ru_maxrss and CPU times are the command's own.
// See launcher.c for why.
package launcher

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Available reports whether this architecture has a launcher image.
func Available() bool { return len(image) > 0 }

var (
	memfdOnce sync.Once
	memfd     *os.File
	memfdErr  error
)

// binary returns a path to the launcher, executable from any child of this process.
func binaryPath() (string, error) {
	memfdOnce.Do(func() {
		fd, err := unix.MemfdCreate("cgpeak-launcher", unix.MFD_CLOEXEC)
		if err != nil {
			memfdErr = fmt.Errorf("creating launcher memfd: %w", err)
			return
		}
		// The child execs this path after its ExtraFiles were moved onto
		// fds 3 and 4: a memfd numbered 3 or 4 would be shadowed there (the
		// exec then fails with EACCES on the pipe), so keep it well above.
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 64)
		unix.Close(fd)
		if err != nil {
			memfdErr = fmt.Errorf("moving launcher memfd: %w", err)
			return
		}
		memfd = os.NewFile(uintptr(high), "cgpeak-launcher")
		if _, err := memfd.Write(image); err != nil {
			memfdErr = fmt.Errorf("writing launcher: %w", err)
		}
	})
	if memfdErr != nil {
		return "", memfdErr
	}
	return "/proc/self/fd/" + strconv.Itoa(int(memfd.Fd())), nil
}

// Result is the command's end as the launcher saw it through wait4.
type Result struct {
	Status syscall.WaitStatus
	Rusage syscall.Rusage
	// ExecErr: the command could not be executed (the status is then the
	// child's 127 or 126); nil when it ran.
	ExecErr error
	// Wall is the command's own wall time, CLOCK_MONOTONIC from the moment
	// its process is in the run's cgroup (just before clone3 on v2, just
	// after joining cgroup.procs on v1) to wait4's return: cgpeak's start of
	// the launcher and the v1 migration are not in it.
	Wall time.Duration
}

type wire struct {
	Status int32
	Err    int32
	Ru     syscall.Rusage
	WallNs int64
}

// Launch is a started launcher.
type Launch struct {
	Cmd *exec.Cmd
	res *os.File
}

// Command prepares the launcher for path/args. cg is the cgroup directory (v2)
// or the v1 cgroup.procs file opened for writing.
func Command(v2 bool, cg *os.File, path string, args []string) (*Launch, error) {
	bin, err := binaryPath()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	mode := "1"
	if v2 {
		mode = "2"
	}
	c := exec.Command(bin, append([]string{mode, path}, args...)...)
	c.Args[0] = "cgpeak-launcher"
	c.ExtraFiles = []*os.File{w, cg}
	return &Launch{Cmd: c, res: r}, nil
}

// As makes the command run as uid and gid with the given supplementary
// groups: the launcher's child drops to them once inside the cgroup. env is
// the command's environment (its HOME and user names).
func (l *Launch) As(uid, gid uint32, groups []uint32, env []string) {
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = strconv.FormatUint(uint64(g), 10)
	}
	l.Cmd.Args[1] += fmt.Sprintf(":%d:%d:%s", uid, gid, strings.Join(gs, ","))
	l.Cmd.Env = env
}

// ExitCantDrop is the launcher child's exit code when it cannot become the
// user As named.
const ExitCantDrop = 123

// Start starts the launcher.
func (l *Launch) Start() error {
	err := l.Cmd.Start()
	// Our copy of the write end must close so a dead launcher reads as EOF.
	l.Cmd.ExtraFiles[0].Close()
	if err != nil {
		l.res.Close()
	}
	return err
}

// Wait waits for the launcher and returns the command's status and rusage.
func (l *Launch) Wait() (Result, error) {
	defer l.res.Close()
	var w wire
	rerr := binary.Read(l.res, binary.NativeEndian, &w)
	var execErr error
	if rerr == nil && w.Status == -1 {
		// The child's report of a failed exec comes first.
		execErr = syscall.Errno(w.Err)
		rerr = binary.Read(l.res, binary.NativeEndian, &w)
	}
	werr := l.Cmd.Wait()
	if rerr != nil {
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return Result{}, fmt.Errorf("launcher ended without a result: %v", werr)
		}
		return Result{}, fmt.Errorf("reading launcher result: %w", rerr)
	}
	if w.Err != 0 {
		return Result{}, fmt.Errorf("starting the command: %w", syscall.Errno(w.Err))
	}
	return Result{Status: syscall.WaitStatus(w.Status), Rusage: w.Ru, ExecErr: execErr, Wall: time.Duration(w.WallNs)}, nil
}

package runner

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit codes of the shim's own failures.
const (
	exitCgroup   = 3
	exitInternal = 125
)

// Shim is the child on cgroup v1 without a launcher, where no clone flag
// places a child in a cgroup: it joins the leaf (fd 3 is the leaf's
// cgroup.procs) and then execs the command, so every page of the command is
// charged to the leaf. args are what followed ShimArg; it never returns.
func Shim(args []string) {
	if len(args) < 2 {
		os.Exit(exitInternal)
	}
	procs := os.NewFile(3, "cgroup.procs")
	if _, err := procs.Write([]byte("0")); err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: joining the run's cgroup: %v\n", err)
		os.Exit(exitCgroup)
	}
	procs.Close()
	err := syscall.Exec(args[0], args[1:], os.Environ())
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		errno = syscall.EINVAL
	}
	xe := NewExecError(args[0], errno)
	fmt.Fprintln(os.Stderr, "cgpeak:", xe)
	os.Exit(xe.Code)
}

// SignalName names a signal as kill -l does, e.g. SIGINT.
func SignalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if n := unix.SignalName(s); n != "" {
			return n
		}
	}
	return sig.String()
}

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// shimArg marks cgpeak re-executed as the child on cgroup v1, where no clone
// flag places a child in a cgroup: it joins the leaf (fd 3 is the leaf's
// cgroup.procs) and then execs the command, so every page of the command is
// charged to the leaf.
const shimArg = "__cgpeak-shim"

func shim(args []string) {
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
	xe := newExecError(args[0], errno)
	fmt.Fprintln(os.Stderr, "cgpeak:", xe)
	os.Exit(xe.code)
}

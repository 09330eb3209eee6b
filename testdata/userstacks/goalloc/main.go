// Command goalloc is a workload with a known answer for cgpeak's user
// stacks: allocSmall allocates and writes 1 MiB, allocBig 3 MiB, so the
// pages charged from them are 1:3 (plus the runtime's own).
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

var keep [][]byte

// Fresh spans come zeroed from the kernel, so their pages are charged at the
// first write: each function writes its own, one byte a page, and so is the
// innermost user frame of those charges.

//go:noinline
func allocSmall(n int) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	keep = append(keep, b)
}

//go:noinline
func allocBig(n int) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	keep = append(keep, b)
}

func main() {
	mib := 1
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "usage: goalloc [MIB]: allocSmall allocates MIB MiB, allocBig three times that")
			os.Exit(2)
		}
		mib = n
	}
	// Transparent huge pages would charge 512 pages at a time, whatever
	// the function asked for, and the runtime's start already faults the
	// heap's first huge page: turn them off, and start again without them
	// (the setting survives exec).
	const prSetTHPDisable, prGetTHPDisable = 41, 42
	if on, _, _ := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTHPDisable, 0, 0); on == 0 {
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTHPDisable, 1, 0); e != 0 {
			fmt.Fprintln(os.Stderr, "goalloc: prctl(PR_SET_THP_DISABLE):", e)
			os.Exit(1)
		}
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, os.Environ())
		}
		fmt.Fprintln(os.Stderr, "goalloc: starting again without huge pages:", err)
		os.Exit(1)
	}
	allocSmall(mib << 20)
	allocBig(3 * mib << 20)
}

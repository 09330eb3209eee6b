package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/probe"
	"github.com/cgpeak/cgpeak/internal/runas"
)

// specNames names the measured commands for the systemd scope's description.
func specNames(specs []commandSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return strings.Join(names, "; ")
}

func closeSource(src *cgroup.Source) {
	if err := src.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
	}
}

// chooseUser settles who the command runs as: --user, else under sudo the
// user who ran sudo, so that a benchmark does not silently run as root only
// because cgpeak needed root for tracing. It also refuses --trace to a user
// who cannot load BPF programs, naming the fix.
func chooseUser(o *runOpts) int {
	euid := os.Geteuid()
	if o.trace.on && !probe.CanTrace() {
		fmt.Fprintln(os.Stderr, "cgpeak: --trace needs root (CAP_BPF and CAP_PERFMON): run sudo cgpeak run --trace ...; the command still runs as you")
		return exitTrace
	}
	var id *runas.Identity
	var err error
	switch {
	case o.user != "" && euid != 0:
		fmt.Fprintf(os.Stderr, "cgpeak: --user %s needs root; without it the command runs as you\n", o.user)
		return exitUsage
	case o.user != "":
		id, err = runas.Lookup(o.user)
	default:
		id, err = runas.FromSudo(euid, os.Getenv)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak: --user:", err)
		return exitUsage
	}
	if id != nil && id.Self() {
		id = nil // already that user
	}
	o.trace.as = id
	return 0
}

// runAs makes the command run as id: through the launcher, which drops to
// it once in the cgroup, or through the kernel's credentials when there is
// no launcher.

package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/cgroup"
)

// targetOpts pick the running cgroup that trace and watch look at: by its
// directory or by a process in it, and for how long.
type targetOpts struct {
	cgroup   string
	pid      int
	duration time.Duration
}

func (t *targetOpts) flags(fs *pflag.FlagSet, verb string) {
	fs.StringVar(&t.cgroup, "cgroup", "", verb+" this running cgroup: its directory, or its path relative to the memory hierarchy's mount")
	fs.IntVar(&t.pid, "pid", 0, verb+" the memory cgroup this running process belongs to")
	fs.DurationVar(&t.duration, "duration", 0, "stop after this long (e.g. 30s, 5m); default: until Ctrl-C or the cgroup goes away")
}

// check validates the flags; cmd names the command, and run how to run a
// command instead, for the error of one given.
func (t *targetOpts) check(cmd, run string, args []string) error {
	switch {
	case len(args) > 0:
		return fmt.Errorf("%s takes no command (%q): to run one, use %s", cmd, args[0], run)
	case (t.cgroup == "") == (t.pid == 0):
		return fmt.Errorf("%s needs exactly one of --cgroup PATH or --pid PID", cmd)
	case t.pid < 0:
		return fmt.Errorf("--pid %d: give the pid of a running process", t.pid)
	case t.duration < 0:
		return fmt.Errorf("--duration must be positive, e.g. 30s")
	}
	return nil
}

func (t *targetOpts) resolve() (*cgroup.Leaf, error) {
	if t.pid != 0 {
		return cgroup.OfPID(t.pid)
	}
	return cgroup.Existing(t.cgroup)
}

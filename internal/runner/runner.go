// Package runner starts one command inside a cgroup leaf, waits for it, and
// measures it: wall time, the command tree's rusage, and the leaf's figures
// read before the leaf goes away. It kills the whole tree when asked to stop.
package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/runas"
	"github.com/cgpeak/cgpeak/launcher"
)

// Exit codes a shell gives a command it cannot run.
const (
	ExitNotFound = 127
	ExitNoExec   = 126
)

// Report is one run's figures; JSON field names are stable (docs/json.md).
type Report struct {
	Command       []string          `json:"command"`
	Cgroup        string            `json:"cgroup"`
	CgroupFrom    string            `json:"cgroup_from,omitempty"`
	RanAs         string            `json:"ran_as,omitempty"`
	CgroupVersion int               `json:"cgroup_version"`
	WallSeconds   float64           `json:"wall_seconds"`
	WallSource    string            `json:"wall_source"`
	UserSeconds   float64           `json:"user_seconds"`
	SysSeconds    float64           `json:"sys_seconds"`
	PeakBytes     *uint64           `json:"cgroup_peak_bytes,omitempty"`
	PeakSource    string            `json:"cgroup_peak_source,omitempty"`
	SwapPeakBytes *uint64           `json:"swap_peak_bytes,omitempty"`
	SwapSource    string            `json:"swap_peak_source,omitempty"`
	MaxRSSBytes   uint64            `json:"ru_maxrss_bytes"`
	Stat          map[string]uint64 `json:"memory_stat,omitempty"`
	Events        map[string]uint64 `json:"memory_events,omitempty"`
	ExitCode      int               `json:"exit_code"`
	Signal        string            `json:"signal,omitempty"`
	OOMKilled     bool              `json:"oom_killed"`
	Interrupted   bool              `json:"interrupted,omitempty"`
	InterruptedBy string            `json:"interrupted_by,omitempty"` // the signal that stopped the run
	Missing       []string          `json:"missing,omitempty"`
	// LeftBehind: processes still in the run's cgroup when the command
	// exited (daemons, background jobs), killed then or waited for.
	LeftBehind []Process `json:"left_behind,omitempty"`
	// StoppedBy is the signal on Command.Stop that ended the run, nil if none.
	StoppedBy os.Signal `json:"-"`
	// Figures are the leaf's, read once the tree was killed.
	Figures cgroup.Figures `json:"-"`
}

// Process is one process the command left behind, and what became of it.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Done: "killed" (at the command's exit, the default), "waited for"
	// (--wait-all), or "killed by a signal to cgpeak" (while waited for).
	Done string `json:"done"`
}

// Where a run's wall time was taken.
const (
	// WallOfCommand: by the launcher, CLOCK_MONOTONIC from the moment the
	// command's process exists in the run's cgroup (clone3 on v2, just after
	// the child joined cgroup.procs on v1) to wait4's return; cgpeak's own
	// start of the launcher, its pipes, the v1 migration and the cgroup's
	// figures are outside it.
	WallOfCommand = "launcher: the command's process, in its cgroup to exit"
	// WallAroundStart: by cgpeak around starting and waiting for the
	// command, where no launcher exists for the architecture.
	WallAroundStart = "cgpeak: around starting and waiting for the command"
	// WallUntilEmpty (--wait-all): the command's time as above, then until
	// the last process it left in its cgroup exited, seen by cgpeak.
	WallUntilEmpty = "launcher, then cgpeak: the command's process to the cgroup's last process's exit"
)

// Command is what to run and how.
type Command struct {
	Path   string   // the program, resolved in PATH
	Args   []string // argv, Args[0] the name it is called by
	Stdout *os.File
	Stdin  *os.File // nil: cgpeak's own standard input
	// Stop delivers the signals that end the run: the tree is killed and
	// the figures so far are reported. Caught by the caller, ideally since
	// before the leaf was made.
	Stop <-chan os.Signal
	// As is the user the command runs as; nil for cgpeak's own.
	As *runas.Identity
	// WaitAll: the run ends when its cgroup is empty, not when the command
	// exits (as systemd-run --wait on a scope); what the command left
	// behind is waited for instead of killed.
	WaitAll bool
}

// ShimArg marks the binary re-executed as the child on cgroup v1 without a
// launcher (see Shim).
const ShimArg = "__cgpeak-shim"

// ExecError says why the kernel would not execute the command; Code is
// 127 or 126 as a shell gives.
type ExecError struct {
	Msg  string
	Code int
}

func (e *ExecError) Error() string { return e.Msg }

// NewExecError says why execve refused path, naming a missing #! interpreter.
func NewExecError(path string, errno syscall.Errno) *ExecError {
	switch errno {
	case syscall.ENOENT:
		msg := fmt.Sprintf("%s: cannot run it: %v", path, errno)
		if interp := shebang(path); interp != "" {
			msg = fmt.Sprintf("%s: cannot run it: its interpreter %s (the #! line) does not exist", path, interp)
		}
		return &ExecError{msg, ExitNotFound}
	case syscall.ENOEXEC:
		return &ExecError{fmt.Sprintf("%s: cannot run it: exec format error (not a program for this machine, or a script without a #! line)", path), ExitNoExec}
	}
	return &ExecError{fmt.Sprintf("%s: cannot run it: %v", path, errno), ExitNoExec}
}

// shebang returns the interpreter a script names on its #! line, or "".
func shebang(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 256)
	n, _ := io.ReadFull(f, b)
	line, _, _ := strings.Cut(string(b[:n]), "\n")
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return ""
	}
	if f := strings.Fields(rest); len(f) > 0 {
		return f[0]
	}
	return ""
}

// Run starts the command inside the leaf, waits for it (killing the whole
// tree on a signal from c.Stop) and reads the figures before the leaf goes
// away. A command the kernel would not execute is an *ExecError.
func Run(leaf *cgroup.Leaf, c Command) (*Report, error) {
	var cg *os.File
	var err error
	if leaf.H.V2 {
		cg, err = os.Open(leaf.Path)
	} else {
		cg, err = os.OpenFile(leaf.Path+"/cgroup.procs", os.O_WRONLY, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the run's cgroup: %w", err)
	}
	defer cg.Close()

	path, args := c.Path, c.Args
	var l *launcher.Launch
	var cmd *exec.Cmd
	var missing []string
	if launcher.Available() {
		if l, err = launcher.Command(leaf.H.V2, cg, path, args); err != nil {
			return nil, err
		}
		cmd = l.Cmd
	} else {
		// No launcher for this architecture: start the command from this
		// process, and say that ru_maxrss is inflated by it.
		missing = append(missing, "exact ru_maxrss: no small launcher for "+runtime.GOARCH+"; ru_maxrss includes cgpeak's own size at exec")
		if leaf.H.V2 {
			cmd = exec.Command(path, args[1:]...)
			cmd.Args[0] = args[0]
			// CLONE_INTO_CGROUP: the child is born in the leaf, so no page is charged elsewhere.
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
		} else {
			self, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("finding cgpeak's own binary: %w", err)
			}
			cmd = exec.Command(self, append([]string{ShimArg, path}, args...)...)
			cmd.ExtraFiles = []*os.File{cg}
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.Stdout, os.Stderr
	runAs(c.As, l, cmd)
	if c.Stdin != nil {
		cmd.Stdin = c.Stdin
	}

	start := time.Now()
	if l != nil {
		err = l.Start()
	} else {
		err = cmd.Start()
	}
	if err != nil {
		var errno syscall.Errno
		if l == nil && errors.As(err, &errno) {
			return nil, NewExecError(path, errno)
		}
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	type end struct {
		ws      syscall.WaitStatus
		ru      syscall.Rusage
		err     error
		execErr error
		wall    time.Duration // the launcher's own timing of the command, 0 without it
	}
	done := make(chan end, 1)
	go func() {
		if l != nil {
			r, err := l.Wait()
			done <- end{r.Status, r.Rusage, err, r.ExecErr, r.Wall}
			return
		}
		err := cmd.Wait()
		var e end
		if cmd.ProcessState != nil {
			e.ws, _ = cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				e.ru = *ru
			}
		} else {
			e.err = err
		}
		done <- e
	}()
	var stoppedBy os.Signal
	var e end
loop:
	for {
		select {
		case e = <-done:
			break loop
		case sig := <-c.Stop:
			if stoppedBy == nil {
				stoppedBy = sig
			}
			_ = leaf.Kill()
		}
	}
	exited := time.Now()
	wall, wallSource := exited.Sub(start), WallAroundStart
	if e.wall > 0 {
		wall, wallSource = e.wall, WallOfCommand
	}
	// Children the command left behind still count: end them (or wait for
	// them) before reading, and say who they were.
	left := leftBehind(leaf)
	if c.WaitAll && len(left) > 0 && stoppedBy == nil {
		sig := waitEmpty(leaf, c.Stop)
		wall += time.Since(exited)
		wallSource = WallUntilEmpty
		for i := range left {
			left[i].Done = "waited for"
			if sig != nil {
				left[i].Done = "killed by a signal to cgpeak"
			}
		}
		if sig != nil {
			stoppedBy = sig
		}
	}
	_ = leaf.Kill()
	if e.execErr != nil {
		var errno syscall.Errno
		if errors.As(e.execErr, &errno) {
			return nil, NewExecError(path, errno)
		}
		return nil, e.execErr
	}
	if e.err != nil {
		return nil, e.err
	}

	rep := &Report{
		Command:       args,
		Cgroup:        leaf.Path,
		CgroupFrom:    leaf.H.From,
		CgroupVersion: 1,
		WallSeconds:   wall.Seconds(),
		WallSource:    wallSource,
		UserSeconds:   tv(e.ru.Utime),
		SysSeconds:    tv(e.ru.Stime),
		MaxRSSBytes:   uint64(e.ru.Maxrss) * 1024,
		Interrupted:   stoppedBy != nil,
		StoppedBy:     stoppedBy,
		LeftBehind:    left,
	}
	if stoppedBy != nil {
		rep.InterruptedBy = SignalName(stoppedBy)
	}
	if c.As != nil {
		rep.RanAs = c.As.String()
	}
	if leaf.H.V2 {
		rep.CgroupVersion = 2
	}
	switch {
	case e.ws.Exited():
		rep.ExitCode = e.ws.ExitStatus()
	case e.ws.Signaled():
		rep.Signal = e.ws.Signal().String()
		rep.ExitCode = 128 + int(e.ws.Signal())
	}
	f := leaf.Read()
	rep.Figures = f
	if f.HavePeak {
		v := f.PeakBytes
		rep.PeakBytes, rep.PeakSource = &v, f.PeakFile
	}
	if f.HaveSwapPeak {
		v := f.SwapPeakBytes
		rep.SwapPeakBytes, rep.SwapSource = &v, f.SwapPeakFile
	}
	rep.Stat, rep.Events = f.Stat, f.Events
	rep.Missing = append(missing, f.Missing...)
	rep.OOMKilled = f.Events["oom_kill"] > 0
	return rep, nil
}

// runAs has the command run as id: the launcher drops to it inside the
// cgroup, or os/exec does where there is no launcher.
func runAs(id *runas.Identity, l *launcher.Launch, cmd *exec.Cmd) {
	if id == nil {
		return
	}
	env := id.Env(os.Environ())
	if l != nil {
		l.As(id.UID, id.GID, id.Groups, env)
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: id.Groups}
	cmd.Env = env
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// leftBehind lists the processes in the leaf once the command was waited
// for: the launcher is not in it (its child alone joined), so each is one
// the command left, killed by default.
func leftBehind(leaf *cgroup.Leaf) []Process {
	pids, _ := leaf.Procs()
	var ps []Process
	for _, p := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err != nil {
			continue // gone meanwhile
		}
		ps = append(ps, Process{PID: p, Comm: strings.TrimSpace(string(comm)), Done: "killed"})
	}
	return ps
}

// waitEmpty waits until the leaf holds no process, or a signal on stop
// (returned) kills what is left. Polled: cgroup.events has no v1
// counterpart, and a run that waits for its daemons is not timed to the
// millisecond past its command.
func waitEmpty(leaf *cgroup.Leaf, stop <-chan os.Signal) os.Signal {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if pids, err := leaf.Procs(); err != nil || len(pids) == 0 {
			return nil
		}
		select {
		case sig := <-stop:
			_ = leaf.Kill()
			return sig
		case <-tick.C:
		}
	}
}

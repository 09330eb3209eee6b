package session

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/procmaps"
	"github.com/cgpeak/cgpeak/internal/symbolize"
	"github.com/cgpeak/cgpeak/loader"
	"github.com/cgpeak/cgpeak/trace"
)

// stackTables writes the process, ustack and kstack lines each charge
// request refers to before the request itself, numbering the stacks for
// the trace (the tracer's keys are hashes), and counts what it could not
// record.
type stackTables struct {
	t      *loader.Tracer
	w      *trace.Writer
	maps   *procmaps.Reader
	uids   map[uint64]uint64 // tracer key -> trace id, 0: not stored
	uips   map[uint64][]trace.UserFrame
	kids   map[uint64]uint64
	inExec map[uint64]bool // kernel stack key -> the request came from inside execve
	procs  map[int]*trace.Process
	seen   map[[2]uint64]bool // (pid, ustack id) checked against the pid's mappings
	counts trace.StackCounts
}

func newStackTables(t *loader.Tracer, w *trace.Writer) *stackTables {
	return &stackTables{t: t, w: w, maps: procmaps.New(), uids: map[uint64]uint64{}, uips: map[uint64][]trace.UserFrame{}, kids: map[uint64]uint64{}, inExec: map[uint64]bool{},
		procs: map[int]*trace.Process{}, seen: map[[2]uint64]bool{}}
}

// annotate sets ev's stack ids, writing the lines they need first.
func (st *stackTables) annotate(ev *analysis.Event) error {
	if ev.Stack != 0 {
		id, ok := st.kids[ev.Stack]
		if !ok {
			frames := st.t.KernelFrames(ev.Stack)
			st.inExec[ev.Stack] = slices.ContainsFunc(frames, func(f string) bool { return slices.Contains(execFrames, f) })
			if len(frames) > 0 {
				id = uint64(len(st.kids) + 1)
				if err := st.w.WriteKernelStack(trace.KernelStack{ID: id, Frames: frames}); err != nil {
					return err
				}
			}
			st.kids[ev.Stack] = id
		}
		ev.KStack = id
	}
	if ev.UStackKey == 0 {
		return nil
	}
	if st.inExec[ev.Stack] {
		// Inside execve the user registers are still the old program's
		// while the new program's mappings may already be in place: the
		// kernel would name the old addresses by the new files.
		st.counts.InExec++
		return nil
	}
	id, ok := st.uids[ev.UStackKey]
	if !ok {
		frames, truncated, found := st.t.UserStack(ev.UStackKey)
		if found {
			id = uint64(len(st.uids) + 1)
			if err := st.w.WriteUserStack(trace.UserStack{ID: id, Frames: frames, Truncated: truncated}); err != nil {
				return err
			}
			st.uips[id] = frames
		}
		st.uids[ev.UStackKey] = id
	}
	if id == 0 {
		st.counts.Unstored++
		return nil
	}
	ev.UStack = id
	k := [2]uint64{uint64(ev.PID), id}
	if st.seen[k] {
		return nil
	}
	st.seen[k] = true
	if p := st.procs[ev.PID]; p != nil && p.Comm == ev.Comm && covers(p, st.uips[id]) {
		return nil
	}
	return st.readMaps(ev.PID, ev.Comm)
}

// execFrames are the kernel functions of execve: a charge request below one
// has no user stack that can be trusted.
var execFrames = []string{"do_execveat_common", "do_execveat_common.isra.0", "bprm_execve", "exec_binprm", "load_elf_binary", "begin_new_exec", "setup_arg_pages"}

// covers: p's mappings hold every bare address of the stack and name a
// path for every build ID in it (only the innermost and outermost frames
// are looked at for addresses: a walk may run past the outermost frame).
func covers(p *trace.Process, frames []trace.UserFrame) bool {
	for i, f := range frames {
		if f.BuildID != "" {
			if !slices.ContainsFunc(p.Mappings, func(m trace.Mapping) bool { return symbolize.SameBuildID(m.BuildID, f.BuildID) }) {
				return false
			}
		} else if _, ok := p.Find(f.IP); !ok && i < len(frames)-1 {
			return false
		}
	}
	return true
}

// readMaps writes a process line for pid as it runs now, which is the
// image that made the request only if its name is still the request's:
// exec renames a process, and maps read after an exec would name the old
// image's addresses with the new image's symbols.
func (st *stackTables) readMaps(pid int, comm string) error {
	p := trace.Process{PID: pid, Comm: comm}
	ms, err := st.maps.Read(pid)
	now, cerr := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	var count *uint64
	switch {
	case errors.Is(err, procmaps.ErrExited) || err == nil && cerr != nil:
		p.Error, count = "exited before its maps were read", &st.counts.Exited
	case err != nil:
		p.Error, count = err.Error(), &st.counts.NoMaps
	case strings.TrimSuffix(string(now), "\n") != comm:
		p.Error, count = fmt.Sprintf("exec'd (now %q) before its maps were read", strings.TrimSuffix(string(now), "\n")), &st.counts.Execd
	default:
		p.Mappings = ms
	}
	old := st.procs[pid]
	if old != nil && old.Comm == comm && (p.Error != "" && old.Error == "" || slices.Equal(old.Mappings, p.Mappings)) {
		// Nothing new: maps read before stay (a stack the walk took past
		// the outermost frame has addresses no mapping holds).
		return nil
	}
	if count != nil {
		*count++
	} else {
		st.counts.Processes++
	}
	st.procs[pid] = &p
	return st.w.WriteProcess(p)
}

// end is the end line's account, with the kernel's counts.
func (st *stackTables) end() (*trace.StackCounts, error) {
	c, err := st.t.UserStacks()
	st.counts.Walked, st.counts.Reused, st.counts.Failed, st.counts.NotUser, st.counts.Truncated = c.Walked, c.Reused, c.Failed, c.NotUser, c.Truncated
	out := st.counts
	return &out, err
}

// commandFile finds the executable a command runs (as exec would, by PATH)
// and its build ID; "" for what cannot be found or read.
func commandFile(name string) (path, id string) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	id, err = symbolize.FileID(p)
	if err != nil {
		return "", ""
	}
	return p, id
}

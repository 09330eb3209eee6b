package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hierarchy says where the memory controller lives and where this process sits in it.
type Hierarchy struct {
	V2    bool
	Mount string // mount point of the hierarchy that holds memory
	Self  string // this process's cgroup directory in it

	// Set by Acquire: where the runs' leaves go (memory already enabled
	// there), the provider's name, and how the place was had, for reports.
	Base     string
	Provider string
	From     string
}

// FindMemory locates the memory controller from this process's mountinfo and
// cgroup membership: v2 unified, v1 legacy, or hybrid (v1 memory beside cgroup2).
func FindMemory() (Hierarchy, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("reading mountinfo: %w", err)
	}
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return Hierarchy{}, fmt.Errorf("reading /proc/self/cgroup: %w", err)
	}
	mounts, err := ParseMountinfo(bytes.NewReader(mi))
	if err != nil {
		return Hierarchy{}, err
	}
	members, err := ParseProcCgroup(bytes.NewReader(pc))
	if err != nil {
		return Hierarchy{}, err
	}
	return locate(mounts, members, func(dir string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	})
}

// locate is FindMemory without the file system, so fake trees can test it.
func locate(mounts []Mount, members []Membership, controllers func(dir string) ([]byte, error)) (Hierarchy, error) {
	for _, m := range mounts {
		if m.V2 || !has(m.Controllers, "memory") {
			continue
		}
		for _, c := range members {
			if has(c.Controllers, "memory") {
				return Hierarchy{Mount: m.Point, Self: join(m, c.Path)}, nil
			}
		}
		return Hierarchy{}, errors.New("memory controller is mounted (v1) but /proc/self/cgroup has no memory line")
	}
	for _, m := range mounts {
		if !m.V2 {
			continue
		}
		for _, c := range members {
			if c.ID != 0 || len(c.Controllers) != 0 {
				continue
			}
			b, err := controllers(m.Point)
			if err != nil {
				continue
			}
			if has(strings.Fields(string(b)), "memory") {
				return Hierarchy{V2: true, Mount: m.Point, Self: join(m, c.Path)}, nil
			}
		}
	}
	return Hierarchy{}, errors.New("no memory cgroup controller found: mount cgroup2 with the memory controller enabled, or the v1 memory hierarchy")
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// join maps a cgroup path from /proc/self/cgroup to a directory under a mount,
// allowing for mounts that expose only a subtree (containers).
func join(m Mount, p string) string {
	rel := p
	if m.Root != "/" {
		rel = strings.TrimPrefix(p, m.Root)
	}
	return filepath.Join(m.Point, rel)
}

// Leaf is one cgroup cgpeak measures: a run's own fresh leaf, or one found
// by Existing or OfPID.
type Leaf struct {
	H    Hierarchy
	Path string
}

// NamePrefix starts every cgroup cgpeak makes. After it come the owner's pid
// and, after a "t", the owner's start time in clock ticks since boot
// (/proc/PID/stat field 22): together they name one process for the life
// of the system, whatever its binary is called, so a later run can tell a
// live owner from a dead one whose pid was reused.
const NamePrefix = "cgpeak-"

// LeavesOf lists the cgroups in dir that the process pid made (its leaves
// and scopes, by their names). A check for leftovers looks at these, never
// at every cgpeak cgroup in dir: other cgpeaks, and other test binaries run
// at the same time, make their own beside them.
func LeavesOf(dir string, pid int) []string {
	m, _ := filepath.Glob(filepath.Join(dir, NamePrefix+strconv.Itoa(pid)+"-*"))
	return m
}

// leafName is the name of this process's i-th leaf attempt.
func leafName(i int) string {
	return fmt.Sprintf("%s%s-%d-%d", NamePrefix, owner(), time.Now().UnixNano()%1e9, i)
}

// owner names this process for the names of what it makes: its pid and,
// after a "t", its start time. Without a start time what it makes is kept
// while the pid lives.
func owner() string {
	start, err := startTime(os.Getpid())
	if err != nil {
		return strconv.Itoa(os.Getpid())
	}
	return fmt.Sprintf("%d-t%d", os.Getpid(), start)
}

// startTime reads a process's start time, in clock ticks since boot.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStartTime(string(b))
}

// parseStartTime reads field 22 of /proc/PID/stat. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself: the
// fields are counted after its last ')'.
func parseStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 20 {
		return 0, errors.New("malformed /proc/PID/stat: too few fields")
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22; f[0] is field 3
}

// ownerGone reports whether the cgpeak that made the leaf called name is
// provably gone: its pid runs no more, or runs a process that started at
// another time. A leaf of another format, or this process's own, is kept.
func ownerGone(name string) bool {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return false
	}
	parts := strings.Split(rest, "-")
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	now, err := startTime(pid)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil || len(parts) < 2 || !strings.HasPrefix(parts[1], "t") {
		return false // cannot tell, or an older name without a start time: keep it
	}
	was, err := strconv.ParseUint(parts[1][1:], 10, 64)
	return err == nil && was != now
}

// Parent returns the directory a run's leaf goes in, and whether the memory
// controller must first be enabled in its cgroup.subtree_control.
//
// v1 has no placement rule: the leaf goes under our own cgroup. v2 forbids
// internal processes: a cgroup holding cgpeak cannot also give memory to a
// child, so unless we sit in the root (which is exempt) the leaf goes beside
// our cgroup, whose parent already grants memory when our cgroup has it.
func (h Hierarchy) Parent() (dir string, enable bool) {
	if h.Base != "" {
		return h.Base, false
	}
	if !h.V2 || filepath.Clean(h.Self) == filepath.Clean(h.Mount) {
		return h.Self, h.V2
	}
	b, _ := os.ReadFile(filepath.Join(h.Self, "cgroup.controllers"))
	return filepath.Dir(h.Self), !has(strings.Fields(string(b)), "memory")
}

// NewLeaf makes a fresh, uniquely named leaf for one run, enabling the
// memory controller above it where needed.
func NewLeaf(h Hierarchy) (*Leaf, error) {
	parent, enable := h.Parent()
	CleanStale(parent)
	if enable {
		if err := enableMemory(parent); err != nil {
			return nil, err
		}
	}
	for i := 0; i < 100; i++ {
		p := filepath.Join(parent, leafName(i))
		err := os.Mkdir(p, 0o755)
		if err == nil {
			return &Leaf{H: h, Path: p}, nil
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return nil, fmt.Errorf("creating cgroup in %s: %w (run as root, or in a cgroup delegated to you)", parent, err)
		}
		return nil, fmt.Errorf("creating cgroup %s: %w", p, err)
	}
	return nil, fmt.Errorf("creating cgroup in %s: no free name", parent)
}

func enableMemory(dir string) error {
	f := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(f)
	if err == nil && has(strings.Fields(string(b)), "memory") {
		return nil
	}
	if err := os.WriteFile(f, []byte("+memory"), 0); err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("enabling memory in %s: %w (the cgroup holds processes; v2 forbids internal processes: run cgpeak from a cgroup of its own, e.g. systemd-run --scope)", dir, err)
		}
		return fmt.Errorf("enabling memory controller in %s: %w", f, err)
	}
	return nil
}

// CleanStale removes leaves left in dir by cgpeak processes that no longer run.
func CleanStale(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !ownerGone(e.Name()) {
			continue
		}
		l := &Leaf{Path: filepath.Join(dir, e.Name())}
		_ = l.Kill()
		_ = l.Remove()
	}
}

// Procs lists the pids in the leaf.
func (l *Leaf) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(l.Path, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Kill ends every process in the leaf: cgroup.kill where the kernel has it,
// else SIGKILL to each pid until cgroup.procs is empty.
func (l *Leaf) Kill() error {
	if err := os.WriteFile(filepath.Join(l.Path, "cgroup.kill"), []byte("1"), 0); err == nil {
		return l.waitEmpty()
	}
	for i := 0; i < 200; i++ {
		pids, err := l.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("killing processes in %s: still not empty", l.Path)
}

func (l *Leaf) waitEmpty() error {
	for i := 0; i < 400; i++ {
		pids, err := l.Procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("processes in %s did not exit", l.Path)
}

// Remove deletes the leaf, retrying the EBUSY rmdir gives for a while after
// the last process exited.
func (l *Leaf) Remove() error {
	var err error
	for i := 0; i < 200; i++ {
		err = syscall.Rmdir(l.Path)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", l.Path, err)
}

func (l *Leaf) readUint(name string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(l.Path, name))
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, fmt.Errorf("%s is unlimited", name)
	}
	return strconv.ParseUint(s, 10, 64)
}

func (l *Leaf) readFlat(name string) (map[string]uint64, error) {
	b, err := os.ReadFile(filepath.Join(l.Path, name))
	if err != nil {
		return nil, err
	}
	m, err := ParseFlatKeyed(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	return m, nil
}

// ErrSwapWithoutMemory: v1 limits memory and swap together, so a swap
// limit needs a memory limit.
var ErrSwapWithoutMemory = errors.New("a swap limit on cgroup v1 needs a memory limit too (v1 limits memory+swap together)")

// SetLimits applies a memory and a swap limit; negative leaves one unset.
func (l *Leaf) SetLimits(mem, swap int64) error {
	if l.H.V2 {
		if mem >= 0 {
			if err := os.WriteFile(filepath.Join(l.Path, "memory.max"), []byte(strconv.FormatInt(mem, 10)), 0); err != nil {
				return fmt.Errorf("setting memory.max: %w", err)
			}
		}
		if swap >= 0 {
			if err := os.WriteFile(filepath.Join(l.Path, "memory.swap.max"), []byte(strconv.FormatInt(swap, 10)), 0); err != nil {
				return fmt.Errorf("setting memory.swap.max: %w (is swap accounting enabled?)", err)
			}
		}
		return nil
	}
	if mem >= 0 {
		if err := os.WriteFile(filepath.Join(l.Path, "memory.limit_in_bytes"), []byte(strconv.FormatInt(mem, 10)), 0); err != nil {
			return fmt.Errorf("setting memory.limit_in_bytes: %w", err)
		}
	}
	if swap >= 0 {
		// v1 limits memory+swap together.
		total := swap
		if mem >= 0 {
			total += mem
		} else {
			return ErrSwapWithoutMemory
		}
		if err := os.WriteFile(filepath.Join(l.Path, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(total, 10)), 0); err != nil {
			return fmt.Errorf("setting memory.memsw.limit_in_bytes: %w (is swap accounting enabled?)", err)
		}
	}
	return nil
}

// Figures are what the kernel says about a leaf, each with the file it came from.
type Figures struct {
	Peak, PeakFile string
	PeakBytes      uint64
	HavePeak       bool
	SwapPeakBytes  uint64
	SwapPeakFile   string
	HaveSwapPeak   bool
	CurrentBytes   uint64
	Stat           map[string]uint64
	Events         map[string]uint64
	Missing        []string // figures the kernel does not offer, and why
}

// Read collects the leaf's figures. It must run before Remove.
func (l *Leaf) Read() Figures {
	var f Figures
	peakName, curName, swapName := "memory.peak", "memory.current", "memory.swap.peak"
	if !l.H.V2 {
		peakName, curName, swapName = "memory.max_usage_in_bytes", "memory.usage_in_bytes", "memory.memsw.max_usage_in_bytes"
	}
	if v, err := l.readUint(peakName); err == nil {
		f.PeakBytes, f.HavePeak, f.PeakFile = v, true, peakName
	} else {
		f.Missing = append(f.Missing, fmt.Sprintf("cgroup peak: %s: %v (memory.peak needs Linux 5.19+)", peakName, err))
	}
	if v, err := l.readUint(swapName); err == nil {
		// On v1 this is memsw: memory and swap together.
		f.SwapPeakFile = swapName
		f.SwapPeakBytes, f.HaveSwapPeak = v, true
	} else {
		f.Missing = append(f.Missing, fmt.Sprintf("swap peak: %s: %v", swapName, errShort(err)))
	}
	if v, err := l.readUint(curName); err == nil {
		f.CurrentBytes = v
	}
	if m, err := l.readFlat("memory.stat"); err == nil {
		f.Stat = m
	}
	if l.H.V2 {
		if m, err := l.readFlat("memory.events"); err == nil {
			f.Events = m
		}
	} else if b, err := os.ReadFile(filepath.Join(l.Path, "memory.oom_control")); err == nil {
		if m, err := ParseFlatKeyed(bytes.NewReader(b)); err == nil {
			f.Events = map[string]uint64{"oom_kill": m["oom_kill"]}
		}
		if v, err := l.readUint("memory.failcnt"); err == nil {
			f.Events["max"] = v
		}
	}
	return f
}

func errShort(err error) string {
	if errors.Is(err, os.ErrNotExist) {
		return "not offered by this kernel (no swap accounting)"
	}
	return err.Error()
}

// Existing finds a cgroup someone else made (a container, a service) in the
// memory hierarchy: a directory under its mount, or a path relative to it as
// /proc/PID/cgroup prints it.
func Existing(path string) (*Leaf, error) {
	h, err := FindMemory()
	if err != nil {
		return nil, err
	}
	dir := filepath.Clean(path)
	mount := filepath.Clean(h.Mount)
	if !filepath.IsAbs(dir) || !within(dir, mount) {
		dir = filepath.Join(h.Mount, path)
	}
	if !within(dir, mount) {
		return nil, fmt.Errorf("cgroup %s is outside the memory hierarchy at %s: %w", path, h.Mount, ErrNoMemory)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("no cgroup %s in the memory hierarchy at %s: give its directory or its path relative to %s", path, h.Mount, h.Mount)
	}
	l := &Leaf{H: h, Path: dir}
	return l, l.hasMemory()
}

// ErrNoMemory: a cgroup the memory controller does not account.
var ErrNoMemory = errors.New("no memory controller there")

func within(dir, top string) bool {
	return dir == top || strings.HasPrefix(dir, strings.TrimSuffix(top, "/")+"/")
}

// hasMemory checks the memory controller accounts the cgroup: on v1 its
// hierarchy has the files; on v2 memory.stat is absent where the parent
// does not enable memory.
func (l *Leaf) hasMemory() error {
	if _, err := os.Stat(filepath.Join(l.Path, "memory.stat")); err != nil {
		return fmt.Errorf("cgroup %s has no memory.stat: %w", l.Path, ErrNoMemory)
	}
	return nil
}

// OfPID finds the memory cgroup a running process belongs to.
func OfPID(pid int) (*Leaf, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	pc, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no process %d: give the pid of a running process", pid)
		}
		return nil, fmt.Errorf("reading the cgroup of process %d: %w", pid, err)
	}
	mounts, err := ParseMountinfo(bytes.NewReader(mi))
	if err != nil {
		return nil, err
	}
	members, err := ParseProcCgroup(bytes.NewReader(pc))
	if err != nil {
		return nil, err
	}
	h, err := locate(mounts, members, func(dir string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	})
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	l := &Leaf{H: h, Path: h.Self}
	return l, l.hasMemory()
}

// Sample is one look at a running cgroup (cgpeak watch): its Figures and
// its limit and memory pressure.
type Sample struct {
	Figures
	Limit    uint64
	Limited  bool
	Pressure *Pressure // v2 with PSI only
}

// ErrIncomplete: a sample could not be read whole (the cgroup is going).
var ErrIncomplete = errors.New("the cgroup's memory files could not be read")

// Sample reads the cgroup's live figures; os.ErrNotExist once it is gone.
func (l *Leaf) Sample() (Sample, error) {
	if _, err := os.Stat(filepath.Join(l.Path, "cgroup.procs")); err != nil {
		return Sample{}, err
	}
	s := Sample{Figures: l.Read()}
	if s.Stat == nil {
		// Removed while being read: its files fail before its directory goes.
		if _, err := os.Stat(filepath.Join(l.Path, "cgroup.procs")); err != nil {
			return Sample{}, err
		}
		return Sample{}, ErrIncomplete
	}
	limitName := "memory.max"
	if !l.H.V2 {
		limitName = "memory.limit_in_bytes"
	}
	if b, err := os.ReadFile(filepath.Join(l.Path, limitName)); err == nil {
		s.Limit, s.Limited, _ = ParseLimit(string(b))
	}
	if l.H.V2 {
		if b, err := os.ReadFile(filepath.Join(l.Path, "memory.pressure")); err == nil {
			if p, err := ParsePressure(bytes.NewReader(b)); err == nil {
				s.Pressure = &p
			}
		}
	}
	return s, nil
}

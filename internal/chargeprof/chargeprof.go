// Package chargeprof turns the charge requests of a trace into stacks, user
// frames then kernel frames, with the pages each charged: a pprof profile,
// folded stacks for flame graphs, and the functions that charged most.
package chargeprof

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/symbolize"
	"github.com/cgpeak/cgpeak/trace"
)

// Builder gathers a trace's charge requests as the trace streams by.
type Builder struct {
	r       *trace.Reader
	samples map[key]*counts
	order   []key
}

type key struct {
	proc           *trace.Process // the process line in force at the request: it exec'd if it changed
	pid            int
	comm           string
	ustack, kstack uint64
	kind, caller   string
	cgroup         uint64
}

type counts struct{ requests, pages uint64 }

// New gathers from r's events, whose tables r keeps.
func New(r *trace.Reader) *Builder {
	return &Builder{r: r, samples: map[key]*counts{}}
}

// Add counts e if it is a charge request that charged (a refused one
// charged nothing).
func (b *Builder) Add(e trace.Event) {
	if e.Op != analysis.OpCharge || e.Failed {
		return
	}
	k := key{proc: b.r.Processes[e.PID], pid: e.PID, comm: e.Comm, ustack: e.UStack, kstack: e.KStack, kind: e.Kind, caller: e.Caller, cgroup: e.Cgroup}
	if k.cgroup == 0 {
		k.cgroup = b.r.Header.CgroupID
	}
	c := b.samples[k]
	if c == nil {
		c = &counts{}
		b.samples[k] = c
		b.order = append(b.order, k)
	}
	c.requests++
	c.pages += e.Pages
}

// Stack is the charge requests sharing one user and kernel stack, kind,
// process and cgroup.
type Stack struct {
	User      []symbolize.Frame // innermost first; empty without a user stack
	UserAddrs []uint64          // the addresses of User
	Mappings  []trace.Mapping   // the mapping of each User frame (zero when none held it)
	NoUser    string            // why there is no user stack ("" when there is one)
	Kernel    []string          // innermost first (try_charge_memcg first)
	Kind      string
	PID       int
	Comm      string
	Cgroup    string
	Requests  uint64
	Pages     uint64
}

// Stacks names every stack's frames. cgroups names cgroup ids (the end
// line's table for descendants); the traced cgroup is the header's.
func (b *Builder) Stacks(sym *symbolize.Symbolizer, cgroups map[string]string) []Stack {
	var out []Stack
	for _, k := range b.order {
		c := b.samples[k]
		s := Stack{Kind: orDefault(k.kind, "unknown"), PID: k.pid, Comm: k.comm, Requests: c.requests, Pages: c.pages, Cgroup: b.cgroupName(k.cgroup, cgroups)}
		if ks, ok := b.r.KStacks[k.kstack]; ok && k.kstack != 0 {
			s.Kernel = ks.Frames
		} else if k.caller != "" {
			s.Kernel = []string{k.caller} // schema 1: only the function that decided the kind
		}
		us, ok := b.r.UStacks[k.ustack]
		switch {
		case k.ustack == 0 && len(b.r.UStacks) == 0:
			s.NoUser = "the trace has no user stacks"
		case k.ustack == 0:
			s.NoUser = "no user stack"
		case !ok:
			s.NoUser = fmt.Sprintf("user stack %d not in the trace", k.ustack)
		}
		frames := us.Frames
		switch {
		case k.proc != nil && k.proc.Error == "":
			// A frame-pointer walk may run past the outermost frame into
			// addresses no mapping holds: those are not frames.
			for len(frames) > 1 {
				f := frames[len(frames)-1]
				if _, ok := k.proc.Find(f.IP); f.BuildID != "" || ok {
					break
				}
				frames = frames[:len(frames)-1]
			}
		case anyIP(frames) && k.proc == nil:
			s.NoUser = "no maps of the process in the trace"
		case anyIP(frames):
			s.NoUser = "no maps: " + k.proc.Error
		}
		for i, f := range frames {
			var m trace.Mapping
			var fr symbolize.Frame
			switch {
			case f.BuildID != "":
				path := b.r.Paths[f.BuildID]
				if path == "" {
					path = b.pathOf(f.BuildID)
				}
				fr = sym.ResolveFile(path, f.BuildID, f.Offset, i > 0)
				m = trace.Mapping{Path: fr.Module, BuildID: f.BuildID, End: 1 << 63}
			case k.proc != nil:
				var found bool
				if m, found = k.proc.Find(f.IP); found {
					fr = sym.Resolve(m, f.IP, i > 0)
				} else {
					fr = symbolize.Frame{Offset: f.IP}
				}
			default:
				fr = symbolize.Frame{Offset: f.IP}
			}
			s.User = append(s.User, fr)
			s.UserAddrs = append(s.UserAddrs, cmp.Or(f.IP, f.Offset))
			s.Mappings = append(s.Mappings, m)
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pages > out[j].Pages })
	return out
}

// pathOf finds a path for a build ID the kernel gave (zero-padded) among
// the process lines' exact ones.
func (b *Builder) pathOf(id string) string {
	for k, p := range b.r.Paths {
		if symbolize.SameBuildID(k, id) {
			return p
		}
	}
	return ""
}

func anyIP(fs []trace.UserFrame) bool {
	for _, f := range fs {
		if f.BuildID == "" {
			return true
		}
	}
	return false
}

func (b *Builder) cgroupName(id uint64, names map[string]string) string {
	if id == b.r.Header.CgroupID {
		return b.r.Header.Cgroup
	}
	if n, ok := names[strconv.FormatUint(id, 10)]; ok {
		return n
	}
	return "id " + strconv.FormatUint(id, 10)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ReadFile gathers the charge requests of a trace file by stack.
func ReadFile(path string) (*Builder, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd, err := trace.NewReader(f)
	if err != nil {
		return nil, err
	}
	b := New(rd)
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		b.Add(e)
	}
}

// End is the trace's end line, nil when it was cut short.
func (b *Builder) End() *trace.End { return b.r.End }

package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/internal/kbtf"
)

// Tracepoint is the backend for kernels without kprobes or fentry: the
// memcg stat tracepoints of Linux 6.13+, attached as raw tracepoints.
const Tracepoint = "tracepoint"

// The stat tracepoints; their first argument is the struct mem_cgroup.
var statTracepoints = []struct{ name, prog string }{
	{"mod_memcg_state", "tp_mod_memcg_state"},
	{"mod_memcg_lruvec_state", "tp_mod_memcg_lruvec_state"},
}

// statItems are the statistics charged to the memory counter, summed as
// real use: BTF enum, value name, the kind the trace calls it.
var statItems = []struct{ enum, name, variable, kind string }{
	{"node_stat_item", "NR_ANON_MAPPED", "item_anon", "anon"},
	{"node_stat_item", "NR_FILE_PAGES", "item_file", "file"}, // shmem included
	{"memcg_stat_item", "MEMCG_KMEM", "item_kernel", "kernel"},
	// Socket buffers: charged to the memory counter on cgroup v2 only (v1
	// charges them to tcpmem and never updates this item).
	{"memcg_stat_item", "MEMCG_SOCK", "item_sock", "sock"},
}

var kindNames = map[uint8]string{1: "anon", 2: "file", 3: "kernel", 4: "sock"}

// TracepointBlind is what the tracepoint backend cannot see.
var TracepointBlind = []string{
	"charge requests: stat updates are seen, not the requests nor their kernel stacks (what the pages were for is told by the statistic: anon, file, kernel, sock)",
	"the per-CPU stocks one by one: only usage minus real use, which is the stocks with charges not yet in a statistic",
	"refused and forced charges",
}

// openTracepoint loads and attaches the stat tracepoint programs.
func openTracepoint(o Options, kernelTypes *btf.Spec) (t *Tracer, err error) {
	if kernelTypes == nil {
		return nil, errors.New("no kernel BTF, which the tracepoint programs need")
	}
	for _, tp := range statTracepoints {
		var td *btf.Typedef
		if kernelTypes.TypeByName("btf_trace_"+tp.name, &td) != nil {
			return nil, fmt.Errorf("this kernel has no memcg:%s tracepoint (Linux 6.13+)", tp.name)
		}
	}
	spec, err := bpf.LoadMemcgtp()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	set := func(name string, v any) error {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("configuring the BPF object: %s: %w", name, err)
		}
		return nil
	}
	if err := set("target_cgid", o.CgroupID); err != nil {
		return nil, err
	}
	if o.Descendants {
		if err := set("descendants", uint8(1)); err != nil {
			return nil, err
		}
	}
	if !o.Summary {
		if err := set("every", uint8(1)); err != nil {
			return nil, err
		}
	}
	for _, it := range statItems {
		v, err := enumValue(kernelTypes, it.enum, it.name)
		if err != nil {
			return nil, err
		}
		if err := set(it.variable, int32(v)); err != nil {
			return nil, err
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, kbtf.Options(kernelTypes))
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("the verifier rejected cgpeak's tracepoint programs: %+v", ve)
		}
		return nil, fmt.Errorf("loading BPF programs: %w", err)
	}
	t = &Tracer{Backend: Tracepoint, coll: coll, kinds: map[uint64][2]string{}, tracepoint: true}
	defer func() {
		if err != nil {
			t.Close()
			t = nil
		}
	}()
	if o.RealStart != nil {
		if err := coll.Variables["real_sum"].Set(o.RealStart()); err != nil {
			return nil, fmt.Errorf("setting the starting real use: %w", err)
		}
	}
	for _, tp := range statTracepoints {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: coll.Programs[tp.prog]})
		if err != nil {
			return nil, fmt.Errorf("attaching to the memcg:%s tracepoint: %w", tp.name, err)
		}
		t.links = append(t.links, l)
		t.Functions = append(t.Functions, Function{Name: tp.name, Symbol: "tracepoint memcg:" + tp.name})
	}
	if t.rd, err = ringbuf.NewReader(coll.Maps["events"]); err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return t, nil
}

func enumValue(s *btf.Spec, enum, name string) (uint64, error) {
	var e *btf.Enum
	if err := s.TypeByName(enum, &e); err != nil {
		return 0, fmt.Errorf("kernel BTF has no enum %s: %w", enum, err)
	}
	for _, v := range e.Values {
		if v.Name == name {
			return v.Value, nil
		}
	}
	return 0, fmt.Errorf("kernel BTF: enum %s has no %s", enum, name)
}

// tpEventSize is sizeof(struct tp_event).
const tpEventSize = 80

var tpFnNames = map[uint8]string{1: "mod_memcg_state", 2: "mod_memcg_lruvec_state"}

func decodeTP(b []byte) (analysis.Event, error) {
	if len(b) < tpEventSize {
		return analysis.Event{}, fmt.Errorf("short event: %d bytes, want %d", len(b), tpEventSize)
	}
	le := binary.LittleEndian
	var e analysis.Event
	e.Time = le.Uint64(b[0:])
	e.Usage = le.Uint64(b[8:])
	e.Watermark = le.Uint64(b[16:])
	e.Real = int64(le.Uint64(b[24:]))
	e.Cgroup = le.Uint64(b[32:])
	delta := int32(le.Uint32(b[40:]))
	e.Op, e.Pages = analysis.OpStatAdd, uint64(delta)
	if delta < 0 {
		e.Op, e.Pages = analysis.OpStatSub, uint64(-int64(delta))
	}
	e.CPU = int(le.Uint32(b[48:]))
	e.PID = int(le.Uint32(b[52:]))
	e.TID = int(le.Uint32(b[56:]))
	e.Fn = tpFnNames[b[60]]
	e.Kind = kindNames[b[61]]
	e.Counter = analysis.CounterMemory
	comm := b[64:80]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	e.Comm = string(comm)
	return e, nil
}

// RealSum reads the tracepoint programs' running sum of the charged
// statistics, in pages: real use as the kernel side keeps it.
func (t *Tracer) RealSum() (int64, error) {
	if !t.tracepoint {
		return 0, errors.New("no running sum of the statistics: not the tracepoint backend")
	}
	var v int64
	if err := t.coll.Variables["real_sum"].Get(&v); err != nil {
		return 0, fmt.Errorf("reading the running sum of the statistics: %w", err)
	}
	return v, nil
}

// Tracepoint: the tracer is the tracepoint backend.
func (t *Tracer) Tracepoint() bool { return t.tracepoint }

// tpSummary reads what the tracepoint programs kept per CPU.
func (t *Tracer) tpSummary() (analysis.Summary, error) {
	var per []bpf.MemcgtpTpCpu
	if err := t.coll.Maps["states"].Lookup(uint32(0), &per); err != nil {
		return analysis.Summary{}, fmt.Errorf("reading the per-CPU summary: %w", err)
	}
	s := analysis.Summary{CPUs: map[int]analysis.SummaryCPU{}, Stats: true}
	for cpu, st := range per {
		if st.Updates == 0 {
			continue
		}
		s.CPUs[cpu] = analysis.SummaryCPU{MaxReal: st.MaxReal, MaxRealTime: st.MaxRealTs, Watermark: st.Wm, WatermarkReal: st.WmReal, WatermarkTime: st.WmTs,
			StatAdded: st.Added, StatRemoved: st.Removed, StatKinds: map[string]uint64{}}
		for k, v := range st.Kinds {
			if name := kindNames[uint8(k)]; name != "" && v > 0 {
				s.CPUs[cpu].StatKinds[name] = v
			}
		}
	}
	return s, nil
}

var (
	tpOnce   sync.Once
	tpAnswer Answer
)

// ProbeTracepoint loads and attaches a do-nothing raw tracepoint program on
// memcg:mod_memcg_state. Cached for the life of the process.
func ProbeTracepoint(kernelTypes *btf.Spec) Answer {
	tpOnce.Do(func() { tpAnswer = probeTracepoint(kernelTypes) })
	return tpAnswer
}

func probeTracepoint(kernelTypes *btf.Spec) Answer {
	if kernelTypes != nil {
		var td *btf.Typedef
		if kernelTypes.TypeByName("btf_trace_mod_memcg_state", &td) != nil {
			return Answer{Known: true, Detail: "no memcg:mod_memcg_state tracepoint in this kernel (Linux 6.13+)"}
		}
	}
	return probeProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint}, nil,
		func(p *ebpf.Program) (link.Link, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: "mod_memcg_state", Program: p})
		},
		"a raw tracepoint program on memcg:mod_memcg_state", "raw tracepoint programs (EPERM: not root, lockdown or a policy)", true)
}

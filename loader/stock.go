package loader

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// stockLayout says where the BPF side finds, in each CPU's struct
// memcg_stock_pcp, which memcg a stock is for and how many pages it holds.
// Up to 6.15 a CPU stocks for one memcg (struct mem_cgroup *cached; unsigned
// int nr_pages); from 6.16 for up to NR_MEMCG_STOCK at once (uint8_t
// nr_pages[]; struct mem_cgroup *cached[]). Offsets are relative to base,
// the first byte the programs read.
type stockLayout struct {
	base, span       uint32
	cachedOff, nrOff uint32
	nrSize, slots    uint32
}

// Limits of the BPF side (MAX_SLOTS, STOCK_SPAN, MAX_CPUS in cgpeak.bpf.c).
const (
	maxSlots  = 8
	stockSpan = 128
	maxCPUs   = 1024
)

func findStockLayout(s *btf.Spec) (stockLayout, error) {
	var st *btf.Struct
	if s == nil {
		return stockLayout{}, errors.New("no kernel BTF")
	}
	if err := s.TypeByName("memcg_stock_pcp", &st); err != nil {
		return stockLayout{}, fmt.Errorf("no struct memcg_stock_pcp in the kernel's BTF: %w", err)
	}
	var cached, nr *btf.Member
	for i := range st.Members {
		switch st.Members[i].Name {
		case "cached":
			cached = &st.Members[i]
		case "nr_pages":
			nr = &st.Members[i]
		}
	}
	if cached == nil || nr == nil {
		return stockLayout{}, errors.New("struct memcg_stock_pcp has no cached or nr_pages member: an unknown layout")
	}
	l := stockLayout{cachedOff: cached.Offset.Bytes(), nrOff: nr.Offset.Bytes()}
	switch t := btf.UnderlyingType(cached.Type).(type) {
	case *btf.Pointer:
		l.slots = 1
	case *btf.Array:
		if _, ok := btf.UnderlyingType(t.Type).(*btf.Pointer); !ok {
			return stockLayout{}, errors.New("memcg_stock_pcp.cached is an array of something else than pointers")
		}
		l.slots = t.Nelems
	default:
		return stockLayout{}, fmt.Errorf("memcg_stock_pcp.cached is a %T", t)
	}
	switch t := btf.UnderlyingType(nr.Type).(type) {
	case *btf.Int:
		if l.slots != 1 {
			return stockLayout{}, errors.New("memcg_stock_pcp has several cached memcgs but one nr_pages")
		}
		l.nrSize = t.Size
	case *btf.Array:
		in, ok := btf.UnderlyingType(t.Type).(*btf.Int)
		if !ok || t.Nelems != l.slots {
			return stockLayout{}, errors.New("memcg_stock_pcp.nr_pages does not match cached")
		}
		l.nrSize = in.Size
	default:
		return stockLayout{}, fmt.Errorf("memcg_stock_pcp.nr_pages is a %T", t)
	}
	if l.nrSize != 1 && l.nrSize != 4 {
		return stockLayout{}, fmt.Errorf("memcg_stock_pcp.nr_pages has %d-byte elements", l.nrSize)
	}
	if l.slots == 0 || l.slots > maxSlots {
		return stockLayout{}, fmt.Errorf("memcg_stock_pcp stocks for %d memcgs, more than cgpeak reads", l.slots)
	}
	// Aligned: the programs read the fields from a copy on the BPF stack,
	// where the verifier allows only aligned loads.
	l.base = min(l.cachedOff, l.nrOff) &^ 7
	end := max(l.cachedOff+8*l.slots, l.nrOff+l.nrSize*l.slots)
	l.cachedOff -= l.base
	l.nrOff -= l.base
	l.span = end - l.base
	if l.span > stockSpan {
		return stockLayout{}, fmt.Errorf("memcg_stock_pcp's fields span %d bytes, more than cgpeak reads", l.span)
	}
	return l, nil
}

// stockReading configures the programs to read the kernel's stocks
// themselves (stock-read summary mode), or says why they cannot.
func stockReading(spec *ebpf.CollectionSpec, kernelTypes *btf.Spec, batch uint64) error {
	l, err := findStockLayout(kernelTypes)
	if err != nil {
		return err
	}
	addrs, err := symbolAddrs("memcg_stock", "__per_cpu_offset")
	if err != nil {
		return err
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("counting CPUs: %w", err)
	}
	if n > maxCPUs {
		return fmt.Errorf("%d possible CPUs, more than the %d cgpeak reads stocks of", n, maxCPUs)
	}
	for name, v := range map[string]any{"stocks_read": uint8(1), "stock_addr": addrs["memcg_stock"] + uint64(l.base),
		"pcpu_offsets": addrs["__per_cpu_offset"], "stock_span": l.span, "stock_cached_off": l.cachedOff, "stock_nr_off": l.nrOff,
		"stock_nr_size": l.nrSize, "stock_slots": l.slots, "ncpus": uint32(n), "batch_pages": batch} {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("configuring the BPF object: %s: %w", name, err)
		}
	}
	return nil
}

// symbolAddrs finds kernel symbols' addresses in /proc/kallsyms, per-CPU
// variables included (type A up to 6.14 on x86_64, whose per-CPU addresses
// are offsets; d from 6.15).
func symbolAddrs(names ...string) (map[string]uint64, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	defer f.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 || !want[fs[2]] {
			continue
		}
		if _, dup := out[fs[2]]; dup {
			return nil, fmt.Errorf("kallsyms has two symbols named %s", fs[2])
		}
		a, err := strconv.ParseUint(fs[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("reading /proc/kallsyms: %s: %w", fs[2], err)
		}
		out[fs[2]] = a
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/kallsyms: %w", err)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in /proc/kallsyms", n)
		}
	}
	// __per_cpu_offset is never at 0: all zeros means kptr_restrict hid them.
	if out["__per_cpu_offset"] == 0 && want["__per_cpu_offset"] {
		return nil, errors.New("/proc/kallsyms hides addresses (kptr_restrict): run as root")
	}
	return out, nil
}

// ProbeStocks says whether summary mode can read the per-CPU stocks here.
func ProbeStocks(kernelTypes *btf.Spec) Answer {
	l, err := findStockLayout(kernelTypes)
	if err != nil {
		return Answer{Known: true, Detail: err.Error()}
	}
	if _, err := symbolAddrs("memcg_stock", "__per_cpu_offset"); err != nil {
		return Answer{Known: true, Detail: err.Error()}
	}
	what := "one memcg per CPU"
	if l.slots > 1 {
		what = fmt.Sprintf("up to %d memcgs per CPU", l.slots)
	}
	return Answer{OK: true, Known: true, Detail: "struct memcg_stock_pcp in BTF (" + what + "), memcg_stock in kallsyms"}
}

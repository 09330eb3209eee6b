// Package kpeak reads a memory cgroup's own peak, its page_counter
// watermark, with a small BPF program, for cgroup v2 kernels that keep the
// watermark but have no memory.peak file to show it (before Linux 5.19).
//
// The program sits on the kernel's handler of memory.current reads; reading
// the cgroup's memory.current once runs it with the memcg in hand.
package kpeak

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/cgpeak/cgpeak/bpf"
	"github.com/cgpeak/cgpeak/internal/kbtf"
)

// handler is the kernel function that serves memory.current on cgroup v2.
const handler = "memory_current_read"

// Reading is the memcg's counter as the kernel keeps it.
type Reading struct {
	WatermarkPages uint64 // the most ever charged at once: what memory.peak shows from 5.19
	UsagePages     uint64 // charged now: memory.current
	Via            string // fentry or kprobe
}

// Read reads the watermark of the cgroup v2 directory dir once. btfPath
// names a kernel BTF file for kernels without /sys/kernel/btf/vmlinux (""
// for that). Nothing stays loaded when it returns.
func Read(dir, btfPath string) (Reading, error) {
	r, err := Open(dir, btfPath)
	if err != nil {
		return Reading{}, err
	}
	defer r.Close()
	return r.Read()
}

// Reader keeps the program attached for repeated readings (cgpeak watch).
type Reader struct {
	Via   string
	dir   string
	coll  *ebpf.Collection
	link  link.Link
	reads uint64
}

// Open loads and attaches the program for the cgroup v2 directory dir,
// with fentry where the kernel allows it, else a kprobe.
func Open(dir, btfPath string) (*Reader, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("reading the cgroup's id: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK: %w", err)
	}
	kernel, err := kbtf.Load(btfPath)
	if err != nil {
		return nil, fmt.Errorf("reading kernel BTF: %w", err)
	}
	var errs []error
	for _, via := range []string{"fentry", "kprobe"} {
		r, err := open(via, dir, st.Ino, kernel)
		if err == nil {
			return r, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", via, err))
	}
	return nil, errors.Join(errs...)
}

func open(via, dir string, cgid uint64, kernel *btf.Spec) (*Reader, error) {
	spec, err := bpf.LoadPeak()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	if err := spec.Variables["target_cgid"].Set(cgid); err != nil {
		return nil, fmt.Errorf("configuring the BPF object: %w", err)
	}
	keep := via + "_current_read"
	for name := range spec.Programs {
		if name != keep {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, kbtf.Options(kernel))
	if err != nil {
		return nil, fmt.Errorf("loading the program: %w", err)
	}
	prog := coll.Programs[keep]
	var l link.Link
	if via == "fentry" {
		l, err = link.AttachTracing(link.TracingOptions{Program: prog})
	} else {
		l, err = link.Kprobe(handler, prog, nil)
	}
	if err != nil {
		coll.Close()
		return nil, fmt.Errorf("attaching to %s: %w", handler, err)
	}
	return &Reader{Via: via, dir: dir, coll: coll, link: l}, nil
}

// Read reads the cgroup's memory.current, which runs the program, and
// returns what it found.
func (r *Reader) Read() (Reading, error) {
	if _, err := os.ReadFile(filepath.Join(r.dir, "memory.current")); err != nil {
		return Reading{}, fmt.Errorf("reading memory.current: %w", err)
	}
	var v bpf.PeakPeakReading
	if err := r.coll.Maps["reading"].Lookup(uint32(0), &v); err != nil {
		return Reading{}, fmt.Errorf("reading the program's result: %w", err)
	}
	if v.Reads == r.reads {
		return Reading{}, fmt.Errorf("%s did not run for the cgroup (not the handler of memory.current on this kernel?)", handler)
	}
	r.reads = v.Reads
	return Reading{WatermarkPages: v.Watermark, UsagePages: v.Usage, Via: r.Via}, nil
}

// Close detaches and unloads the program.
func (r *Reader) Close() {
	r.link.Close()
	r.coll.Close()
}

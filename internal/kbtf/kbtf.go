// Package kbtf holds the running kernel's BTF, decoded once per process and
// shared by every BPF collection cgpeak loads.
//
// Decoding /sys/kernel/btf/vmlinux is the largest part of starting a trace
// after the verifier: about half a second under emulation, tens of
// milliseconds natively. cilium/ebpf decodes it again for its own lookups
// (ksym externs, attach targets) unless every load is given the same cache,
// so a traced run that loads several collections used to decode it twice
// or more.
package kbtf

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

var cache = btf.NewCache()

// Kernel returns the running kernel's BTF (shared: callers must not modify it).
func Kernel() (*btf.Spec, error) { return cache.Kernel() }

// Load returns the kernel BTF at path, or the running kernel's where path is empty.
func Load(path string) (*btf.Spec, error) {
	if path == "" {
		return Kernel()
	}
	s, err := btf.LoadSpec(path)
	if err != nil {
		return nil, fmt.Errorf("reading kernel BTF from %s: %w", path, err)
	}
	return s, nil
}

// Options are the collection options every load uses: types for CO-RE
// relocations (the running kernel's, or those of --kernel-btf), and the
// shared cache for what cilium/ebpf looks up in the running kernel itself.
func Options(types *btf.Spec) ebpf.CollectionOptions {
	return ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: types}, Cache: cache}
}

package loader

import (
	"bytes"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// The two layouts of struct memcg_stock_pcp cgpeak reads, as built here
// from their kernel definitions, and the kernel's own where it has BTF.
func TestFindStockLayout(t *testing.T) {
	u8 := &btf.Int{Name: "unsigned char", Size: 1}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	memcg := &btf.Pointer{Target: &btf.Struct{Name: "mem_cgroup"}}
	lock := &btf.Struct{Name: "local_lock_t", Size: 0}
	trylock := &btf.Struct{Name: "local_trylock_t", Size: 1}
	// Up to 6.15: local_lock_t stock_lock; struct mem_cgroup *cached;
	// unsigned int nr_pages; ...
	single := &btf.Struct{Name: "memcg_stock_pcp", Size: 64, Members: []btf.Member{
		{Name: "stock_lock", Type: lock, Offset: 0},
		{Name: "cached", Type: memcg, Offset: 0},
		{Name: "nr_pages", Type: &btf.Typedef{Name: "uint", Type: u32}, Offset: 64}, // bits
	}}
	// 6.16+: local_trylock_t lock; uint8_t nr_pages[7]; struct mem_cgroup
	// *cached[7]; ...
	multi := &btf.Struct{Name: "memcg_stock_pcp", Size: 128, Members: []btf.Member{
		{Name: "lock", Type: trylock, Offset: 0},
		{Name: "nr_pages", Type: &btf.Array{Index: u32, Type: &btf.Typedef{Name: "uint8_t", Type: u8}, Nelems: 7}, Offset: 8}, // bits
		{Name: "cached", Type: &btf.Array{Index: u32, Type: memcg, Nelems: 7}, Offset: 64},
	}}
	for _, c := range []struct {
		name string
		s    *btf.Struct
		want stockLayout
	}{
		{"single", single, stockLayout{base: 0, span: 12, cachedOff: 0, nrOff: 8, nrSize: 4, slots: 1}},
		{"multi", multi, stockLayout{base: 0, span: 64, cachedOff: 8, nrOff: 1, nrSize: 1, slots: 7}},
	} {
		b, err := btf.NewBuilder([]btf.Type{c.s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := b.Marshal(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		got, err := findStockLayout(spec)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	if _, err := findStockLayout(nil); err == nil {
		t.Error("no BTF gave a layout")
	}
	if spec, err := btf.LoadKernelSpec(); err == nil {
		l, err := findStockLayout(spec)
		t.Logf("this kernel's memcg_stock_pcp: %+v %v", l, err)
		if err != nil {
			t.Errorf("this kernel's stock layout is not understood: %v", err)
		}
	}
}

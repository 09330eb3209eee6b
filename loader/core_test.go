package loader

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/cgpeak/cgpeak/bpf"
)

// kernelSpec builds a kernel BTF holding one struct memcg_stock_pcp.
func kernelSpec(t *testing.T, s *btf.Struct) *btf.Spec {
	b, err := btf.NewBuilder([]btf.Type{s}, nil)
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
	return spec
}

var fixupRe = regexp.MustCompile(`CORERelocation\((\w+), Struct:"memcg_stock_pcp___(\w+)"\[([0-9:]+)\].* \w+=(?:\d+->)?(\w+)$`)

// stockRelocations resolves the stock-read program's CO-RE relocations of
// struct memcg_stock_pcp against a kernel's BTF: relocation -> fixup.
func stockRelocations(t *testing.T, kernel *btf.Spec) map[string]string {
	spec, err := bpf.LoadStocks()
	if err != nil {
		t.Fatal(err)
	}
	var relos []*btf.CORERelocation
	iter := spec.Programs["kprobe_refill_stock"].Instructions.Iterate()
	for iter.Next() {
		if r := btf.CORERelocationMetadata(iter.Ins); r != nil && strings.Contains(r.String(), "memcg_stock_pcp") {
			relos = append(relos, r)
		}
	}
	if len(relos) == 0 {
		t.Fatal("the stock-read program has no CO-RE relocation of struct memcg_stock_pcp")
	}
	fix, err := btf.CORERelocate(relos, []*btf.Spec{kernel}, binary.LittleEndian, func(btf.Type) (btf.TypeID, error) { return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, r := range relos {
		// `byte_off, Struct:"memcg_stock_pcp___v616" 0:1:8->8` -> "byte_off v616 0:1": "8"
		m := fixupRe.FindStringSubmatch(r.String() + " " + fix[i].String())
		if m == nil {
			t.Fatalf("unexpected form: %s %s", r, fix[i].String())
		}
		out[m[1]+" "+m[2]+" "+m[3]] = m[4]
	}
	return out
}

// The kernel's two layouts of struct memcg_stock_pcp, as built here from
// their definitions in mm/memcontrol.c, each select their own flavour in
// cgpeak.bpf.c and relocate to their own offsets.
func TestStockLayoutsByCORE(t *testing.T) {
	u8 := &btf.Int{Name: "unsigned char", Size: 1}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	memcg := &btf.Pointer{Target: &btf.Struct{Name: "mem_cgroup"}}
	// Up to 6.15: local_lock_t stock_lock; struct mem_cgroup *cached;
	// unsigned int nr_pages; ...
	single := kernelSpec(t, &btf.Struct{Name: "memcg_stock_pcp", Size: 64, Members: []btf.Member{
		{Name: "stock_lock", Type: &btf.Struct{Name: "local_lock_t"}, Offset: 0},
		{Name: "cached", Type: memcg, Offset: 0},
		{Name: "nr_pages", Type: &btf.Typedef{Name: "uint", Type: u32}, Offset: 64}, // bits
	}})
	// 6.16+: local_trylock_t lock; uint8_t nr_pages[7]; struct mem_cgroup
	// *cached[7]; ...
	multi := kernelSpec(t, &btf.Struct{Name: "memcg_stock_pcp", Size: 128, Members: []btf.Member{
		{Name: "lock", Type: &btf.Struct{Name: "local_trylock_t", Size: 1}, Offset: 0},
		{Name: "nr_pages", Type: &btf.Array{Index: u32, Type: &btf.Typedef{Name: "uint8_t", Type: u8}, Nelems: 7}, Offset: 8}, // bits
		{Name: "cached", Type: &btf.Array{Index: u32, Type: memcg, Nelems: 7}, Offset: 64},
	}})
	for _, c := range []struct {
		name   string
		kernel *btf.Spec
		want   map[string]string
	}{
		// The multi-slot flavour does not exist here; the single one's
		// fields are at 0 and 8.
		{"single", single, map[string]string{"field_exists v616 0:1": "0", "byte_off v615 0:0": "0", "byte_off v615 0:1": "8"}},
		// Here it does, with 7 slots: cached at byte 8 (56 bytes), nr_pages
		// at byte 1 (7 bytes).
		{"multi", multi, map[string]string{"field_exists v616 0:1": "1", "byte_off v616 0:1": "8", "byte_sz v616 0:1": "56", "byte_off v616 0:0": "1", "byte_sz v616 0:0": "7"}},
	} {
		got := stockRelocations(t, c.kernel)
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q (all: %v)", c.name, k, got[k], v, got)
			}
		}
	}
}

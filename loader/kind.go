package loader

import (
	"strings"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/bpf"
)

// What a charge request was for, told by the kernel stack of the request:
// the gfp mask cannot tell (anon faults charge with GFP_KERNEL).
const (
	KindAnon        = "anon"         // anonymous user pages (faults, copy-on-write)
	KindFile        = "file"         // page cache
	KindShmem       = "shmem"        // shmem/tmpfs pages
	KindTHP         = "thp"          // transparent huge pages
	KindSwapin      = "swapin"       // pages read back from swap
	KindUser        = "user"         // other folio charges (charge_memcg)
	KindPageTables  = "page_tables"  // pte/pmd/pud pages
	KindKernelStack = "kernel_stack" // a new thread's stack
	KindSlab        = "slab"         // slab objects of accounted caches
	KindVmalloc     = "vmalloc"
	KindSocket      = "socket"
	KindKernel      = "kernel"  // other kernel memory
	KindUnknown     = "unknown" // no stack to tell
)

type rule struct {
	kind     string
	prefixes []string
}

// Folio (user page) charges pass through charge_memcg or the swap-in charge;
// kernel memory through the obj_cgroup functions; sockets charge directly.
var (
	folioPath  = []string{"charge_memcg", "__mem_cgroup_charge", "mem_cgroup_charge", "mem_cgroup_swapin_charge", "__mem_cgroup_swapin_charge"}
	socketPath = []string{"mem_cgroup_charge_skmem", "__sk_mem_raise_allocated", "__sk_mem_schedule"}
	userRules  = []rule{
		{KindSwapin, []string{"mem_cgroup_swapin_charge", "__mem_cgroup_swapin_charge"}},
		{KindShmem, []string{"shmem_"}},
		{KindTHP, []string{"do_huge_pmd", "__do_huge_pmd", "vma_alloc_anon_folio_pmd", "do_huge_pmd_anonymous_page"}},
		{KindFile, []string{"filemap_add_folio", "__filemap_add_folio", "page_cache_ra", "filemap_fault", "__filemap_get_folio"}},
		{KindAnon, []string{"do_anonymous_page", "alloc_anon_folio", "do_wp_page", "wp_page_copy", "do_cow_fault", "__handle_mm_fault", "handle_mm_fault", "do_swap_page"}},
	}
	kernelRules = []rule{
		{KindPageTables, []string{"__pte_alloc", "pte_alloc", "__pmd_alloc", "pmd_alloc", "__pud_alloc", "pud_alloc", "__p4d_alloc", "pgd_alloc", "pagetable_alloc", "__pte_alloc_kernel"}},
		{KindKernelStack, []string{"memcg_charge_kernel_stack", "alloc_thread_stack_node", "dup_task_struct"}},
		{KindSlab, []string{"kmem_cache_alloc", "__kmalloc", "kmalloc", "__memcg_slab_post_alloc_hook", "memcg_slab_post_alloc_hook", "allocate_slab", "___slab_alloc", "__kmem_cache_alloc"}},
		{KindVmalloc, []string{"__vmalloc", "vmalloc"}},
	}
)

// Kind names what a charge request was for and the kernel function that
// shows it; requests larger than a batch of user pages are THP.
func (t *Tracer) Kind(e analysis.Event, batch uint64) (kind, caller string) {
	if e.Stack == 0 {
		return KindUnknown, "" // the kernel gave no stack
	}
	k, ok := t.kinds[e.Stack]
	if !ok {
		k[0] = KindUnknown // not stored: the stack map was full
		var b bpf.ChargesStackBuf
		if m := t.coll.Maps["stacks"]; m != nil && m.Lookup(e.Stack, &b) == nil {
			k[0], k[1] = classify(t.syms.Names(b.Ips[:]))
		}
		t.kinds[e.Stack] = k
	}
	if k[0] == KindAnon && e.Pages > batch {
		return KindTHP, k[1]
	}
	return k[0], k[1]
}

// classify names a request from its stack's symbols, innermost first.
func classify(frames []string) (kind, caller string) {
	switch {
	case anyPrefix(frames, socketPath) != "":
		return KindSocket, anyPrefix(frames, socketPath)
	case anyPrefix(frames, folioPath) != "":
		if k, f := firstRule(frames, userRules); k != "" {
			return k, f
		}
		return KindUser, outside(frames)
	}
	if k, f := firstRule(frames, kernelRules); k != "" {
		return k, f
	}
	if len(frames) == 0 {
		return KindUnknown, ""
	}
	return KindKernel, outside(frames)
}

func hasPrefix(f string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}

func anyPrefix(frames, ps []string) string {
	for _, f := range frames {
		if hasPrefix(f, ps) {
			return f
		}
	}
	return ""
}

// firstRule finds the innermost frame some rule names.
func firstRule(frames []string, rules []rule) (kind, frame string) {
	for _, f := range frames {
		for _, r := range rules {
			if hasPrefix(f, r.prefixes) {
				return r.kind, f
			}
		}
	}
	return "", ""
}

// outside is the first frame past the charge and allocation machinery.
func outside(frames []string) string {
	for _, f := range frames {
		if !hasPrefix(f, machinery) {
			return f
		}
	}
	return ""
}

var machinery = []string{"try_charge", "obj_cgroup_", "__memcg_kmem_", "memcg_", "__mem_cgroup", "mem_cgroup_", "charge_memcg",
	"bpf_", "__alloc_pages", "alloc_pages", "__folio_alloc", "folio_alloc", "get_page_from_freelist", "__alloc_frozen_pages"}

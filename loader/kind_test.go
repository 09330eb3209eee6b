package loader

import "testing"

// Kernel stacks as 6.1 and 7.3 record them (innermost first) name the memory.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		frames       []string
		kind, caller string
	}{
		{[]string{"try_charge_memcg", "charge_memcg", "__mem_cgroup_charge", "do_anonymous_page", "__handle_mm_fault", "handle_mm_fault"}, KindAnon, "do_anonymous_page"},
		{[]string{"try_charge_memcg", "charge_memcg", "__mem_cgroup_charge", "wp_page_copy", "__handle_mm_fault"}, KindAnon, "wp_page_copy"},
		{[]string{"try_charge_memcg", "charge_memcg", "__mem_cgroup_charge", "__filemap_add_folio", "filemap_add_folio", "page_cache_ra_unbounded"}, KindFile, "__filemap_add_folio"},
		{[]string{"try_charge_memcg", "charge_memcg", "__mem_cgroup_charge", "shmem_alloc_and_add_folio", "shmem_get_folio_gfp"}, KindShmem, "shmem_alloc_and_add_folio"},
		{[]string{"try_charge_memcg", "charge_memcg", "__mem_cgroup_charge", "do_huge_pmd_anonymous_page", "__handle_mm_fault"}, KindTHP, "do_huge_pmd_anonymous_page"},
		{[]string{"try_charge_memcg", "charge_memcg", "__mem_cgroup_charge", "migrate_misplaced_folio"}, KindUser, "migrate_misplaced_folio"},
		{[]string{"try_charge_memcg", "obj_cgroup_charge_pages", "__memcg_kmem_charge_page", "__alloc_pages", "pte_alloc_one", "__pte_alloc", "do_anonymous_page"}, KindPageTables, "pte_alloc_one"},
		{[]string{"try_charge_memcg", "obj_cgroup_charge_pages", "obj_cgroup_charge", "__memcg_slab_post_alloc_hook", "kmem_cache_alloc_noprof", "vm_area_dup"}, KindSlab, "__memcg_slab_post_alloc_hook"},
		{[]string{"try_charge_memcg", "obj_cgroup_charge_pages", "__memcg_kmem_charge_page", "memcg_charge_kernel_stack", "alloc_thread_stack_node", "dup_task_struct", "copy_process"}, KindKernelStack, "memcg_charge_kernel_stack"},
		{[]string{"try_charge_memcg", "mem_cgroup_charge_skmem", "__sk_mem_raise_allocated", "tcp_sendmsg_locked"}, KindSocket, "mem_cgroup_charge_skmem"},
		{[]string{"try_charge_memcg", "obj_cgroup_charge_pages", "__memcg_kmem_charge_page", "__alloc_pages", "pipe_write"}, KindKernel, "pipe_write"},
		{nil, KindUnknown, ""},
	} {
		k, caller := classify(c.frames)
		if k != c.kind || caller != c.caller {
			t.Errorf("%v: %s %s, want %s %s", c.frames, k, caller, c.kind, c.caller)
		}
	}
}

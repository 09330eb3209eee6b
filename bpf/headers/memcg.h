/* SPDX-License-Identifier: GPL-2.0 */
/* The few kernel types cgpeak reads, declared with preserve_access_index so
 * CO-RE relocates every field against the running kernel's BTF: only the
 * names matter, not the layout written here (checked on 5.10, 6.1, 7.3). */
#ifndef CGPEAK_MEMCG_H
#define CGPEAK_MEMCG_H

typedef struct {
	long counter;
} atomic_long_t;

struct page_counter {
	atomic_long_t usage;
	unsigned long watermark;
} __attribute__((preserve_access_index));

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
} __attribute__((preserve_access_index));

struct mem_cgroup {
	struct cgroup_subsys_state css;
	struct page_counter memory;
	struct page_counter memsw;
} __attribute__((preserve_access_index));

#endif

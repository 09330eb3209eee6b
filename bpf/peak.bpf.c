//go:build ignore

// The kernel's own peak of one memcg where cgroup v2 has no memory.peak
// (before Linux 5.19): page_counter.watermark has been kept since long
// before, only never shown. User space reads the cgroup's memory.current;
// the kernel's handler of that read gets the memcg's css, and this program,
// on the handler, copies the counter's watermark and usage for user space.

#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include "headers/bpf_helpers.h"
#include "headers/bpf_tracing.h"
#include "headers/bpf_core_read.h"
#include "headers/memcg.h"

char LICENSE[] SEC("license") = "GPL";

/* The memcg's directory inode in the cgroup2 hierarchy (its kernfs id). */
const volatile __u64 target_cgid;

struct peak_reading {
	__u64 watermark; /* pages */
	__u64 usage;     /* pages */
	__u64 reads;     /* handler runs for the target seen */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct peak_reading);
} reading SEC(".maps");

static __always_inline int read_css(struct cgroup_subsys_state *css)
{
	if (BPF_CORE_READ(css, cgroup, kn, id) != target_cgid)
		return 0;
	__u32 zero = 0;
	struct peak_reading *r = bpf_map_lookup_elem(&reading, &zero);
	if (!r)
		return 0;
	/* css is embedded in struct mem_cgroup: container_of, by the offset the
	 * running kernel's BTF gives. */
	struct mem_cgroup *memcg = (void *)css - bpf_core_field_offset(struct mem_cgroup, css);
	r->watermark = BPF_CORE_READ(memcg, memory.watermark);
	r->usage = BPF_CORE_READ(memcg, memory.usage.counter);
	r->reads++;
	return 0;
}

SEC("fentry/memory_current_read")
int BPF_PROG(fentry_current_read, struct cgroup_subsys_state *css)
{
	return read_css(css);
}

SEC("kprobe/memory_current_read")
int BPF_KPROBE(kprobe_current_read, struct cgroup_subsys_state *css)
{
	return read_css(css);
}

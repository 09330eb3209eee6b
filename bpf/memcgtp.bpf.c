//go:build ignore

// Charge tracing from the memcg stat tracepoints (Linux 6.13+), for kernels
// where kprobes are missing and fentry is refused but raw tracepoints work.
//
// memcg:mod_memcg_state and memcg:mod_memcg_lruvec_state fire on every
// change of a memcg's statistics, with the memcg. The pages a memcg really
// uses are the sum of the items that are charged to its counter: anon
// mapped, file pages (shmem included), kernel memory (slab, stacks, page
// tables...) and, on cgroup v2, socket buffers. Their running sum is real
// use; the counter's usage minus it is what the per-CPU stocks (and charges
// on their way to a stat) hold. Item numbers come from Go, out of the
// kernel's BTF enums.

#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include "headers/bpf_helpers.h"
#include "headers/bpf_tracing.h"
#include "headers/bpf_core_read.h"
#include "headers/memcg.h"

char LICENSE[] SEC("license") = "GPL";

enum kind {
	KIND_NONE,
	KIND_ANON,
	KIND_FILE,
	KIND_KERNEL,
	KIND_SOCK,
};

enum tp_fn {
	TP_MOD_MEMCG_STATE = 1,
	TP_MOD_MEMCG_LRUVEC_STATE,
};

struct tp_event {
	__u64 ts;
	__u64 usage;     /* the target's counter after the update, pages */
	__u64 watermark; /* its watermark then */
	__s64 real;      /* real use after the update: the running sum */
	__u64 cgid;      /* the memcg whose statistic changed */
	__s32 delta;     /* pages the update added (negative: removed) */
	__u32 item;      /* the kernel's stat item */
	__u32 cpu;
	__u32 pid;
	__u32 tid;
	__u8 fn;
	__u8 kind;
	__u8 pad[2];
	char comm[16];
};

const struct tp_event *unused_tp_event __attribute__((unused));

/* Per CPU: the peak of real use this CPU computed, and real use at the
 * last update that found usage at the watermark. */
struct tp_cpu {
	__s64 max_real;
	__u64 max_real_ts;
	__u64 wm;
	__s64 wm_real;
	__u64 wm_ts;
	__u64 updates;   /* counted updates seen */
	__u64 added;     /* pages the positive ones added */
	__u64 removed;   /* pages the negative ones took out */
	__u64 kinds[5];  /* pages added, by enum kind */
};

const struct tp_cpu *unused_tp_cpu __attribute__((unused));

volatile const __u64 target_cgid = 0;
volatile const __u8 descendants = 0;
/* Emit every counted update, not only those that find the counter moved. */
volatile const __u8 every = 0;
/* Stat items, from the kernel's enums; -1 where not counted. */
volatile const __s32 item_anon = -1;
volatile const __s32 item_file = -1;
volatile const __s32 item_kernel = -1;
volatile const __s32 item_sock = -1;

/* Real use: set from Go to what the cgroup already held (memory.stat) when
 * tracing begins on a running cgroup. */
__s64 real_sum = 0;
__u64 target_memcg = 0;
__u64 last_usage = 0;
__u64 last_wm = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tp_cpu);
} states SEC(".maps");

#define MAX_DEPTH 32

/* Descendants: memcg pointer -> 1 (below the target) or 0 (not), with the
 * id seen, so a freed and reused memcg is looked up again. */
struct member_val {
	__u64 id;
	__u64 member;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct member_val);
} members SEC(".maps");

static __always_inline int member(struct mem_cgroup *memcg, __u64 *id)
{
	__u64 key = (__u64)memcg;
	if (!memcg)
		return 0;
	/* Once the target's memcg is known, a pointer compare settles it
	 * for every update of another cgroup, without reading memory. */
	if (key == target_memcg) {
		*id = target_cgid;
		return 1;
	}
	if (target_memcg && !descendants)
		return 0;
	*id = BPF_CORE_READ(memcg, css.cgroup, kn, id);
	if (*id == target_cgid) {
		target_memcg = key;
		return 1;
	}
	if (!descendants)
		return 0;
	struct member_val *hit = bpf_map_lookup_elem(&members, &key);
	if (hit && hit->id == *id)
		return hit->member;
	struct member_val v = {.id = *id};
	struct cgroup_subsys_state *css = (void *)memcg + bpf_core_field_offset(struct mem_cgroup, css);
	for (int i = 0; i < MAX_DEPTH && css; i++) {
		if (BPF_CORE_READ(css, cgroup, kn, id) == target_cgid) {
			target_memcg = (__u64)css - bpf_core_field_offset(struct mem_cgroup, css);
			v.member = 1;
			break;
		}
		css = BPF_CORE_READ(css, parent);
	}
	bpf_map_update_elem(&members, &key, &v, BPF_ANY);
	return v.member;
}

static __always_inline __u8 kind_of(__s32 item, __u8 fn)
{
	if (fn == TP_MOD_MEMCG_LRUVEC_STATE) {
		if (item == item_anon)
			return KIND_ANON;
		if (item == item_file)
			return KIND_FILE;
		return KIND_NONE;
	}
	if (item == item_kernel)
		return KIND_KERNEL;
	if (item == item_sock)
		return KIND_SOCK;
	return KIND_NONE;
}

static __always_inline int on_update(struct mem_cgroup *memcg, __s32 item, __s32 val, __u8 fn)
{
	__u8 kind = kind_of(item, fn);
	if (kind == KIND_NONE || val == 0)
		return 0;
	__u64 id = 0;
	if (!member(memcg, &id))
		return 0;
	__s64 real = __sync_fetch_and_add(&real_sum, (__s64)val) + val;
	struct mem_cgroup *t = (struct mem_cgroup *)target_memcg;
	__u64 usage = BPF_CORE_READ(t, memory.usage.counter);
	/* The watermark only rises, and only to usage: below the last one
	 * read, it cannot have moved, so it is read only at or above it
	 * (this runs on most faults; each read of kernel memory costs). */
	__u64 wm = last_wm;
	if (usage >= wm) {
		wm = BPF_CORE_READ(t, memory.watermark);
		last_wm = wm;
	}
	__u64 now = 0;
	__u32 zero = 0;
	struct tp_cpu *st = bpf_map_lookup_elem(&states, &zero);
	if (st) {
		st->updates++;
		if (val > 0) {
			st->added += val;
			if (kind < 5)
				st->kinds[kind] += val;
		} else
			st->removed += -val;
		if (real > st->max_real) {
			now = bpf_ktime_get_ns();
			st->max_real = real;
			st->max_real_ts = now;
		}
		/* The most real use while usage stood at the watermark: an
		 * exiting process unmaps (statistics fall) before its pages
		 * are uncharged. */
		if (usage == wm && (wm > st->wm || real > st->wm_real)) {
			if (!now)
				now = bpf_ktime_get_ns();
			st->wm = wm;
			st->wm_real = real;
			st->wm_ts = now;
		}
	}
	if (!every && usage == last_usage)
		return 0;
	last_usage = usage;
	if (!now)
		now = bpf_ktime_get_ns();
	struct tp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u64 *l = bpf_map_lookup_elem(&lost, &zero);
		if (l)
			(*l)++;
		return 0;
	}
	__u64 pt = bpf_get_current_pid_tgid();
	e->ts = now;
	e->usage = usage;
	e->watermark = wm;
	e->real = real;
	e->cgid = id;
	e->delta = val;
	e->item = item;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->fn = fn;
	e->kind = kind;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/mod_memcg_state")
int BPF_PROG(tp_mod_memcg_state, struct mem_cgroup *memcg, int item, int val)
{
	return on_update(memcg, item, val, TP_MOD_MEMCG_STATE);
}

SEC("raw_tp/mod_memcg_lruvec_state")
int BPF_PROG(tp_mod_memcg_lruvec_state, struct mem_cgroup *memcg, int item, int val)
{
	return on_update(memcg, item, val, TP_MOD_MEMCG_LRUVEC_STATE);
}

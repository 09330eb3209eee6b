//go:build ignore

// Memory cgroup charge tracer: every charge request, counter charge and
// uncharge, and per-CPU stock refill and drain of one memcg, so user space can
// replay the counter and the stock (analysis/) event by event.
//
// Each function has an fentry/fexit and a kprobe/kretprobe program; the
// loader keeps one set, chosen by a feature probe. Function names are set
// from Go at attach time (try_charge before 5.14, try_charge_memcg after).

#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <stdbool.h>
#include "headers/bpf_helpers.h"
#include "headers/bpf_tracing.h"
#include "headers/bpf_core_read.h"
#include "headers/memcg.h"

char LICENSE[] SEC("license") = "GPL";

enum op {
	OP_CHARGE = 1,
	OP_COUNTER_CHARGE,
	OP_COUNTER_UNCHARGE,
	OP_REFILL,
	OP_DRAIN,
};

enum counter_kind {
	COUNTER_NONE,
	COUNTER_MEMORY,
	COUNTER_MEMSW, /* memsw on v1, swap on v2: one union in struct mem_cgroup */
};

enum fn {
	FN_TRY_CHARGE = 1,
	FN_PC_TRY_CHARGE,
	FN_PC_CHARGE,
	FN_PC_UNCHARGE,
	FN_REFILL_STOCK,
	FN_DRAIN_STOCK,
};

#define FLAG_FAILED 1
#define FLAG_FORCED 2

struct event {
	__u64 ts;
	__u64 pages;
	__u64 usage;
	__u64 watermark;
	__u32 cpu;
	__u32 pid;
	__u32 tid;
	__u8 op;
	__u8 counter;
	__u8 fn;
	__u8 flags;
	char comm[16];
	__u64 stack; /* charge requests: key of the kernel stack in stacks, 0 if none */
	__u32 gfp;   /* charge requests: the gfp mask */
	__u32 consumed; /* summary mode: pages this CPU's stock served to requests
			 * not emitted, since its previous event */
	__u64 cgid;     /* the cgroup whose memcg the call was for */
	__u32 stocked;  /* stock-read mode: pages stocked for the target on all
			 * CPUs, read from the kernel's per-CPU stocks */
	__s32 real;     /* stock-read mode: real use after the call: usage
			 * minus stocked minus charges not yet stocked */
};

/* Keeps struct event in BTF for bpf2go's Go type. */
const struct event *unused_event __attribute__((unused));

/* Set from Go before loading. */
volatile const __u64 target_cgid = 0;
/* Summary mode: requests served from the stock are not emitted; the per-CPU
 * stock, real use and its peak are kept here instead (struct cpu_state). */
volatile const __u8 summary = 0;
/* Also trace the cgroups below the target (--descendants). */
volatile const __u8 descendants = 0;

/* Stock-read summary mode: instead of probing every charge request to
 * follow each CPU's stock, read the stocks themselves (struct
 * memcg_stock_pcp, per CPU) at the few calls that touch the counter or a
 * stock. Nothing runs on a request the stock serves, so a fault costs
 * nothing extra. Go finds the layout in the kernel's BTF and the addresses
 * in kallsyms; offsets are relative to the part of the struct read. */
volatile const __u8 stocks_read = 0;
volatile const __u64 stock_addr = 0;   /* &memcg_stock + stock base */
volatile const __u64 pcpu_offsets = 0; /* &__per_cpu_offset[0] */
volatile const __u32 stock_span = 0;   /* bytes read from each CPU's stock */
volatile const __u32 stock_cached_off = 0;
volatile const __u32 stock_nr_off = 0;
volatile const __u32 stock_nr_size = 0; /* 4: unsigned int; 1: u8 nr_pages[] (6.16+) */
volatile const __u32 stock_slots = 0;   /* memcgs one CPU stocks for: 1, or 7 from 6.16 */
volatile const __u32 ncpus = 0;
volatile const __u64 batch_pages = 0;

#define MAX_CPUS 1024
#define MAX_SLOTS 8
#define STOCK_SPAN 128

/* CPUs that were ever given pages of the target's stock: the only ones
 * whose stock need be read. Each CPU sets its own byte. */
__u8 holds[MAX_CPUS];
/* Pages drain_stock has uncharged but not yet taken out of its stock. */
__s64 draining_total = 0;

/* The target's struct mem_cgroup, learned from its first charge so that
 * counter events filter by a pointer compare instead of a chain of reads. */
__u64 target_memcg = 0;

#define WAKEUP_BYTES (256 << 10)

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

/* Summary mode, per CPU. Real use is the counter's usage minus the pages in
 * all stocks (stock_total), measured where a request ends; its peak, and the
 * real use at the last moment usage stood at the watermark, are kept per CPU
 * and combined in user space. */
struct cpu_state {
	__s64 stock;      /* pages in this CPU's stock for the target */
	__u64 requests;   /* requests served from the stock (not emitted) */
	__u64 pages;
	__u64 pending;    /* pages of those not yet reported in an event */
	__s64 max_real;
	__u64 max_real_ts;
	__u64 wm;         /* watermark at the last request that ended at it */
	__s64 wm_real;
	__u64 wm_ts;
	__u64 charged;    /* a counter charge since this CPU's last request */
	__s64 inflight;   /* pages of that charge not yet in the stock, nor ended */
	__s64 draining;   /* stock-read mode: pages of a drain in progress */
};

/* Keeps struct cpu_state in BTF for bpf2go's Go type. */
const struct cpu_state *unused_cpu_state __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} states SEC(".maps");

__s64 stock_total = 0;
/* Pages charged to the counter by requests not yet ended and not yet put in
 * a stock: usage counts them, real use must not (summed over CPUs). */
__s64 inflight_total = 0;

static __always_inline struct cpu_state *state(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&states, &z);
}

/* Kernel stacks of charge requests, so user space can name what each was
 * for (anon or file pages, page tables, a kernel stack, slab...): the gfp mask
 * cannot tell, anon faults charge with GFP_KERNEL like kernel memory does.
 * Keyed by a 64-bit hash of the frames, so two stacks never share a slot (a
 * STACK_TRACE map's bucket ids collide, and a collision loses a stack). A
 * fault path has only a few distinct stacks. */
#define STACK_DEPTH 24
struct stack_buf {
	__u64 ips[STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_buf);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct stack_buf);
} stacks SEC(".maps");

/* Set while drain_stock runs on a CPU: a page_counter_uncharge inside it is
 * the stock going back, which the model must know apart from a free. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} in_drain SEC(".maps");

/* kprobe arguments kept for the kretprobe, per thread and function (the
 * counter functions run nested inside try_charge_memcg on the same thread). */
struct args {
	__u64 a0;
	__u64 a1;
	__u64 a2;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct args);
} entry_args SEC(".maps");

/* memcg -> {its own cgroup id, its id if it is the target or below it, else
 * 0}: with --descendants every charge in the system asks whether its memcg is
 * under the target, and a walk up the hierarchy is too dear to repeat. The
 * own id is checked on each hit, so a freed and reused memcg is walked again. */
struct member_val {
	__u64 id;
	__u64 member;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct member_val);
} members SEC(".maps");

#define MAX_DEPTH 16

/* member returns the cgroup id of memcg if it is the target, or with
 * descendants a cgroup below it; 0 otherwise. */
static __always_inline __u64 member(struct mem_cgroup *memcg)
{
	struct cgroup_subsys_state *css;
	struct member_val v = {};
	__u64 key = (__u64)memcg;

	if (!memcg)
		return 0;
	if (key == target_memcg)
		return target_cgid;
	v.id = BPF_CORE_READ(memcg, css.cgroup, kn, id);
	if (!descendants) {
		if (v.id != target_cgid)
			return 0;
		target_memcg = key;
		return target_cgid;
	}
	struct member_val *hit = bpf_map_lookup_elem(&members, &key);
	if (hit && hit->id == v.id)
		return hit->member;
	css = (void *)memcg + bpf_core_field_offset(struct mem_cgroup, css);
	for (int i = 0; i < MAX_DEPTH && css; i++) {
		if (BPF_CORE_READ(css, cgroup, kn, id) == target_cgid) {
			/* The target's css sits at the same offset in its memcg. */
			target_memcg = (__u64)css - bpf_core_field_offset(struct mem_cgroup, css);
			v.member = v.id;
			break;
		}
		css = BPF_CORE_READ(css, parent);
	}
	bpf_map_update_elem(&members, &key, &v, BPF_ANY);
	return v.member;
}

/* counter_kind says which counter of a member memcg c is, setting *cg to the
 * memcg's cgroup id; the memcg is found from c by its offset in the struct,
 * and a counter that is not one of these reads as some other id. */
static __always_inline __u8 counter_kind(struct page_counter *c, __u64 *cg)
{
	__u64 m = target_memcg;

	if (m && !descendants) {
		*cg = target_cgid;
		if ((__u64)c == m + bpf_core_field_offset(struct mem_cgroup, memory))
			return COUNTER_MEMORY;
		if (bpf_core_field_exists(struct mem_cgroup, memsw) &&
		    (__u64)c == m + bpf_core_field_offset(struct mem_cgroup, memsw))
			return COUNTER_MEMSW;
		return COUNTER_NONE;
	}
	*cg = member((void *)c - bpf_core_field_offset(struct mem_cgroup, memory));
	if (*cg)
		return COUNTER_MEMORY;
	if (bpf_core_field_exists(struct mem_cgroup, memsw)) {
		*cg = member((void *)c - bpf_core_field_offset(struct mem_cgroup, memsw));
		if (*cg)
			return COUNTER_MEMSW;
	}
	return COUNTER_NONE;
}

/* The target's own counter of a kind: the figures events carry are the
 * target's, whichever member's counter was charged (a charge runs up the
 * whole hierarchy). */
static __always_inline struct page_counter *target_counter(__u8 k)
{
	if (!target_memcg)
		return 0;
	if (k == COUNTER_MEMSW)
		return (void *)target_memcg + bpf_core_field_offset(struct mem_cgroup, memsw);
	return (void *)target_memcg + bpf_core_field_offset(struct mem_cgroup, memory);
}

/* What a stock-read event carries besides the call. */
struct lean {
	__u32 consumed;
	__u32 stocked;
	__s32 real;
};

static __always_inline void emit_full(__u8 op, __u8 fn, __u8 counter, __u8 flags, __u64 pages, struct page_counter *pc, __u32 gfp, __u64 stack, __u64 cg, struct lean *l)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 k = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &k);
		if (n)
			(*n)++;
		return;
	}
	__u64 pt = bpf_get_current_pid_tgid();
	e->ts = bpf_ktime_get_ns();
	e->pages = pages;
	e->usage = 0;
	e->watermark = 0;
	if (pc) {
		e->usage = BPF_CORE_READ(pc, usage.counter);
		e->watermark = BPF_CORE_READ(pc, watermark);
	}
	e->cpu = bpf_get_smp_processor_id();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->op = op;
	e->counter = counter;
	e->fn = fn;
	e->flags = flags;
	e->gfp = gfp;
	e->stack = stack;
	e->cgid = cg;
	e->consumed = 0;
	e->stocked = 0;
	e->real = 0;
	if (l) {
		e->consumed = l->consumed;
		e->stocked = l->stocked;
		e->real = l->real;
	} else if (summary && !stocks_read && counter != COUNTER_MEMSW) {
		/* Not on memsw events: the replay of memory leaves those out. */
		struct cpu_state *st = state();
		if (st) {
			e->consumed = st->pending;
			st->pending = 0;
		}
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* A wakeup per event would cost the workload an IPI and a reader context
	 * switch per page fault; wake the reader only once a batch has piled up
	 * (it also polls on a short deadline, and flushes at the end). */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void emit_req(__u8 op, __u8 fn, __u8 counter, __u8 flags, __u64 pages, struct page_counter *pc, __u32 gfp, __u64 stack, __u64 cg)
{
	emit_full(op, fn, counter, flags, pages, pc, gfp, stack, cg, 0);
}

static __always_inline void emit(__u8 op, __u8 fn, __u8 counter, __u8 flags, __u64 pages, struct page_counter *pc, __u64 cg)
{
	emit_req(op, fn, counter, flags, pages, pc, 0, 0, cg);
}

/* stock_on reads how many pages CPU cpu's stock holds for the target. */
static __always_inline __s64 stock_on(__u32 cpu)
{
	__u8 buf[STOCK_SPAN];
	__u64 off = 0;
	__s64 n = 0;

	if (stock_span > STOCK_SPAN || stock_span == 0)
		return 0;
	if (bpf_probe_read_kernel(&off, sizeof(off), (void *)(pcpu_offsets + (__u64)cpu * 8)))
		return 0;
	if (bpf_probe_read_kernel(buf, stock_span, (void *)(stock_addr + off)))
		return 0;
	for (__u32 i = 0; i < MAX_SLOTS; i++) {
		if (i >= stock_slots)
			break;
		__u32 co = stock_cached_off + i * 8;
		__u32 no = stock_nr_off + i * stock_nr_size;
		if (co + 8 > stock_span || no + stock_nr_size > stock_span || co > STOCK_SPAN - 8 || no > STOCK_SPAN - 4)
			break;
		if (*(__u64 *)(buf + co) != target_memcg)
			continue;
		if (stock_nr_size == 1)
			n += buf[no];
		else
			n += *(__u32 *)(buf + no);
	}
	return n;
}

/* Set once every CPU's stock was read: stocks filled before tracing began
 * (cgpeak trace on a running cgroup) are found by the first event. */
__u8 scanned = 0;

/* read_stocks sums the target's stocked pages over the CPUs that ever held
 * some, and gives this CPU's share in *mine. */
static __always_inline __s64 read_stocks(__u32 self, __s64 *mine)
{
	__s64 total = 0;
	__u8 all = !scanned;

	*mine = 0;
	if (!target_memcg)
		return 0;
	for (__u32 i = 0; i < MAX_CPUS; i++) {
		if (i >= ncpus)
			break;
		if (!holds[i] && !all)
			continue;
		__s64 n = stock_on(i);
		if (n)
			holds[i] = 1;
		total += n;
		if (i == self)
			*mine = n;
	}
	scanned = 1;
	return total;
}

/* lean_emit emits a stock-read event for the target's memory counter: this
 * CPU's stock is synced with the kernel's (what it served since its last
 * event is reported as consumed), then real use is measured. added: pages
 * the call is about to put in this CPU's stock (refill_stock's entry).
 * A drain emits its uncharge too, with the same figures: the stock it gives
 * back is not zeroed until drain_stock returns. */
static __always_inline void lean_emit(__u8 op, __u8 fn, __u8 flags, __u64 pages, __u64 cg, struct cpu_state *st, __s64 added)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct page_counter *pc = target_counter(COUNTER_MEMORY);
	struct lean l = {};
	__s64 mine, stocked;

	stocked = read_stocks(cpu, &mine) + added;
	if (st->stock > mine)
		l.consumed = st->stock - mine;
	st->stock = mine + added;
	l.stocked = stocked;
	if (pc)
		l.real = BPF_CORE_READ(pc, usage.counter) - stocked - inflight_total + draining_total;
	emit_full(op, fn, COUNTER_MEMORY, flags, pages, pc, 0, 0, cg, &l);
	if (op == OP_DRAIN) {
		st->stock = 0;
		l.consumed = 0;
		emit_full(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, COUNTER_MEMORY, 0, pages, pc, 0, 0, cg, &l);
	}
}

/* settle ends this CPU's counter charge whose request put no surplus in the
 * stock (it asked for a whole batch): its pages are real use. */
static __always_inline void settle(struct cpu_state *st)
{
	if (st->inflight) {
		__sync_fetch_and_add(&inflight_total, -st->inflight);
		st->inflight = 0;
	}
}

static __always_inline __u64 req_stack(void *ctx)
{
	__u32 z = 0;
	struct stack_buf *b = bpf_map_lookup_elem(&scratch, &z);
	__u64 h = 14695981039346656037ULL; /* FNV-1a over the frames */

	if (!b || bpf_get_stack(ctx, b->ips, sizeof(b->ips), 0) <= 0)
		return 0;
	for (int i = 0; i < STACK_DEPTH; i++) {
		h ^= b->ips[i];
		h *= 1099511628211ULL;
	}
	if (!h)
		h = 1;
	if (!bpf_map_lookup_elem(&stacks, &h))
		bpf_map_update_elem(&stacks, &h, b, BPF_NOEXIST);
	return h;
}

/* Call paths whose stack is known: a charge request's kernel stack is the
 * dearest thing per-charge mode takes (an unwind per fault), yet a workload
 * faults down the same few paths again and again. A path is recognised by
 * how deep in the kernel stack the program runs (the same chain of callers
 * puts it at the same depth: its offset in the THREAD_SIZE-aligned stack),
 * with the gfp mask and whether it is for one page. Its stack is walked on
 * its first CHECK_FIRST requests, then one in CHECK_EVERY; a walk that finds
 * another stack (two paths at one depth, or one function calling down from
 * two places) takes its place and starts the count again, so paths that
 * share a depth keep being walked. */
struct path {
	__u64 stack;
	__u64 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct path);
} paths SEC(".maps");

#define CHECK_FIRST 16
#define CHECK_EVERY 64
#define THREAD_SIZE_X86_64 (1 << 14)

/* Set from Go: walk every request's stack (tests compare the two). */
volatile const __u8 walk_every = 0;

/* req_stack_at: the stack key of a request whose program runs at kernel
 * stack address sp (a kprobe's stack pointer, an fexit program's context). */
static __always_inline __u64 req_stack_at(void *ctx, __u64 sp, __u32 gfp, __u32 nr)
{
	struct path *known;

	if (walk_every)
		return req_stack(ctx);
	__u64 fp = (sp & (THREAD_SIZE_X86_64 - 1)) | (__u64)gfp << 16 | (__u64)(nr == 1) << 48;
	known = bpf_map_lookup_elem(&paths, &fp);
	if (known) {
		__u64 n = known->hits++; /* racy, and only a heuristic */
		__u64 k = known->stack;
		if (n >= CHECK_FIRST && n % CHECK_EVERY)
			return k;
		__u64 s = req_stack(ctx);
		if (s != k) {
			known->stack = s;
			known->hits = 1;
		}
		return s;
	}
	struct path p = {.stack = req_stack(ctx), .hits = 1};
	if (p.stack)
		bpf_map_update_elem(&paths, &fp, &p, BPF_NOEXIST);
	return p.stack;
}

/* addr reads a pointer's value as a number, which the verifier lets no
 * arithmetic but addition make of a context pointer. */
static __always_inline __u64 addr(void *p)
{
	void *v = p;
	__u64 n = 0;
	bpf_probe_read_kernel(&n, sizeof(n), &v);
	return n;
}

static __always_inline void on_counter_charge(__u8 fn, struct page_counter *c, __u64 nr, bool ok)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	if (stocks_read && k == COUNTER_MEMORY) {
		struct cpu_state *st = state();
		if (!st)
			return;
		settle(st);
		if (ok && fn == FN_PC_TRY_CHARGE && nr <= batch_pages) {
			/* Until refill_stock takes the surplus, and the request
			 * ends, usage counts the batch: not yet real use. */
			st->inflight = nr;
			__sync_fetch_and_add(&inflight_total, nr);
		}
		lean_emit(OP_COUNTER_CHARGE, fn, (ok ? 0 : FLAG_FAILED) | (fn == FN_PC_CHARGE ? FLAG_FORCED : 0), nr, cg, st, 0);
		return;
	}
	if (summary && k == COUNTER_MEMORY && ok) {
		struct cpu_state *st = state();
		if (st) {
			st->charged = 1;
			if (fn != FN_PC_CHARGE) {
				st->inflight += nr;
				__sync_fetch_and_add(&inflight_total, nr);
			}
		}
	}
	if (k)
		emit(OP_COUNTER_CHARGE, fn, k, (ok ? 0 : FLAG_FAILED) | (fn == FN_PC_CHARGE ? FLAG_FORCED : 0), nr, target_counter(k), cg);
}

static __always_inline void on_uncharge(struct page_counter *c, __u64 nr)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	__u32 z = 0;
	__u32 *d;

	if (!k)
		return;
	d = bpf_map_lookup_elem(&in_drain, &z);
	if (stocks_read && k == COUNTER_MEMORY) {
		struct cpu_state *st = state();
		if (!st)
			return;
		if (d && *d) {
			/* The stock still holds these pages until drain_stock
			 * returns: count them as stocked until then. */
			st->draining += nr;
			__sync_fetch_and_add(&draining_total, nr);
			lean_emit(OP_DRAIN, FN_DRAIN_STOCK, 0, nr, cg, st, 0);
			return;
		}
		settle(st);
		lean_emit(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, 0, nr, cg, st, 0);
		return;
	}
	if (d && *d && k == COUNTER_MEMORY) {
		if (summary) {
			struct cpu_state *st = state();
			if (st) {
				__sync_fetch_and_add(&stock_total, -st->stock);
				st->stock = 0;
			}
		}
		emit(OP_DRAIN, FN_DRAIN_STOCK, k, 0, nr, 0, cg);
	}
	emit(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, k, 0, nr, target_counter(k), cg);
}

static __always_inline void on_refill(struct mem_cgroup *memcg, __u64 nr)
{
	__u64 cg = member(memcg);
	if (!cg)
		return;
	if (stocks_read) {
		struct cpu_state *st = state();
		__u32 cpu = bpf_get_smp_processor_id();
		if (!st)
			return;
		if (cpu < MAX_CPUS)
			holds[cpu] = 1;
		/* A refill ends the request whose batch it takes the surplus of. */
		settle(st);
		lean_emit(OP_REFILL, FN_REFILL_STOCK, 0, nr, cg, st, nr);
		return;
	}
	if (summary) {
		struct cpu_state *st = state();
		if (st) {
			__s64 d = st->inflight < (__s64)nr ? st->inflight : (__s64)nr;
			st->stock += nr;
			__sync_fetch_and_add(&stock_total, nr);
			if (d > 0) {
				st->inflight -= d;
				__sync_fetch_and_add(&inflight_total, -d);
			}
		}
	}
	emit(OP_REFILL, FN_REFILL_STOCK, COUNTER_NONE, 0, nr, 0, cg);
}

/* A request for the target ended. In summary mode one served from the stock
 * is counted here instead of emitted; either way real use is measured. */
static __always_inline void on_request(void *ctx, struct mem_cgroup *memcg, __u32 gfp, __u64 nr, int ret, __u64 stack, __u64 cg)
{
	struct cpu_state *st;

	if (!summary) {
		emit_req(OP_CHARGE, FN_TRY_CHARGE, COUNTER_NONE, ret ? FLAG_FAILED : 0, nr, 0, gfp, stack, cg);
		return;
	}
	st = state();
	if (!st)
		return;
	if (ret || st->charged) {
		st->charged = 0;
		if (st->inflight) {
			__sync_fetch_and_add(&inflight_total, -st->inflight);
			st->inflight = 0;
		}
		emit_req(OP_CHARGE, FN_TRY_CHARGE, COUNTER_NONE, ret ? FLAG_FAILED : 0, nr, 0, gfp, 0, cg);
		if (ret)
			return;
	} else {
		__s64 d = st->stock < (__s64)nr ? st->stock : (__s64)nr;
		if (d > 0) {
			st->stock -= d;
			__sync_fetch_and_add(&stock_total, -d);
		}
		st->requests++;
		st->pages += nr;
		st->pending += nr;
	}
	__s64 usage = BPF_CORE_READ(memcg, memory.usage.counter);
	__u64 wm = BPF_CORE_READ(memcg, memory.watermark);
	__s64 real = usage - stock_total - inflight_total;
	__u64 now = bpf_ktime_get_ns();
	if (real > st->max_real) {
		st->max_real = real;
		st->max_real_ts = now;
	}
	if ((__u64)usage == wm && wm >= st->wm) {
		st->wm = wm;
		st->wm_real = real;
		st->wm_ts = now;
	}
}

static __always_inline void set_drain(__u32 v)
{
	__u32 z = 0;
	__u32 *d = bpf_map_lookup_elem(&in_drain, &z);
	if (d)
		*d = v;
	if (!v && stocks_read) {
		struct cpu_state *st = state();
		if (st && st->draining) {
			__sync_fetch_and_add(&draining_total, -st->draining);
			st->draining = 0;
		}
	}
}

/* fentry / fexit */

SEC("fexit/try_charge_memcg")
int BPF_PROG(fexit_try_charge, struct mem_cgroup *memcg, unsigned int gfp, unsigned int nr, int ret)
{
	__u64 cg = member(memcg);
	if (cg)
		on_request(ctx, memcg, gfp, nr, ret, summary ? 0 : req_stack_at(ctx, addr(ctx), gfp, nr), cg);
	return 0;
}

SEC("fexit/page_counter_try_charge")
int BPF_PROG(fexit_pc_try_charge, struct page_counter *c, unsigned long nr, struct page_counter **fail, bool ret)
{
	on_counter_charge(FN_PC_TRY_CHARGE, c, nr, ret);
	return 0;
}

SEC("fexit/page_counter_charge")
int BPF_PROG(fexit_pc_charge, struct page_counter *c, unsigned long nr)
{
	on_counter_charge(FN_PC_CHARGE, c, nr, true);
	return 0;
}

SEC("fexit/page_counter_uncharge")
int BPF_PROG(fexit_pc_uncharge, struct page_counter *c, unsigned long nr)
{
	on_uncharge(c, nr);
	return 0;
}

SEC("fentry/refill_stock")
int BPF_PROG(fentry_refill_stock, struct mem_cgroup *memcg, unsigned int nr)
{
	on_refill(memcg, nr);
	return 0;
}

SEC("fentry/drain_stock")
int BPF_PROG(fentry_drain_stock)
{
	set_drain(1);
	return 0;
}

SEC("fexit/drain_stock")
int BPF_PROG(fexit_drain_stock)
{
	set_drain(0);
	return 0;
}

/* kprobe / kretprobe */

static __always_inline __u64 args_key(__u8 fn)
{
	return (bpf_get_current_pid_tgid() << 8) | fn;
}

static __always_inline void save(__u8 fn, __u64 a0, __u64 a1, __u64 a2)
{
	__u64 k = args_key(fn);
	struct args a = {.a0 = a0, .a1 = a1, .a2 = a2};
	bpf_map_update_elem(&entry_args, &k, &a, BPF_ANY);
}

static __always_inline struct args *take(__u8 fn, __u64 *key)
{
	*key = args_key(fn);
	return bpf_map_lookup_elem(&entry_args, key);
}

SEC("kprobe/try_charge_memcg")
int BPF_KPROBE(kprobe_try_charge, struct mem_cgroup *memcg, unsigned int gfp, unsigned int nr)
{
	/* The stack is taken on entry: unwinding from a kretprobe is less sure. */
	__u64 cg = member(memcg);
	if (cg)
		save(FN_TRY_CHARGE, summary ? 0 : req_stack_at(ctx, PT_REGS_SP(ctx), gfp, nr), (__u64)nr | (__u64)gfp << 32, cg);
	return 0;
}

SEC("kretprobe/try_charge_memcg")
int BPF_KRETPROBE(kretprobe_try_charge, int ret)
{
	__u64 k;
	struct args *a = take(FN_TRY_CHARGE, &k);
	if (!a)
		return 0;
	on_request(ctx, (struct mem_cgroup *)target_memcg, (__u32)(a->a1 >> 32), (__u32)a->a1, ret, a->a0, a->a2);
	bpf_map_delete_elem(&entry_args, &k);
	return 0;
}

SEC("kprobe/page_counter_try_charge")
int BPF_KPROBE(kprobe_pc_try_charge, struct page_counter *c, unsigned long nr)
{
	__u64 cg;
	if (counter_kind(c, &cg))
		save(FN_PC_TRY_CHARGE, (__u64)c, nr, 0);
	return 0;
}

SEC("kretprobe/page_counter_try_charge")
int BPF_KRETPROBE(kretprobe_pc_try_charge, bool ret)
{
	__u64 k;
	struct args *a = take(FN_PC_TRY_CHARGE, &k);
	if (!a)
		return 0;
	on_counter_charge(FN_PC_TRY_CHARGE, (struct page_counter *)a->a0, a->a1, ret);
	bpf_map_delete_elem(&entry_args, &k);
	return 0;
}

SEC("kprobe/page_counter_charge")
int BPF_KPROBE(kprobe_pc_charge, struct page_counter *c, unsigned long nr)
{
	__u64 cg;
	if (counter_kind(c, &cg))
		save(FN_PC_CHARGE, (__u64)c, nr, 0);
	return 0;
}

SEC("kretprobe/page_counter_charge")
int BPF_KRETPROBE(kretprobe_pc_charge)
{
	__u64 k;
	struct args *a = take(FN_PC_CHARGE, &k);
	if (!a)
		return 0;
	on_counter_charge(FN_PC_CHARGE, (struct page_counter *)a->a0, a->a1, true);
	bpf_map_delete_elem(&entry_args, &k);
	return 0;
}

SEC("kprobe/page_counter_uncharge")
int BPF_KPROBE(kprobe_pc_uncharge, struct page_counter *c, unsigned long nr)
{
	__u64 cg;
	if (counter_kind(c, &cg))
		save(FN_PC_UNCHARGE, (__u64)c, nr, 0);
	return 0;
}

SEC("kretprobe/page_counter_uncharge")
int BPF_KRETPROBE(kretprobe_pc_uncharge)
{
	__u64 k;
	struct args *a = take(FN_PC_UNCHARGE, &k);
	if (!a)
		return 0;
	on_uncharge((struct page_counter *)a->a0, a->a1);
	bpf_map_delete_elem(&entry_args, &k);
	return 0;
}

SEC("kprobe/refill_stock")
int BPF_KPROBE(kprobe_refill_stock, struct mem_cgroup *memcg, unsigned int nr)
{
	on_refill(memcg, nr);
	return 0;
}

SEC("kprobe/drain_stock")
int BPF_KPROBE(kprobe_drain_stock)
{
	set_drain(1);
	return 0;
}

SEC("kretprobe/drain_stock")
int BPF_KRETPROBE(kretprobe_drain_stock)
{
	set_drain(0);
	return 0;
}

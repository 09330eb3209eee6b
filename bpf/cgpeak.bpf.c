//go:build ignore

// Memory cgroup charge tracer: counter charges and uncharges, and per-CPU
// stock refills and drains of one memcg (and with DESCENDANTS the memcgs
// below it), so user space can replay the counter and the stocks
// (analysis/) event by event.
//
// One source, three objects (gen.go builds each with its -D flag), one per
// mode, so each reads on its own and the verifier checks only what it runs:
//   MODE_CHARGES  every charge request is emitted, with its kernel stack;
//   MODE_SUMMARY  requests the stock serves are counted per CPU in the kernel
//                 (struct cpu_state) instead of emitted;
//   MODE_STOCKS   no program runs on a charge request at all: the per-CPU
//                 stocks are read from the kernel (struct memcg_stock_pcp, by
//                 CO-RE) at the few calls that touch the counter or a stock.
// MODE_SUMMARY is the fallback where the stocks cannot be read.
//
// Each function has an fentry/fexit and a kprobe/kretprobe program; the
// loader keeps one set. Function names are set from Go at attach time
// (try_charge before 5.14, try_charge_memcg after).

#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <stdbool.h>
#include "headers/bpf_helpers.h"
#include "headers/bpf_tracing.h"
#include "headers/bpf_core_read.h"
#include "headers/memcg.h"

#if defined(MODE_CHARGES) + defined(MODE_SUMMARY) + defined(MODE_STOCKS) != 1
#error "build with exactly one of -DMODE_CHARGES, -DMODE_SUMMARY, -DMODE_STOCKS"
#endif

char LICENSE[] SEC("license") = "GPL";

/* The event's op, counter and fn; generated into Go constants by bpf2go. */
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

enum flag {
	FLAG_FAILED = 1,
	FLAG_FORCED = 2,
};

struct event {
	__u64 ts;
	__u64 pages;
	__u64 usage;
	__u64 watermark;
	__u32 cpu;
	__u32 pid;
	__u32 tid;
	__u8 op;      /* enum op */
	__u8 counter; /* enum counter_kind */
	__u8 fn;      /* enum fn */
	__u8 flags;   /* enum flag */
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
	__u64 ustack;   /* charge requests: key of the user stack in ustacks,
			 * 0 if none (kernel thread, or the walk failed) */
	__u32 from_cpu; /* charge requests: the CPU the request entered
			 * try_charge on (kprobes; cpu elsewhere). A preemptible
			 * kernel can move the task between the stock consumed
			 * there and the return, which cpu is. */
	__u32 pad;
};

/* Keep the types in BTF for bpf2go's Go types. */
const struct event *unused_event __attribute__((unused));
const enum op *unused_op __attribute__((unused));
const enum counter_kind *unused_counter __attribute__((unused));
const enum fn *unused_fn __attribute__((unused));
const enum flag *unused_flag __attribute__((unused));

/* Set from Go before loading. */
volatile const __u64 target_cgid = 0;
/* Also trace the cgroups below the target. */
volatile const __u8 descendants = 0;

/* The target's struct mem_cgroup, learned from its first charge so that
 * counter events filter by a pointer compare instead of a chain of reads. */
__u64 target_memcg = 0;

#define WAKEUP_BYTES (256 << 10)

/* Sized by the loader per mode and machine (loader/ring.go). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

/* Events the ring buffer had no room for, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Calls whose kprobe arguments could not be kept for their return (nested
 * deeper than MAX_NEST on one thread), per CPU: events the trace lacks. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unmatched SEC(".maps");

static __always_inline void count(void *map)
{
	__u32 k = 0;
	__u64 *n = bpf_map_lookup_elem(map, &k);
	if (n)
		(*n)++;
}

/* Set while drain_stock runs on a CPU: a page_counter_uncharge inside it is
 * the stock going back, which the model must know apart from a free. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} in_drain SEC(".maps");

static __always_inline bool draining(void)
{
	__u32 z = 0;
	__u32 *d = bpf_map_lookup_elem(&in_drain, &z);
	return d && *d;
}

/* memcg -> {its own cgroup id, its id if it is the target or below it, else
 * 0}: with descendants every charge in the system asks whether its memcg is
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

/* start reserves an event and fills in what every event carries (the
 * counter's figures when pc is set); the caller adds the rest and sends it.
 * NULL when the ring buffer is full, counted as lost. */
static __always_inline struct event *start(__u8 op, __u8 fn, __u8 counter, __u8 flags, __u64 pages, struct page_counter *pc, __u64 cg)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost);
		return 0;
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
	e->from_cpu = e->cpu;
	e->pad = 0;
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->op = op;
	e->counter = counter;
	e->fn = fn;
	e->flags = flags;
	e->gfp = 0;
	e->stack = 0;
	e->ustack = 0;
	e->cgid = cg;
	e->consumed = 0;
	e->stocked = 0;
	e->real = 0;
	return e;
}

static __always_inline void send(struct event *e)
{
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* A wakeup per event would cost the workload an IPI and a reader context
	 * switch per page fault; wake the reader only once a batch has piled up
	 * (it also polls on a short deadline, and flushes at the end). */
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline __u8 charge_flags(__u8 fn, bool ok)
{
	return (ok ? 0 : FLAG_FAILED) | (fn == FN_PC_CHARGE ? FLAG_FORCED : 0);
}

/* Per-CPU figures of the summary modes. */
#if defined(MODE_SUMMARY) || defined(MODE_STOCKS)
/* Real use is the counter's usage minus the pages in all stocks, measured
 * where a request ends (MODE_SUMMARY); its peak, and the real use at the
 * last moment usage stood at the watermark, are kept per CPU and combined in
 * user space. */
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
	__s64 draining;   /* MODE_STOCKS: pages of a drain in progress */
};

/* Keeps struct cpu_state in BTF for bpf2go's Go type. */
const struct cpu_state *unused_cpu_state __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} states SEC(".maps");

/* Pages charged to the counter by requests not yet ended and not yet put in
 * a stock: usage counts them, real use must not (summed over CPUs). */
__s64 inflight_total = 0;

static __always_inline struct cpu_state *state(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&states, &z);
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
#endif

/* ---------------------------------------------------------------------
 * MODE_STOCKS: the kernel's own per-CPU stocks, read by CO-RE.
 */
#ifdef MODE_STOCKS

/* The two layouts of struct memcg_stock_pcp, as flavours CO-RE matches
 * against the kernel's BTF (only the fields read are declared). Up to 6.15 a
 * CPU stocks pages for one memcg; from 6.16 for up to NR_MEMCG_STOCK at once
 * (an array of memcgs and one of u8 page counts). Which one the kernel has
 * is told by whether cached is a pointer or an array: CO-RE finds no field
 * of the other kind. */
struct memcg_stock_pcp___v615 {
	struct mem_cgroup *cached;
	unsigned int nr_pages;
} __attribute__((preserve_access_index));

#define MAX_SLOTS 8
struct memcg_stock_pcp___v616 {
	__u8 nr_pages[MAX_SLOTS];
	struct mem_cgroup *cached[MAX_SLOTS];
} __attribute__((preserve_access_index));

/* The per-CPU variable and the per-CPU area offsets, resolved by the loader
 * from kallsyms (typeless ksyms: their addresses; not const, which cilium/ebpf
 * would see as a type). */
extern void memcg_stock __ksym;
extern void __per_cpu_offset __ksym;

volatile const __u32 ncpus = 0;
volatile const __u64 batch_pages = 0;

#define MAX_CPUS 1024

/* CPUs that were ever found holding pages of the target's stock: the only
 * ones whose stock need be read. Set by whichever CPU reads that stock (or
 * refills its own); a byte only ever goes from 0 to 1, so a race between
 * CPUs writing the same byte loses nothing. */
__u8 holds[MAX_CPUS];
/* Pages drain_stock has uncharged but not yet taken out of its stock. */
__s64 draining_total = 0;
/* Stock reads that failed (a fault, or more slots than MAX_SLOTS), per CPU:
 * the stocks of those events are unknown, and the trace says so. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} stock_errors SEC(".maps");

/* Set once every CPU's stock was read: stocks filled before tracing began
 * (cgpeak trace on a running cgroup) are found by the first event. */
__u8 scanned = 0;

/* stock_on reads how many pages CPU cpu's stock holds for the target. */
static __always_inline __s64 stock_on(__u32 cpu)
{
	__u64 off = 0;
	__s64 n = 0;

	if (bpf_probe_read_kernel(&off, sizeof(off), (void *)&__per_cpu_offset + (__u64)cpu * 8)) {
		count(&stock_errors);
		return 0;
	}
	void *s = (void *)&memcg_stock + off;
	if (bpf_core_field_exists(struct memcg_stock_pcp___v616, cached)) {
		struct memcg_stock_pcp___v616 *m = s;
		__u64 cached[MAX_SLOTS] = {};
		__u8 nr[MAX_SLOTS] = {};
		__u32 csz = bpf_core_field_size(m->cached);
		__u32 nsz = bpf_core_field_size(m->nr_pages);
		if (csz > sizeof(cached) || nsz > sizeof(nr) ||
		    bpf_probe_read_kernel(cached, csz & (sizeof(cached) * 2 - 1), s + bpf_core_field_offset(m->cached)) ||
		    bpf_probe_read_kernel(nr, nsz & (sizeof(nr) * 2 - 1), s + bpf_core_field_offset(m->nr_pages))) {
			count(&stock_errors);
			return 0;
		}
		for (__u32 i = 0; i < MAX_SLOTS; i++)
			if (i < nsz && cached[i] == target_memcg)
				n += nr[i];
		return n;
	}
	struct memcg_stock_pcp___v615 *m = s;
	struct mem_cgroup *c = 0;
	unsigned int nr = 0;
	if (bpf_core_read(&c, sizeof(c), &m->cached) || bpf_core_read(&nr, sizeof(nr), &m->nr_pages)) {
		count(&stock_errors);
		return 0;
	}
	if ((__u64)c == target_memcg)
		n = nr;
	return n;
}

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

/* emit_read emits an event for the target's memory counter: this CPU's
 * stock is synced with the kernel's (what it served since its last event is
 * reported as consumed), then real use is measured. added: pages the call
 * is about to put in this CPU's stock (refill_stock's entry). A drain emits
 * its uncharge too, with the same figures: the stock it gives back is not
 * zeroed until drain_stock returns. */
static __always_inline void emit_read(__u8 op, __u8 fn, __u8 flags, __u64 pages, __u64 cg, struct cpu_state *st, __s64 added)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct page_counter *pc = target_counter(COUNTER_MEMORY);
	__s64 mine, stocked, real = 0;
	__u32 consumed = 0;

	stocked = read_stocks(cpu, &mine) + added;
	if (st->stock > mine)
		consumed = st->stock - mine;
	st->stock = mine + added;
	if (pc)
		real = BPF_CORE_READ(pc, usage.counter) - stocked - inflight_total + draining_total;
	struct event *e = start(op, fn, COUNTER_MEMORY, flags, pages, pc, cg);
	if (e) {
		e->consumed = consumed;
		e->stocked = stocked;
		e->real = real;
		send(e);
	}
	if (op == OP_DRAIN) {
		st->stock = 0;
		e = start(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, COUNTER_MEMORY, 0, pages, pc, cg);
		if (e) {
			e->stocked = stocked;
			e->real = real;
			send(e);
		}
	}
}

static __always_inline void on_counter_charge(__u8 fn, struct page_counter *c, __u64 nr, bool ok)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	if (k == COUNTER_MEMORY) {
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
		emit_read(OP_COUNTER_CHARGE, fn, charge_flags(fn, ok), nr, cg, st, 0);
		return;
	}
	if (k) {
		struct event *e = start(OP_COUNTER_CHARGE, fn, k, charge_flags(fn, ok), nr, target_counter(k), cg);
		if (e)
			send(e);
	}
}

static __always_inline void on_uncharge(struct page_counter *c, __u64 nr)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);

	if (k == COUNTER_MEMORY) {
		struct cpu_state *st = state();
		if (!st)
			return;
		if (draining()) {
			/* The stock still holds these pages until drain_stock
			 * returns: count them as stocked until then. */
			st->draining += nr;
			__sync_fetch_and_add(&draining_total, nr);
			emit_read(OP_DRAIN, FN_DRAIN_STOCK, 0, nr, cg, st, 0);
			return;
		}
		settle(st);
		emit_read(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, 0, nr, cg, st, 0);
		return;
	}
	if (k) {
		struct event *e = start(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, k, 0, nr, target_counter(k), cg);
		if (e)
			send(e);
	}
}

static __always_inline void on_refill(struct mem_cgroup *memcg, __u64 nr)
{
	__u64 cg = member(memcg);
	struct cpu_state *st = state();
	__u32 cpu = bpf_get_smp_processor_id();
	if (!cg || !st)
		return;
	if (cpu < MAX_CPUS)
		holds[cpu] = 1;
	/* A refill ends the request whose batch it takes the surplus of. */
	settle(st);
	emit_read(OP_REFILL, FN_REFILL_STOCK, 0, nr, cg, st, nr);
}

/* drain_ended: drain_stock returned, its pages are out of the stock. */
static __always_inline void drain_ended(void)
{
	struct cpu_state *st = state();
	if (st && st->draining) {
		__sync_fetch_and_add(&draining_total, -st->draining);
		st->draining = 0;
	}
}

#endif /* MODE_STOCKS */

/* ---------------------------------------------------------------------
 * MODE_SUMMARY: the stocks followed by probing every charge request.
 */
#ifdef MODE_SUMMARY

__s64 stock_total = 0;

static __always_inline void on_counter_charge(__u8 fn, struct page_counter *c, __u64 nr, bool ok)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	if (!k)
		return;
	if (k == COUNTER_MEMORY && ok) {
		struct cpu_state *st = state();
		if (st) {
			st->charged = 1;
			if (fn != FN_PC_CHARGE) {
				st->inflight += nr;
				__sync_fetch_and_add(&inflight_total, nr);
			}
		}
	}
	struct event *e = start(OP_COUNTER_CHARGE, fn, k, charge_flags(fn, ok), nr, target_counter(k), cg);
	if (!e)
		return;
	if (k == COUNTER_MEMORY) {
		/* Not on memsw events: the replay of memory leaves those out. */
		struct cpu_state *st = state();
		if (st) {
			e->consumed = st->pending;
			st->pending = 0;
		}
	}
	send(e);
}

/* emit_pending sends an event of the memory counter with the pages this
 * CPU's stock served since its last event. */
static __always_inline void emit_pending(struct event *e)
{
	struct cpu_state *st = state();
	if (st) {
		e->consumed = st->pending;
		st->pending = 0;
	}
	send(e);
}

static __always_inline void on_uncharge(struct page_counter *c, __u64 nr)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	struct event *e;

	if (!k)
		return;
	if (k == COUNTER_MEMORY && draining()) {
		struct cpu_state *st = state();
		if (st) {
			__sync_fetch_and_add(&stock_total, -st->stock);
			st->stock = 0;
		}
		e = start(OP_DRAIN, FN_DRAIN_STOCK, k, 0, nr, 0, cg);
		if (e)
			emit_pending(e);
	}
	e = start(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, k, 0, nr, target_counter(k), cg);
	if (!e)
		return;
	if (k == COUNTER_MEMORY)
		emit_pending(e);
	else
		send(e);
}

static __always_inline void on_refill(struct mem_cgroup *memcg, __u64 nr)
{
	__u64 cg = member(memcg);
	if (!cg)
		return;
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
	struct event *e = start(OP_REFILL, FN_REFILL_STOCK, COUNTER_NONE, 0, nr, 0, cg);
	if (e)
		emit_pending(e);
}

/* A request for the target ended: one served from the stock is counted here
 * instead of emitted; either way real use is measured. */
static __always_inline void on_request(struct mem_cgroup *memcg, __u32 gfp, __u64 nr, int ret, __u64 cg)
{
	struct cpu_state *st = state();
	if (!st)
		return;
	if (ret || st->charged) {
		st->charged = 0;
		settle(st);
		struct event *e = start(OP_CHARGE, FN_TRY_CHARGE, COUNTER_NONE, ret ? FLAG_FAILED : 0, nr, 0, cg);
		if (e) {
			e->gfp = gfp;
			emit_pending(e);
		}
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

#endif /* MODE_SUMMARY */

/* ---------------------------------------------------------------------
 * MODE_CHARGES: every event emitted, charge requests with their stacks.
 */
#ifdef MODE_CHARGES

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

/* addr reads a pointer's value as a number, which the verifier lets no
 * arithmetic but addition make of a context pointer. */
static __always_inline __u64 addr(void *p)
{
	void *v = p;
	__u64 n = 0;
	bpf_probe_read_kernel(&n, sizeof(n), &v);
	return n;
}

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

static __always_inline void on_counter_charge(__u8 fn, struct page_counter *c, __u64 nr, bool ok)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	if (!k)
		return;
	struct event *e = start(OP_COUNTER_CHARGE, fn, k, charge_flags(fn, ok), nr, target_counter(k), cg);
	if (e)
		send(e);
}

static __always_inline void on_uncharge(struct page_counter *c, __u64 nr)
{
	__u64 cg;
	__u8 k = counter_kind(c, &cg);
	struct event *e;

	if (!k)
		return;
	if (k == COUNTER_MEMORY && draining()) {
		e = start(OP_DRAIN, FN_DRAIN_STOCK, k, 0, nr, 0, cg);
		if (e)
			send(e);
	}
	e = start(OP_COUNTER_UNCHARGE, FN_PC_UNCHARGE, k, 0, nr, target_counter(k), cg);
	if (e)
		send(e);
}

static __always_inline void on_refill(struct mem_cgroup *memcg, __u64 nr)
{
	__u64 cg = member(memcg);
	if (!cg)
		return;
	struct event *e = start(OP_REFILL, FN_REFILL_STOCK, COUNTER_NONE, 0, nr, 0, cg);
	if (e)
		send(e);
}

/* User stacks of charge requests, so the trace can say which of the
 * workload's functions made each charge: walked by frame pointers
 * (bpf_get_stack with BPF_F_USER_STACK) and stored once per distinct stack,
 * keyed by a hash of its frames. With BPF_F_USER_BUILD_ID the kernel names
 * each frame by the build ID of the file mapped there and the offset in it,
 * at the moment of the request: the stack means the same after the process
 * exited or exec'd. A frame the kernel could not name so (no build ID, the
 * mm lock busy) is a bare address, which user space names through the
 * process's maps if it can still read them (it is woken at once for a new
 * stack). */
#define USTACK_DEPTH 32
struct ustack_buf {
	__u64 n; /* frames walked; USTACK_DEPTH: the stack may be deeper */
	struct bpf_stack_build_id frames[USTACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ustack_buf);
} uscratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ustack_buf);
} ustacks SEC(".maps");

/* How each request's user stack was taken, per CPU: every request counts
 * once in walked, reused, failed or not_user; truncated counts walks that
 * filled the buffer. */
enum ustack_stat {
	US_WALKED,
	US_REUSED,
	US_FAILED,
	US_NOT_USER,
	US_TRUNCATED,
	US_NSTATS,
};
const enum ustack_stat *unused_ustack_stat __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_NSTATS);
	__type(key, __u32);
	__type(value, __u64);
} ustack_stats SEC(".maps");

static __always_inline void ucount(__u32 i)
{
	__u64 *n = bpf_map_lookup_elem(&ustack_stats, &i);
	if (n)
		(*n)++;
}

struct task_struct {
	void *mm;
} __attribute__((preserve_access_index));

/* Set from Go: the kernel has bpf_task_pt_regs (5.15+), which the user call
 * path cache needs; without it every user stack is walked. */
volatile const __u8 task_regs = 0;
/* Set from Go: take user stacks (off only to measure their cost). */
volatile const __u8 user_stacks = 1;

/* walk_ustack walks and stores the current user stack; *fresh says it was
 * not stored before. 0 when the walk gave nothing. */
static __always_inline __u64 walk_ustack(void *ctx, bool *fresh)
{
	__u32 z = 0;
	struct ustack_buf *b = bpf_map_lookup_elem(&uscratch, &z);
	__u64 h = 14695981039346656037ULL;

	if (!b)
		return 0;
	long r = bpf_get_stack(ctx, b->frames, sizeof(b->frames), BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	if (r <= 0) {
		ucount(US_FAILED);
		return 0;
	}
	ucount(US_WALKED);
	b->n = r / sizeof(struct bpf_stack_build_id);
	if (b->n >= USTACK_DEPTH)
		ucount(US_TRUNCATED);
	/* bpf_get_stack zeroes what it did not fill. */
	__u64 *w = (__u64 *)b->frames;
	for (int i = 0; i < USTACK_DEPTH * 4; i++) { /* 4 words a frame */
		h ^= w[i];
		h *= 1099511628211ULL;
	}
	if (!h)
		h = 1;
	if (!bpf_map_lookup_elem(&ustacks, &h) && !bpf_map_update_elem(&ustacks, &h, b, BPF_NOEXIST))
		*fresh = true;
	return h;
}

/* User call paths whose stack is known, as paths does for kernel stacks: a
 * request from the same instruction (user ip), at the same user stack depth
 * (sp), returning to the same place (the return address the frame pointer
 * points at), in the same process, has the stack last walked there; it is
 * walked again on its first CHECK_FIRST requests, then one in CHECK_EVERY,
 * and a walk that finds another stack takes the path over. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct path);
} upaths SEC(".maps");

static __always_inline __u64 req_ustack(void *ctx, bool *fresh)
{
	if (!user_stacks)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	if (!BPF_CORE_READ(task, mm)) {
		ucount(US_NOT_USER);
		return 0;
	}
	if (walk_every || !task_regs)
		return walk_ustack(ctx, fresh);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 ip = 0, sp = 0, bp = 0, ret = 0;
	bpf_probe_read_kernel(&ip, sizeof(ip), &regs->rip);
	bpf_probe_read_kernel(&sp, sizeof(sp), &regs->rsp);
	bpf_probe_read_kernel(&bp, sizeof(bp), &regs->rbp);
	bpf_probe_read_user(&ret, sizeof(ret), (void *)(bp + 8));
	__u64 k = 14695981039346656037ULL;
	k = (k ^ (bpf_get_current_pid_tgid() >> 32)) * 1099511628211ULL;
	k = (k ^ ip) * 1099511628211ULL;
	k = (k ^ sp) * 1099511628211ULL;
	k = (k ^ ret) * 1099511628211ULL;
	struct path *known = bpf_map_lookup_elem(&upaths, &k);
	if (known) {
		__u64 n = known->hits++; /* racy, and only a heuristic */
		__u64 s = known->stack;
		if (n >= CHECK_FIRST && n % CHECK_EVERY) {
			ucount(US_REUSED);
			return s;
		}
		__u64 w = walk_ustack(ctx, fresh);
		if (w != s) {
			known->stack = w;
			known->hits = 1;
		}
		return w;
	}
	struct path p = {.stack = walk_ustack(ctx, fresh), .hits = 1};
	if (p.stack)
		bpf_map_update_elem(&upaths, &k, &p, BPF_NOEXIST);
	return p.stack;
}

static __always_inline void on_request(void *ctx, __u32 gfp, __u64 nr, int ret, __u64 stack, __u64 cg, __u32 from_cpu)
{
	bool fresh = false;
	__u64 ustack = req_ustack(ctx, &fresh);
	struct event *e = start(OP_CHARGE, FN_TRY_CHARGE, COUNTER_NONE, ret ? FLAG_FAILED : 0, nr, 0, cg);
	if (!e)
		return;
	e->gfp = gfp;
	e->stack = stack;
	e->ustack = ustack;
	e->from_cpu = from_cpu;
	if (!fresh) {
		send(e);
		return;
	}
	/* A new stack: user space reads the process's maps for it now, before
	 * the process may exit. */
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

#endif /* MODE_CHARGES */

static __always_inline void set_drain(__u32 v)
{
	__u32 z = 0;
	__u32 *d = bpf_map_lookup_elem(&in_drain, &z);
	if (d)
		*d = v;
#ifdef MODE_STOCKS
	if (!v)
		drain_ended();
#endif
}

/* ---------------------------------------------------------------------
 * fentry / fexit
 *
 * The trampoline runs these with migration disabled but, on a preemptible
 * kernel, preemption enabled, and it counts each program as running on its
 * CPU from entry to exit: a task preempted inside a program makes the next
 * task that enters the same program on that CPU a recursion, skipped and
 * counted in the program's recursion_misses. So the body runs with
 * preemption disabled where the kernel offers it (the kfuncs are 6.10+; weak,
 * so older kernels load the programs without them, and those kernels are
 * not preemptible in the configurations we trace: see docs/tracer.md). What
 * is left is the trampoline's own few instructions around the body.
 */

extern void bpf_preempt_disable(void) __ksym __weak;
extern void bpf_preempt_enable(void) __ksym __weak;

#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), #sym " should be weak"); !!sym; })

#define NO_PREEMPT(body) do {						\
		bool off_ = bpf_ksym_exists(bpf_preempt_disable) &&	\
			    bpf_ksym_exists(bpf_preempt_enable);	\
		if (off_)						\
			bpf_preempt_disable();				\
		body;							\
		if (off_)						\
			bpf_preempt_enable();				\
	} while (0)

#ifndef MODE_STOCKS
static __always_inline void try_charge_ended(void *ctx, struct mem_cgroup *memcg, unsigned int gfp, unsigned int nr, int ret)
{
	__u64 cg = member(memcg);
	if (!cg)
		return;
#ifdef MODE_CHARGES
	on_request(ctx, gfp, nr, ret, req_stack_at(ctx, addr(ctx), gfp, nr), cg, bpf_get_smp_processor_id());
#else
	on_request(memcg, gfp, nr, ret, cg);
#endif
}

SEC("fexit/try_charge_memcg")
int BPF_PROG(fexit_try_charge, struct mem_cgroup *memcg, unsigned int gfp, unsigned int nr, int ret)
{
	NO_PREEMPT(try_charge_ended(ctx, memcg, gfp, nr, ret));
	return 0;
}
#endif

SEC("fexit/page_counter_try_charge")
int BPF_PROG(fexit_pc_try_charge, struct page_counter *c, unsigned long nr, struct page_counter **fail, bool ret)
{
	NO_PREEMPT(on_counter_charge(FN_PC_TRY_CHARGE, c, nr, ret));
	return 0;
}

SEC("fexit/page_counter_charge")
int BPF_PROG(fexit_pc_charge, struct page_counter *c, unsigned long nr)
{
	NO_PREEMPT(on_counter_charge(FN_PC_CHARGE, c, nr, true));
	return 0;
}

SEC("fexit/page_counter_uncharge")
int BPF_PROG(fexit_pc_uncharge, struct page_counter *c, unsigned long nr)
{
	NO_PREEMPT(on_uncharge(c, nr));
	return 0;
}

SEC("fentry/refill_stock")
int BPF_PROG(fentry_refill_stock, struct mem_cgroup *memcg, unsigned int nr)
{
	NO_PREEMPT(on_refill(memcg, nr));
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
	NO_PREEMPT(set_drain(0));
	return 0;
}

/* ---------------------------------------------------------------------
 * kprobe / kretprobe
 *
 * A kretprobe does not see its call's arguments, so the kprobe keeps them
 * per thread and function. The same thread can enter a function again before
 * it returns: an interrupt (a softirq freeing or charging memory) nests a
 * call inside the one it interrupted. So the arguments are kept as a stack
 * of frames, each tagged with the stack pointer of its call: a return takes
 * the top frame only if that frame is its own call's (its stack pointer sits
 * just above the frame's), and so it leaves alone the frame of the call it
 * interrupted, whether or not its own call was kept (calls for other memcgs
 * are not). A call nested deeper than MAX_NEST loses its frame, counted in
 * unmatched: the trace says it is incomplete.
 */

#define MAX_NEST 4
/* How far above a call's entry stack pointer its return's lies: the return
 * address popped, and what the kretprobe trampoline pushes (one or two words
 * depending on the kernel). A nested call returns deeper (below), or on
 * another stack altogether (the IRQ stack). */
#define RET_SP_SLACK 64

struct args {
	__u64 sp;
	__u64 a0;
	__u64 a1;
	__u64 a2;
	__u32 cpu; /* the CPU the call entered on */
	__u32 pad;
};

struct frames {
	__u32 depth; /* frames pushed; may exceed MAX_NEST, counting the lost */
	__u32 pad;
	struct args a[MAX_NEST];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct frames);
} entry_args SEC(".maps");

static __always_inline __u64 args_key(__u8 fn)
{
	return (bpf_get_current_pid_tgid() << 8) | fn;
}

static __always_inline void save(struct pt_regs *ctx, __u8 fn, __u64 a0, __u64 a1, __u64 a2)
{
	__u64 k = args_key(fn);
	struct frames *f = bpf_map_lookup_elem(&entry_args, &k);
	if (!f) {
		struct frames z = {};
		bpf_map_update_elem(&entry_args, &k, &z, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&entry_args, &k);
		if (!f) {
			count(&unmatched);
			return;
		}
	}
	__u32 d = f->depth;
	f->depth = d + 1;
	if (d >= MAX_NEST) {
		count(&unmatched);
		return;
	}
	f->a[d].sp = PT_REGS_SP(ctx);
	f->a[d].a0 = a0;
	f->a[d].a1 = a1;
	f->a[d].a2 = a2;
	f->a[d].cpu = bpf_get_smp_processor_id();
}

/* take pops this return's frame into *out, if its call was kept. */
static __always_inline bool take(struct pt_regs *ctx, __u8 fn, struct args *out)
{
	__u64 k = args_key(fn);
	struct frames *f = bpf_map_lookup_elem(&entry_args, &k);
	if (!f || !f->depth)
		return false;
	__u32 d = f->depth - 1;
	if (d >= MAX_NEST) {
		/* The top frame was lost on entry (counted there); whether
		 * this return is that call's cannot be told by a stack
		 * pointer it does not have, and nesting this deep is not
		 * expected, so the frame count simply drops. */
		f->depth = d;
		return false;
	}
	__u64 sp = PT_REGS_SP(ctx);
	if (sp < f->a[d].sp || sp - f->a[d].sp > RET_SP_SLACK)
		return false; /* a nested call that was not kept */
	*out = f->a[d];
	f->depth = d;
	if (!d)
		bpf_map_delete_elem(&entry_args, &k);
	return true;
}

#ifdef MODE_CHARGES
/* Never attached: loader_test.go runs it (BPF_PROG_TEST_RUN) to check the
 * frames above against the nesting an interrupt makes, which no workload
 * provokes at will. Stack pointers are made up; a return's lies 16 bytes
 * above its call's, as on x86 kernels. */
__u64 nest_result[5];

static __always_inline void set_sp(struct pt_regs *r, __u64 sp)
{
	PT_REGS_SP(r) = sp;
}

SEC("raw_tp")
int test_nesting(void *ctx)
{
	struct pt_regs outer = {}, outer_ret = {}, inner = {}, inner_ret = {}, other_ret = {};
	struct args a = {};

	set_sp(&outer, 0x10000);
	set_sp(&outer_ret, 0x10010);
	set_sp(&inner, 0x8000);
	set_sp(&inner_ret, 0x8010);
	set_sp(&other_ret, 0x6010);
	save(&outer, FN_PC_UNCHARGE, 1, 0, 0);
	/* An interrupt's call that was not kept (another memcg) returns:
	 * the outer call's frame must stay. */
	nest_result[0] = take(&other_ret, FN_PC_UNCHARGE, &a);
	/* One that was kept: each return gets its own call's arguments. */
	save(&inner, FN_PC_UNCHARGE, 2, 0, 0);
	nest_result[1] = take(&inner_ret, FN_PC_UNCHARGE, &a) ? a.a0 : 0;
	nest_result[2] = take(&outer_ret, FN_PC_UNCHARGE, &a) ? a.a0 : 0;
	nest_result[3] = take(&outer_ret, FN_PC_UNCHARGE, &a);
	/* Deeper than MAX_NEST: the call is counted, not lost in silence. */
	for (int i = 0; i <= MAX_NEST; i++) {
		struct pt_regs r = {};
		set_sp(&r, 0x20000 - i * 0x100);
		save(&r, FN_PC_CHARGE, i, 0, 0);
	}
	__u32 k = 0;
	__u64 *n = bpf_map_lookup_elem(&unmatched, &k);
	nest_result[4] = n ? *n : 0;
	return 0;
}
#endif

#ifndef MODE_STOCKS
SEC("kprobe/try_charge_memcg")
int BPF_KPROBE(kprobe_try_charge, struct mem_cgroup *memcg, unsigned int gfp, unsigned int nr)
{
	__u64 cg = member(memcg);
	if (!cg)
		return 0;
#ifdef MODE_CHARGES
	/* The stack is taken on entry: unwinding from a kretprobe is less sure. */
	save(ctx, FN_TRY_CHARGE, req_stack_at(ctx, PT_REGS_SP(ctx), gfp, nr), (__u64)nr | (__u64)gfp << 32, cg);
#else
	save(ctx, FN_TRY_CHARGE, (__u64)memcg, (__u64)nr | (__u64)gfp << 32, cg);
#endif
	return 0;
}

SEC("kretprobe/try_charge_memcg")
int BPF_KRETPROBE(kretprobe_try_charge, int ret)
{
	struct args a;
	if (!take(ctx, FN_TRY_CHARGE, &a))
		return 0;
#ifdef MODE_CHARGES
	on_request(ctx, (__u32)(a.a1 >> 32), (__u32)a.a1, ret, a.a0, a.a2, a.cpu);
#else
	on_request((struct mem_cgroup *)a.a0, (__u32)(a.a1 >> 32), (__u32)a.a1, ret, a.a2);
#endif
	return 0;
}
#endif

SEC("kprobe/page_counter_try_charge")
int BPF_KPROBE(kprobe_pc_try_charge, struct page_counter *c, unsigned long nr)
{
	__u64 cg;
	if (counter_kind(c, &cg))
		save(ctx, FN_PC_TRY_CHARGE, (__u64)c, nr, 0);
	return 0;
}

SEC("kretprobe/page_counter_try_charge")
int BPF_KRETPROBE(kretprobe_pc_try_charge, bool ret)
{
	struct args a;
	if (take(ctx, FN_PC_TRY_CHARGE, &a))
		on_counter_charge(FN_PC_TRY_CHARGE, (struct page_counter *)a.a0, a.a1, ret);
	return 0;
}

SEC("kprobe/page_counter_charge")
int BPF_KPROBE(kprobe_pc_charge, struct page_counter *c, unsigned long nr)
{
	__u64 cg;
	if (counter_kind(c, &cg))
		save(ctx, FN_PC_CHARGE, (__u64)c, nr, 0);
	return 0;
}

SEC("kretprobe/page_counter_charge")
int BPF_KRETPROBE(kretprobe_pc_charge)
{
	struct args a;
	if (take(ctx, FN_PC_CHARGE, &a))
		on_counter_charge(FN_PC_CHARGE, (struct page_counter *)a.a0, a.a1, true);
	return 0;
}

SEC("kprobe/page_counter_uncharge")
int BPF_KPROBE(kprobe_pc_uncharge, struct page_counter *c, unsigned long nr)
{
	__u64 cg;
	if (counter_kind(c, &cg))
		save(ctx, FN_PC_UNCHARGE, (__u64)c, nr, 0);
	return 0;
}

SEC("kretprobe/page_counter_uncharge")
int BPF_KRETPROBE(kretprobe_pc_uncharge)
{
	struct args a;
	if (take(ctx, FN_PC_UNCHARGE, &a))
		on_uncharge((struct page_counter *)a.a0, a.a1);
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

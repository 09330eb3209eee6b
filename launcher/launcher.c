//go:build ignore

// The launcher starts the measured command from a process with almost no
// memory of its own. The kernel folds the RSS high-water mark of the old mm
// into ru_maxrss at exec, and Go's os/exec starts children with CLONE_VM, so a
// command started straight from cgpeak would report cgpeak's size. cgpeak
// starts this launcher; the launcher forks a fresh few-page mm, puts the child
// in the run's cgroup before exec, waits for it and hands back its exit status
// and rusage and its wall time on fd 3 (after the errno of a failed exec,
// when it failed).
//
// argv: launcher MODE PATH ARG0 ARGS...   MODE "2": fd 4 is the cgroup directory
// (clone3 CLONE_INTO_CGROUP); MODE "1": fd 4 is the v1 cgroup.procs file.
// MODE may go on with ":UID:GID:G1,G2,...": the child, once in the cgroup,
// drops to that user (setgroups, setgid, setuid) before exec, so a command
// measured under sudo runs as its user while cgpeak and the launcher stay root.
// Built with -nostdlib -static: no libc, so the mm stays a few pages.
#include <linux/sched.h>
#include <linux/resource.h>
#include <linux/signal.h>
#include <asm/unistd.h>
#include <linux/fcntl.h>

static long sc(long n, long a, long b, long c, long d, long e) {
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
	return ret;
}

// mmap takes six arguments; the sixth goes in r9.
static long sc6(long n, long a, long b, long c, long d, long e, long f) {
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

struct result {
	int status;
	int err; // errno of a failed start, 0 otherwise
	struct rusage ru;
	long wall_ns; // CLOCK_MONOTONIC from the child's start in the cgroup to wait4's return
};

struct ts {
	long sec, nsec;
};

static long now_ns(void) {
	struct ts t;
	sc(__NR_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)&t, 0, 0, 0);
	return t.sec * 1000000000L + t.nsec;
}

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

// num parses decimal digits at *p, leaving *p after them.
static unsigned long num(const char **p) {
	unsigned long n = 0;
	while (**p >= '0' && **p <= '9') n = n * 10 + (unsigned long)(*(*p)++ - '0');
	return n;
}

#define MAXGROUPS 256
static unsigned int groups[MAXGROUPS];

__asm__(".global _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n call cmain\n hlt\n");

void cmain(long *sp) {
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	struct result res = {0};
	if (argc < 4) sc(__NR_exit_group, 125, 0, 0, 0, 0);
	// Exec'd from a memfd, the kernel names the launcher after the fd's
	// number ("64"): that name would stand for the child's charges before
	// its exec in traces and profiles. PR_SET_NAME is 15.
	sc(__NR_prctl, 15, (long)"cgpeak-launcher", 0, 0, 0);
	int v2 = argv[1][0] == '2';
	int drop = 0;
	unsigned long uid = 0, gid = 0, ngroups = 0;
	const char *p = argv[1] + 1;
	if (*p == ':') {
		p++;
		drop = 1;
		uid = num(&p);
		if (*p == ':') p++;
		gid = num(&p);
		if (*p == ':') p++;
		while (*p && ngroups < MAXGROUPS) {
			groups[ngroups++] = (unsigned int)num(&p);
			if (*p == ',') p++;
			else break;
		}
	}
	struct clone_args ca = {0};
	ca.exit_signal = SIGCHLD;
	if (v2) {
		ca.flags = CLONE_INTO_CGROUP;
		ca.cgroup = 4;
	}
	// The command's wall time starts when its process exists in the run's
	// cgroup, so cgpeak's start of the launcher and the result pipe stay
	// outside it. On v1 the child joins the cgroup by writing cgroup.procs,
	// which takes the cgroup threadgroup lock (an RCU grace period, hundreds
	// of microseconds): the child takes the start time after it, into a page
	// it shares with the launcher.
	volatile long *start = 0;
	if (!v2) {
		long m = sc6(__NR_mmap, 0, 4096, 3 /* PROT_READ|PROT_WRITE */, 0x21 /* MAP_SHARED|MAP_ANONYMOUS */, -1, 0);
		if (m < 0 && m > -4096) sc(__NR_exit_group, 125, 0, 0, 0, 0);
		start = (volatile long *)m;
		// A shared page is charged to the cgroup of the task that first
		// touches it: touched here, it is the launcher's (cgpeak's cgroup),
		// not 4 KiB of shmem in the run's figures once the child writes it.
		*start = 0;
	}
	long t0 = now_ns();
	long pid = sc(__NR_clone3, (long)&ca, sizeof ca, 0, 0, 0);
	if (pid == 0) {
		if (!v2) {
			if (sc(__NR_write, 4, (long)"0", 1, 0, 0) != 1) sc(__NR_exit_group, 124, 0, 0, 0, 0);
			*start = now_ns();
		}
		// fd 3 closes at a successful exec; a failed one reports its errno
		// there (status -1) before the launcher's own result.
		sc(__NR_fcntl, 3, F_SETFD, FD_CLOEXEC, 0, 0);
		sc(__NR_close, 4, 0, 0, 0, 0);
		if (drop && (sc(__NR_setgroups, (long)ngroups, (long)groups, 0, 0, 0) < 0 ||
			     sc(__NR_setgid, (long)gid, 0, 0, 0, 0) < 0 || sc(__NR_setuid, (long)uid, 0, 0, 0, 0) < 0))
			sc(__NR_exit_group, 123, 0, 0, 0, 0);
		long e = sc(__NR_execve, (long)argv[2], (long)(argv + 3), (long)envp, 0, 0);
		struct result fail = {-1, (int)-e};
		sc(__NR_write, 3, (long)&fail, sizeof fail, 0, 0);
		sc(__NR_exit_group, e == -2 ? 127 : 126, 0, 0, 0, 0);
	}
	if (pid < 0) {
		res.err = (int)-pid;
		sc(__NR_write, 3, (long)&res, sizeof res, 0, 0);
		sc(__NR_exit_group, 125, 0, 0, 0, 0);
	}
	// cgpeak ends the workload through the cgroup; the launcher must outlive
	// it to report, so terminal signals are ignored here (not in the child).
	struct ksigaction ign = {(void *)1, 0, 0, 0};
	sc(__NR_rt_sigaction, SIGINT, (long)&ign, 0, 8, 0);
	sc(__NR_rt_sigaction, SIGQUIT, (long)&ign, 0, 8, 0);
	sc(__NR_rt_sigaction, SIGTERM, (long)&ign, 0, 8, 0);
	sc(__NR_rt_sigaction, SIGHUP, (long)&ign, 0, 8, 0);
	sc(__NR_close, 4, 0, 0, 0, 0);
	long r;
	do {
		r = sc(__NR_wait4, pid, (long)&res.status, 0, (long)&res.ru, 0);
	} while (r == -4);
	if (start && *start) t0 = *start;
	res.wall_ns = now_ns() - t0;
	sc(__NR_write, 3, (long)&res, sizeof res, 0, 0);
	sc(__NR_exit_group, 0, 0, 0, 0, 0);
}

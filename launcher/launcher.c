//go:build ignore

// The launcher starts the measured command from a process with almost no
// memory of its own. The kernel folds the RSS high-water mark of the old mm
// into ru_maxrss at exec, and Go's os/exec starts children with CLONE_VM, so a
// command started straight from cgpeak would report cgpeak's size. cgpeak
// starts this launcher; the launcher forks a fresh few-page mm, puts the child
// in the run's cgroup before exec, waits for it and hands back its exit status
// and rusage on fd 3.
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

static long sc(long n, long a, long b, long c, long d, long e) {
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
	return ret;
}

struct result {
	int status;
	int err; // errno of a failed start, 0 otherwise
	struct rusage ru;
};

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
	long pid = sc(__NR_clone3, (long)&ca, sizeof ca, 0, 0, 0);
	if (pid == 0) {
		if (!v2 && sc(__NR_write, 4, (long)"0", 1, 0, 0) != 1) sc(__NR_exit_group, 124, 0, 0, 0, 0);
		sc(__NR_close, 3, 0, 0, 0, 0);
		sc(__NR_close, 4, 0, 0, 0, 0);
		if (drop && (sc(__NR_setgroups, (long)ngroups, (long)groups, 0, 0, 0) < 0 ||
			     sc(__NR_setgid, (long)gid, 0, 0, 0, 0) < 0 || sc(__NR_setuid, (long)uid, 0, 0, 0, 0) < 0))
			sc(__NR_exit_group, 123, 0, 0, 0, 0);
		long e = sc(__NR_execve, (long)argv[2], (long)(argv + 3), (long)envp, 0, 0);
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
	sc(__NR_write, 3, (long)&res, sizeof res, 0, 0);
	sc(__NR_exit_group, 0, 0, 0, 0, 0);
}

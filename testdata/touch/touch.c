// touch: maps N anonymous pages and writes one byte to each, so exactly N
// pages are faulted in; the ground truth for peak-memory tests.
//
// touch N [CGROUP_DIR]: first moves itself into CGROUP_DIR (writing its pid
// to cgroup.procs), as a workload that places itself does. With TOUCH_WAIT
// set in the environment it then prints "ready" and waits for a line on stdin
// before touching, so a tracer can attach to a process already running.
// TOUCH_STEPS=K touches the pages in K equal steps, pausing TOUCH_PAUSE_MS
// (default 300) after each: usage that rises in known steps (cgpeak watch).
// TOUCH_ROUNDS=R repeats map, touch, unmap R times: a churn of fresh pages
// charged and uncharged again (the benchmark's second workload).
// TOUCH_HOLD set: once every page is touched, prints "held" and waits for a
// line on stdin before exiting, holding them (a plateau to measure).
// TOUCH_PROCS=P: P child processes touch N pages each at the same time (no
// CPU pinning: the scheduler spreads them); each holds its pages until all
// have touched theirs, so the cgroup holds P x N pages at once, then all
// exit. The parent touches nothing and exits with the first child failure.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 0;
	long ps = sysconf(_SC_PAGESIZE);
	if (argc > 2) {
		char path[4096], pid[32];
		snprintf(path, sizeof path, "%s/cgroup.procs", argv[2]);
		int fd = open(path, O_WRONLY);
		int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
		if (fd < 0 || write(fd, pid, len) != len) return 98;
		close(fd);
	}
	if (getenv("TOUCH_WAIT")) {
		char c;
		write(1, "ready\n", 6);
		if (read(0, &c, 1) != 1) return 97;
	}
	long procs = getenv("TOUCH_PROCS") ? atol(getenv("TOUCH_PROCS")) : 0;
	int done[2], go[2];
	if (procs > 0) {
		if (pipe(done) || pipe(go)) return 95;
		for (long i = 0; i < procs; i++) {
			pid_t c = fork();
			if (c < 0) return 95;
			if (c == 0) {
				close(done[0]);
				close(go[1]);
				goto work;
			}
		}
		close(done[1]);
		close(go[0]);
		char b;
		for (long i = 0; i < procs; i++)
			if (read(done[0], &b, 1) != 1) break;
		close(go[1]); /* every child has touched its pages: let them go */
		int st, rc = 0;
		while (wait(&st) > 0)
			if (!rc && (!WIFEXITED(st) || WEXITSTATUS(st))) rc = WIFEXITED(st) ? WEXITSTATUS(st) : 94;
		return rc;
	}
work:;
	long rounds = getenv("TOUCH_ROUNDS") ? atol(getenv("TOUCH_ROUNDS")) : 1;
	long steps = getenv("TOUCH_STEPS") ? atol(getenv("TOUCH_STEPS")) : 1;
	long pause = getenv("TOUCH_PAUSE_MS") ? atol(getenv("TOUCH_PAUSE_MS")) : 300;
	if (steps < 1) steps = 1;
	for (long r = 0; r < rounds; r++) {
		char *p = mmap(0, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (n && p == MAP_FAILED) return 99;
		if (n) madvise(p, n * ps, MADV_NOHUGEPAGE);
		for (long i = 0; i < n; i++) {
			p[i * ps] = 1;
			if (steps > 1 && (i + 1) % (n / steps) == 0) usleep(pause * 1000);
		}
		if (r + 1 < rounds) munmap(p, n * ps);
	}
	if (procs > 0) {
		char b = 1;
		if (write(done[1], &b, 1) != 1) return 95;
		close(done[1]); /* a child that dies before this ends the parent's wait too */
		read(go[0], &b, 1); /* EOF once all have touched */
	}
	if (getenv("TOUCH_HOLD")) {
		char c;
		write(1, "held\n", 5);
		if (read(0, &c, 1) != 1) return 96;
	}
	return 0;
}

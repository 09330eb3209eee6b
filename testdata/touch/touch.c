// touch: maps N anonymous pages and writes one byte to each, so exactly N
// pages are faulted in; the ground truth for peak-memory tests.
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 0;
	long ps = sysconf(_SC_PAGESIZE);
	char *p = mmap(0, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n && p == MAP_FAILED) return 99;
	if (n) madvise(p, n * ps, MADV_NOHUGEPAGE);
	for (long i = 0; i < n; i++) p[i * ps] = 1;
	return 0;
}

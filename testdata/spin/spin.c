// spin MS: busy-waits MS milliseconds of wall time on CLOCK_MONOTONIC, then
// exits 0. A command whose time is known: benchmarks and tests compare what
// a timer reports against MS.
#include <stdlib.h>
#include <time.h>

static long long now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
	long long end = now() + (argc > 1 ? atoll(argv[1]) : 10) * 1000000LL;
	while (now() < end)
		;
	return 0;
}

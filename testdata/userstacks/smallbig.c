/* smallbig: a workload with a known answer for cgpeak's user stacks.
 * small() touches 100 fresh pages and big() 300, each in a mapping of its
 * own, so the charges they cause are 1:3 (plus the page tables they need).
 * Built with frame pointers, as the kernel walks user stacks by them:
 *   gcc -O1 -g -fno-omit-frame-pointer -static -o smallbig smallbig.c
 * Usage: smallbig [SMALL_PAGES [BIG_PAGES]] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static long page;

static char *touch(long pages)
{
	char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* The writes are in small() and big() themselves: the faulting instruction,
 * the innermost frame of the charge's user stack, is theirs. */
__attribute__((noinline)) void small(long pages)
{
	volatile char *p = touch(pages);
	for (long i = 0; i < pages; i++)
		p[i * page] = 1;
}

__attribute__((noinline)) void big(long pages)
{
	volatile char *p = touch(pages);
	for (long i = 0; i < pages; i++)
		p[i * page] = 1;
}

int main(int argc, char **argv)
{
	page = sysconf(_SC_PAGESIZE);
	small(argc > 1 ? atol(argv[1]) : 100);
	big(argc > 2 ? atol(argv[2]) : 300);
	return 0;
}

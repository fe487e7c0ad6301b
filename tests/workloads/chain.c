// SPDX-License-Identifier: MIT
/*
 * Workload with a known call chain: main → chain_a → chain_b → chain_c → chain_leaf, where
 * chain_leaf burns CPU. Built with frame pointers. Usage: chain [SECONDS] (default 5; CPU seconds).
 * Prints its pid on stdout once running so a test can attach.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))

static volatile unsigned long sink;

/* CPU time of the process: SECONDS of work, however busy the machine is. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * gcc omits the frame setup of a leaf that uses no stack even with -fno-omit-frame-pointer;
 * the stack slot below makes it build a frame, so frame-pointer unwinding sees chain_c.
 */
NOINLINE void chain_leaf(unsigned long n)
{
	volatile unsigned long slot[2] = { sink, 0 };

	for (unsigned long i = 0; i < n; i++)
		slot[0] = slot[0] * 6364136223846793005ul + 1442695040888963407ul;
	sink = slot[0] + slot[1];
}

NOINLINE void chain_c(unsigned long n)
{
	chain_leaf(n);
	sink++;
}

NOINLINE void chain_b(unsigned long n)
{
	chain_c(n);
	sink++;
}

NOINLINE void chain_a(unsigned long n)
{
	chain_b(n);
	sink++;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5.0, end = now() + secs;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	while (now() < end)
		chain_a(2000000);
	return 0;
}

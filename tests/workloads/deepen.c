// SPDX-License-Identifier: MIT
/*
 * A stack that runs suddenly deeper: SECONDS of CPU time in shallow_spin, the same in
 * deep_spin at the bottom of a 128-deep recursion (about 20 KiB of live stack: deeper than
 * anything before it, within the default 32 KiB copy cap), then the same in shallow_spin again.
 * Built without frame pointers. Usage: deepen [SECONDS] (default 1). Prints its pid first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define DEPTH 128

static volatile unsigned long sink;

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void burn(void)
{
	unsigned long x = sink;

	for (int i = 0; i < 20000; i++)
		x = (x ^ (x >> 13)) * 0x9e3779b97f4a7c15ul + i;
	sink = x;
}

__attribute__((noinline)) static void shallow_spin(double secs)
{
	double end = cpu_now() + secs;

	while (cpu_now() < end)
		burn();
}

/* Not the same code as shallow_spin, or the compiler folds the two into one function. */
__attribute__((noinline)) static void deep_spin(double secs)
{
	double end = cpu_now() + secs;
	unsigned long turns = 0;

	while (cpu_now() < end) {
		burn();
		turns++;
	}
	sink += turns;
}

/* Each level keeps 128 bytes live, so the compiler can neither drop the frame nor the call. */
__attribute__((noinline)) static unsigned long descend(int n, double secs)
{
	volatile unsigned char pad[128];
	unsigned long r;

	pad[0] = (unsigned char)n;
	pad[127] = (unsigned char)(n >> 1);
	if (n == 0)
		deep_spin(secs);
	r = n ? descend(n - 1, secs) : 0;
	return r + pad[0] + pad[127];
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	shallow_spin(secs);
	sink += descend(DEPTH, secs);
	shallow_spin(secs);
	return 0;
}

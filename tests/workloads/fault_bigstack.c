// SPDX-License-Identifier: MIT
/*
 * Spins with 48 KiB of live stack below main, so every sample's stack copy is the full cap (32 KiB
 * by default). Usage: fault_bigstack [SECONDS] (CPU seconds). Prints its pid first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

/* CPU time of the process: SECONDS of work, however busy the machine is. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void spin(double end)
{
	while (now() < end)
		for (int i = 0; i < 100000; i++)
			sink = sink * 31 + i;
}

__attribute__((noinline)) static void big_frame(double end)
{
	volatile char buf[48 << 10];

	for (size_t i = 0; i < sizeof(buf); i += 512)
		buf[i] = (char)i;
	spin(end);
	sink += buf[4096];
}

int main(int argc, char **argv)
{
	double end = now() + (argc > 1 ? atof(argv[1]) : 5.0);

	printf("%d\n", (int)getpid());
	fflush(stdout);
	big_frame(end);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Inline-heavy workload: nearly all of its time is spent in code inlined three levels deep, main →
 * ih_run → (inlined) ih_block → ih_round → ih_mix, so a profile shows the inlined functions only if
 * the symbolizer expands inline frames from DWARF. tests/e2e/test-symbols finds the declaration
 * lines by the @MARKER comments. Usage: inline_heavy [SECONDS] (default 5 s of CPU time). Prints
 * its pid on stdout once running.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static volatile uint64_t sink;

/* CPU time of the process: SECONDS of work, however busy the machine is. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The hot work: a 64-bit mixer (multiplies and shifts, no memory traffic). */
ALWAYS_INLINE uint64_t ih_mix(uint64_t x) /* @IH_DECL_MIX */
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	x ^= x >> 33;
	return x;
}

ALWAYS_INLINE uint64_t ih_round(uint64_t x) /* @IH_DECL_ROUND */
{
	for (int i = 0; i < 8; i++)
		x = ih_mix(x + (uint64_t)i);
	return x;
}

ALWAYS_INLINE uint64_t ih_block(uint64_t x) /* @IH_DECL_BLOCK */
{
	x = ih_round(x);
	return ih_round(x ^ 0x5555555555555555ull);
}

__attribute__((noinline, noipa)) uint64_t ih_run(uint64_t n) /* @IH_DECL_RUN */
{
	uint64_t acc = sink;

	for (uint64_t i = 0; i < n; i++)
		acc = ih_block(acc + i);
	return acc;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5.0, end = now() + secs;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	while (now() < end)
		sink = ih_run(200000);
	return 0;
}

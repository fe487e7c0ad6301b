// SPDX-License-Identifier: MIT
/*
 * The shared libraries bench/soak/churn dlopens and dlcloses: built once per CHURN_LIB (0, 1,
 * ...) into libchurnN.so, each with its own function names and constants, so each is a binary
 * of its own (own build-id, own CFI table, own symbols) for the daemon's caches.
 * Exports `unsigned long churn_lib_work(double us)`: a CPU-bound loop for about `us` µs.
 */
#include <time.h>

#ifndef CHURN_LIB
#error "build with -DCHURN_LIB=N"
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define LIB_FN(name) CAT(CAT(name, _lib), CHURN_LIB)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static unsigned long LIB_FN(step)(unsigned long x)
{
	x += 0x9e3779b97f4a7c15UL * (CHURN_LIB + 1);
	x ^= x >> (29 + CHURN_LIB);
	return x * 0xbf58476d1ce4e5b9UL;
}

__attribute__((noinline)) static unsigned long LIB_FN(loop)(double us)
{
	double stop = now() + us / 1e6;
	unsigned long x = CHURN_LIB;

	while (now() < stop)
		for (int i = 0; i < 256; i++)
			x = LIB_FN(step)(x);
	return x;
}

unsigned long churn_lib_work(double us)
{
	return LIB_FN(loop)(us);
}

// SPDX-License-Identifier: MIT
/*
 * A program that spends its time inside glibc (no frame pointers there): qsort with our
 * comparator, memcpy and strlen loops. Built -O2 -fomit-frame-pointer, so only CFI gives
 * whole stacks. Usage: libc_heavy [SECONDS]. Prints its pid first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 50000

static int cmp_u32(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return (x > y) - (x < y);
}

/*
 * qsort is not its last call (it returns the median): a tail call would leave sort_round off the
 * stack, and the tests look for the chain cmp_u32 -> glibc's qsort -> sort_round -> main.
 */
__attribute__((noinline)) static unsigned sort_round(unsigned *v, unsigned seed)
{
	for (int i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = seed;
	}
	qsort(v, N, sizeof(*v), cmp_u32);
	return v[N / 2];
}

__attribute__((noinline)) static size_t copy_round(char *dst, char *src, size_t len)
{
	size_t total = 0;

	for (int i = 0; i < 200; i++) {
		memcpy(dst, src, len);
		total += strlen(dst);
	}
	return total;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double end = now() + (argc > 1 ? atof(argv[1]) : 5.0);
	size_t len = 1 << 16, sink = 0;
	unsigned *v = malloc(N * sizeof(*v));
	char *src = malloc(len + 1), *dst = malloc(len + 1);

	if (!v || !src || !dst)
		return 1;
	memset(src, 'x', len);
	src[len] = '\0';
	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (unsigned seed = 1; now() < end; seed++) {
		sink += sort_round(v, seed);
		sink += copy_round(dst, src, len);
	}
	return sink == 0;
}

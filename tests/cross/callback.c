// SPDX-License-Identifier: MIT
/*
 * A crash inside a callback called by libc: main → sort_all → qsort → ... → compare → check →
 * abort. The frames between qsort and compare belong to libc (msort_with_tmp and friends):
 * walking back through them needs libc's CFI, which has no frame pointers.
 * Usage: callback [MAPS_OUT]
 */
#include <string.h>

#include "common.h"

#define N 64

static int calls;

NOINLINE static void check(int a, int b)
{
	/* Abort some way into the sort, from deep inside the merge. */
	if (++calls == 100)
		abort();
	sink = a - b;
}

NOINLINE static int compare(const void *pa, const void *pb)
{
	int a = *(const int *)pa, b = *(const int *)pb;

	check(a, b);
	return (a > b) - (a < b);
}

NOINLINE static void sort_all(int *v, size_t n)
{
	qsort(v, n, sizeof(*v), compare);
	sink = v[0];
}

int main(int argc, char **argv)
{
	int v[N];

	save_maps(argc > 1 ? argv[1] : NULL);
	for (int i = 0; i < N; i++)
		v[i] = (i * 7919) % N;
	sort_all(v, N);
	return 0;
}

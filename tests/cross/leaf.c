// SPDX-License-Identifier: MIT
/*
 * abort() in a leaf at the end of a chain of noinline functions, with a forced-inline helper
 * in the middle: main → level1 → level2 (→ inlined helper) → level3 → leaf → abort.
 * Usage: leaf [MAPS_OUT]
 */
#include "common.h"

NOINLINE static int leaf(int x)
{
	if (x > 0)
		abort();
	return x;
}

NOINLINE static int level3(int x)
{
	int r = leaf(x + 1);

	sink = r;
	return r + 1;
}

static inline __attribute__((always_inline)) int helper(int x)
{
	int r = level3(x * 2);

	sink = r;
	return r * 3;
}

NOINLINE static int level2(int x)
{
	int r = helper(x + 3);

	sink = r;
	return r + 2;
}

NOINLINE static int level1(int x)
{
	int r = level2(x + 5);

	sink = r;
	return r + 7;
}

int main(int argc, char **argv)
{
	save_maps(argc > 1 ? argv[1] : NULL);
	return level1(argc) & 1;
}

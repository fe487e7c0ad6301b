// SPDX-License-Identifier: MIT
/*
 * A fault in a true leaf: store_leaf makes no call, so on aarch64 it builds no frame record and
 * its return address lives only in LR (x30) when the SIGSEGV hits; frame pointers alone skip
 * its caller, CFI (or "LR for frame 0") must not. main → outer → middle → store_leaf → fault.
 * Usage: segv [MAPS_OUT]
 */
#include "common.h"

static int *volatile target; /* NULL: the store faults */

NOINLINE static void store_leaf(int v)
{
	*target = v;
}

NOINLINE static int middle(int v)
{
	store_leaf(v * 3);
	sink = v;
	return v + 1;
}

NOINLINE static int outer(int v)
{
	int r = middle(v + 2);

	sink = r;
	return r * 2;
}

int main(int argc, char **argv)
{
	save_maps(argc > 1 ? argv[1] : NULL);
	return outer(argc) & 1;
}

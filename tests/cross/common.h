/* SPDX-License-Identifier: MIT */
/*
 * Shared by the cross-arch ground-truth programs (tests/e2e/test-stack.c builds them for
 * aarch64 and x86_64, with and without frame pointers, and compares `profd stack --core` with
 * gdb on their core dumps).
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline, noclone))

/* Defeats tail calls and keeps every frame a real frame. */
static volatile int sink;

/*
 * qemu-user cores have no NT_FILE note, so the program saves its own mappings: under qemu-user
 * /proc/self/maps shows the guest's view. Written before anything else happens, with stdio
 * only, so the maps hold every library the program will use (all linked, none dlopen()ed).
 */
static inline void save_maps(const char *path)
{
	char buf[4096];
	size_t n;
	FILE *in, *out;

	if (!path)
		return;
	in = fopen("/proc/self/maps", "r");
	out = fopen(path, "w");
	if (!in || !out)
		exit(3);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	if (fclose(out) != 0)
		exit(3);
}

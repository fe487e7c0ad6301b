// SPDX-License-Identifier: MIT
/*
 * Seeds for fuzz-unwind: real stacks. Built by gen-seeds.sh for x86_64 (run natively) and for
 * aarch64 (run under qemu-user with the cross libc, the same file fuzz-unwind builds its
 * aarch64 table from). Captures registers and the live stack bytes twice, inside a qsort()
 * comparator (libc frames, unwound by CFI) and inside a signal handler (the sigreturn
 * trampoline), and writes each as a struct fuzz_unwind_header followed by the stack bytes:
 *   seed-stack OUT_PREFIX  →  OUT_PREFIX-qsort, OUT_PREFIX-signal
 * The fake address space of fuzz-unwind is described from /proc/self/maps: libc at its load
 * base, this executable's code as the mapping without a table (built with frame pointers).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz-common.h"

#define STACK_MAX 16384

static const char *prefix;
static uint64_t lib_base, exe_lo, exe_hi;

/* The mapping holding sp ends where the stack copy must end. */
static uint64_t stack_end_of(uint64_t sp)
{
	char line[1024], exe[1024];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	uint64_t end = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f || n <= 0)
		exit(2);
	exe[n] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off;
		char perms[8], path[1024] = "";

		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %1023s", &lo, &hi, perms, &off, path) <
		    4)
			continue;
		if (sp >= lo && sp < hi)
			end = hi;
		if (off == 0 && !lib_base && strstr(path, "/libc.so.6"))
			lib_base = lo;
		if (perms[2] == 'x' && strcmp(path, exe) == 0 && !exe_lo) {
			exe_lo = lo;
			exe_hi = hi;
		}
	}
	fclose(f);
	return end;
}

/* Plain byte copy: the stack above sp is live memory of our own callers. */
static void copy_stack(uint8_t *dst, uint64_t src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = ((const volatile uint8_t *)(uintptr_t)src)[i];
}

/* The frame to start from, when not the capturing one. */
struct start {
	uint64_t pc, sp, fp;
};

__attribute__((noinline)) static void capture(const char *what, const struct start *start)
{
	static uint8_t buf[STACK_MAX];
	struct fuzz_unwind_header h = {.max_frames = 511};
	uint64_t pc, sp, fp, lr = 0, end;
	char path[4096];
	size_t len;
	FILE *f;

#if defined(__x86_64__)
	__asm__ volatile("leaq 0(%%rip), %0\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2"
			 : "=r"(pc), "=r"(sp), "=r"(fp));
	h.machine = 0;
#elif defined(__aarch64__)
	__asm__ volatile("adr %0, .\n\tmov %1, sp\n\tmov %2, x29\n\tmov %3, x30"
			 : "=r"(pc), "=r"(sp), "=r"(fp), "=r"(lr));
	h.machine = 1;
#else
#error "x86_64 or aarch64 only"
#endif
	if (start) {
		pc = lr = start->pc;
		sp = start->sp;
		fp = start->fp;
	}
	end = stack_end_of(sp);
	if (end <= sp || !lib_base || !exe_lo)
		exit(3);
	len = end - sp < STACK_MAX ? end - sp : STACK_MAX;
	copy_stack(buf, sp, len);
	h.lib_base = lib_base;
	h.anon_lo = exe_lo;
	h.anon_hi = exe_hi;
	h.pc = pc;
	h.sp = sp;
	h.fp = fp;
	h.lr = lr;
	h.stack_start = sp;

	snprintf(path, sizeof(path), "%s-%s", prefix, what);
	f = fopen(path, "wb");
	if (!f || fwrite(&h, sizeof(h), 1, f) != 1 || fwrite(buf, 1, len, f) != len || fclose(f))
		exit(4);
}

static int captured;

static int compare(const void *a, const void *b)
{
	if (!captured++) {
		/* Our frame record holds the caller's fp at [fp] (both ABIs). */
		struct start caller = {
		    .pc = (uintptr_t)__builtin_return_address(0),
		    .sp = (uintptr_t)__builtin_dwarf_cfa(),
		    .fp = *(const uint64_t *)__builtin_frame_address(0),
		};

		capture("qsort", NULL);
		capture("libc", &caller);
	}
	return *(const int *)a - *(const int *)b;
}

static void on_signal(int sig)
{
	capture("signal", NULL);
}

__attribute__((noinline)) static int sort_some(int n)
{
	int v[32];

	for (int i = 0; i < n; i++)
		v[i] = (i * 13) % 32;
	qsort(v, n, sizeof(v[0]), compare);
	return v[0];
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 1;
	prefix = argv[1];
	signal(SIGUSR1, on_signal);
	sort_some(32);
	raise(SIGUSR1);
	return 0;
}

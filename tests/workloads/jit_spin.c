// SPDX-License-Identifier: MIT
/*
 * A tiny "JIT": copies a spinning function's machine code into an anonymous executable page,
 * announces it in /tmp/perf-PID.map as jit_spin_loop (the perf map format JITs write: "START SIZE
 * name" in hex) and spends its time there. The code builds a frame-pointer frame so the caller is
 * found too. x86_64 only: elsewhere it exits with 77 (skip).
 *
 * Usage: jit_spin [SECONDS] [--keep-map] [--no-map] [--at ADDR] (default 5 s of CPU time).
 * Prints its pid once running. The map file is removed at exit unless --keep-map (a real JIT
 * never removes it). --no-map writes none (someone else provides /tmp/perf-PID.map); --at ADDR
 * places the code page at ADDR (hex, page-aligned), so a map can be written before it runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* CPU time of the process: SECONDS of work, however busy the machine is. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#if defined(__x86_64__)
/* uint64_t jit_spin_loop(uint64_t n): counts n down to 0. */
static const unsigned char spin_code[] = {
	0x55,             /* push %rbp */
	0x48, 0x89, 0xe5, /* mov %rsp,%rbp */
	0x48, 0xff, 0xcf, /* 1: dec %rdi */
	0x75, 0xfb,       /* jnz 1b */
	0x48, 0x89, 0xf8, /* mov %rdi,%rax */
	0x5d,             /* pop %rbp */
	0xc3,             /* ret */
};
#define HAVE_JIT 1
#endif

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5.0, end;
	int keep = 0, write_map = 1;
	uintptr_t at = 0;
	char path[64];

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--keep-map"))
			keep = 1;
		else if (!strcmp(argv[i], "--no-map"))
			write_map = 0;
		else if (!strcmp(argv[i], "--at") && i + 1 < argc)
			at = (uintptr_t)strtoull(argv[++i], NULL, 16);
		else {
			fprintf(stderr, "jit_spin: unknown argument %s\n", argv[i]);
			return 2;
		}
	}

#ifndef HAVE_JIT
	(void)secs;
	(void)keep;
	(void)write_map;
	(void)at;
	(void)path;
	fprintf(stderr, "jit_spin: only x86_64 code is generated\n");
	return 77;
#else
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *mem = mmap((void *)at, (size_t)page, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED_NOREPLACE : 0), -1, 0);
	if (mem == MAP_FAILED || (at && mem != (unsigned char *)at)) {
		perror("mmap");
		return 1;
	}
	/* The loop at offset 0x100, a never-run stub elsewhere: lookups must pick the right one. */
	memset(mem, 0xcc, (size_t)page);
	memcpy(mem + 0x100, spin_code, sizeof(spin_code));
	if (mprotect(mem, (size_t)page, PROT_READ | PROT_EXEC) < 0) {
		perror("mprotect");
		return 1;
	}
	uint64_t (*spin)(uint64_t) = (uint64_t(*)(uint64_t))(void *)(mem + 0x100);

	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	if (write_map) {
		FILE *f = fopen(path, "w");
		if (!f) {
			perror(path);
			return 1;
		}
		fprintf(f, "%lx %zx jit_stub_never_run\n", (unsigned long)(uintptr_t)(mem + 0x800),
			(size_t)0x40);
		fprintf(f, "%lx %zx jit_spin_loop\n", (unsigned long)(uintptr_t)(mem + 0x100),
			sizeof(spin_code));
		fclose(f);
	}

	printf("%d\n", (int)getpid());
	fflush(stdout);
	end = now() + secs;
	while (now() < end)
		spin(20000000);
	if (write_map && !keep)
		unlink(path);
	return 0;
#endif
}

// SPDX-License-Identifier: MIT
/*
 * A CPU-bound benchmark that reports its own throughput, for measuring how much a profiler
 * slows its target (bench/bench-side.sh, section 5). Single-threaded: fixed-size units of
 * work (a 64-bit mixer over an L1-resident table at the end of a 12-deep call chain whose
 * frames each hold a small array, so samples have a few KiB of live stack to copy), counted
 * over a fixed wall time.
 *
 * Usage: throughput SECONDS [WARMUP | go]. Prints its pid first, then works unmeasured: WARMUP
 * seconds (default 0), or with `go` until it receives SIGUSR1 (at most 60 s, then it fails), so
 * a profiler started after the pid line can attach first; then counts units for SECONDS and
 * prints one line:
 *   units N wall S units_per_s R cpu_frac F
 * cpu_frac is the process's CPU time over the measured wall time: below 1 when other
 * processes took the CPU, so a reader can tell interference from profiler overhead.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
#define DEPTH 12
#define TABLE_WORDS 2048 /* 16 KiB */
#define LEAF_ROUNDS 1024

static uint64_t table[TABLE_WORDS];
static volatile uint64_t sink;
static volatile sig_atomic_t go;

static void on_go(int sig)
{
	go = 1;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

NOINLINE uint64_t tp_leaf(uint64_t x)
{
	for (int i = 0; i < LEAF_ROUNDS; i++) {
		uint64_t *slot = &table[x & (TABLE_WORDS - 1)];

		x ^= *slot + (uint64_t)i;
		x *= 0x9e3779b97f4a7c15ull;
		x ^= x >> 29;
		*slot = x;
	}
	return x;
}

NOINLINE uint64_t tp_descend(uint64_t x, int depth)
{
	volatile uint64_t frame[24];

	for (int i = 0; i < 24; i++)
		frame[i] = x + (uint64_t)i;
	x = depth > 0 ? tp_descend(x ^ frame[depth % 24], depth - 1) : tp_leaf(x);
	return x + frame[0];
}

NOINLINE uint64_t tp_unit(uint64_t seed)
{
	return tp_descend(seed, DEPTH);
}

/* Runs units until `secs` of wall time have passed; returns how many. */
NOINLINE uint64_t tp_run(double secs)
{
	double end = clock_s(CLOCK_MONOTONIC) + secs;
	uint64_t n = 0, x = sink;

	do {
		x = tp_unit(x + n);
		n++;
	} while (clock_s(CLOCK_MONOTONIC) < end);
	sink = x;
	return n;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5.0, warmup = 0.0;
	bool wait_go = argc > 2 && strcmp(argv[2], "go") == 0;
	struct sigaction sa = { .sa_handler = on_go };
	double t0, c0, wall, cpu;
	uint64_t units;

	if (argc > 2 && !wait_go)
		warmup = atof(argv[2]);
	sigaction(SIGUSR1, &sa, NULL);
	for (int i = 0; i < TABLE_WORDS; i++)
		table[i] = (uint64_t)i * 0x2545f4914f6cdd1dull;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (warmup > 0)
		tp_run(warmup);
	for (double end = clock_s(CLOCK_MONOTONIC) + 60; wait_go && !go;) {
		tp_run(0.001);
		if (clock_s(CLOCK_MONOTONIC) > end) {
			fprintf(stderr, "throughput: no SIGUSR1 within 60 s\n");
			return 1;
		}
	}
	t0 = clock_s(CLOCK_MONOTONIC);
	c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	units = tp_run(secs);
	wall = clock_s(CLOCK_MONOTONIC) - t0;
	cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	printf("units %llu wall %.4f units_per_s %.1f cpu_frac %.4f\n", (unsigned long long)units,
	       wall, units / wall, cpu / wall);
	return 0;
}

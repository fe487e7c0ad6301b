// SPDX-License-Identifier: MIT
/*
 * gaps: what the sampling interrupt takes from the interrupted task, measured from the inside.
 * Spins reading CLOCK_MONOTONIC (vDSO, ~20 ns a read) and counts every gap between two reads
 * longer than THRESHOLD: each is time the task did not run (an interrupt, with whatever the
 * hypervisor and a perf event's handler and BPF program did in it, or a preemption). Unlike a
 * throughput ratio, this is immune to the machine getting faster or slower between runs.
 *
 * A bench workload (bench/bench-side.sh section 5b). Usage: gaps SECONDS [go]. Prints its pid first; with "go" it waits for SIGUSR1 before it
 * measures. Then one line:
 *   gaps N per_s R stolen_us_per_s S mean_us M p50_us P
 * (gaps of THRESHOLD_NS or more; stolen: their total per second of measuring).
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THRESHOLD_NS 500
#define MAX_GAPS (1u << 20)

static volatile sig_atomic_t go;
static uint32_t gaps[MAX_GAPS];

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	struct sigaction sa = { .sa_handler = on_usr1 };
	uint64_t start, end, prev, t, total = 0;
	size_t n = 0;

	if (secs <= 0 || secs > 3600)
		return 2;
	sigaction(SIGUSR1, &sa, NULL);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (argc > 2 && !strcmp(argv[2], "go")) {
		double wait_end = (double)now_ns() / 1e9 + 60;

		while (!go && (double)now_ns() / 1e9 < wait_end)
			usleep(1000);
		if (!go) {
			fprintf(stderr, "gaps: no SIGUSR1 within 60 s\n");
			return 1;
		}
	}
	start = prev = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	while ((t = now_ns()) < end) {
		uint64_t d = t - prev;

		if (d >= THRESHOLD_NS) {
			total += d;
			if (n < MAX_GAPS)
				gaps[n] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			n++;
		}
		prev = t;
	}
	qsort(gaps, n < MAX_GAPS ? n : MAX_GAPS, sizeof(gaps[0]), cmp_u32);
	printf("gaps %zu per_s %.1f stolen_us_per_s %.1f mean_us %.2f p50_us %.2f\n", n,
	       n / secs, total / 1e3 / secs, n ? total / 1e3 / n : 0.0,
	       n ? gaps[(n < MAX_GAPS ? n : MAX_GAPS) / 2] / 1e3 : 0.0);
	return 0;
}

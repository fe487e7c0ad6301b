// SPDX-License-Identifier: MIT
/*
 * Off-CPU workload: threads that wait in known chains, one that burns CPU, and one whose waits
 * are all shorter than profd's default threshold. Runs for argv[1] seconds, then prints how
 * long its own waits took, measured around each blocking call:
 *   SLEEP_NS <ns in off_sleep_b's nanosleep> PIPE_NS <ns in off_pipe_b's read> SHORT_WAITS <n>
 * Prints its pid first (the test harness waits for it).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static atomic_bool stop;
static int pipefd[2];
static uint64_t sleep_ns, pipe_ns, short_waits;
static volatile uint64_t sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

NOINLINE void off_sleep_b(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	uint64_t t0 = now_ns();

	nanosleep(&ts, NULL);
	sleep_ns += now_ns() - t0;
	__asm__ volatile("" ::: "memory");
}

NOINLINE void off_sleep_a(void)
{
	off_sleep_b();
	__asm__ volatile("" ::: "memory");
}

static void *sleeper(void *arg)
{
	while (!atomic_load(&stop))
		off_sleep_a();
	return NULL;
}

NOINLINE void off_pipe_b(void)
{
	char c;
	uint64_t t0 = now_ns();

	if (read(pipefd[0], &c, 1) == 1)
		pipe_ns += now_ns() - t0;
	__asm__ volatile("" ::: "memory");
}

NOINLINE void off_pipe_a(void)
{
	off_pipe_b();
	__asm__ volatile("" ::: "memory");
}

static void *piper(void *arg)
{
	while (!atomic_load(&stop))
		off_pipe_a();
	return NULL;
}

static void *feeder(void *arg)
{
	struct timespec ts = { 0, 30 * 1000 * 1000 };

	while (!atomic_load(&stop)) {
		nanosleep(&ts, NULL);
		if (write(pipefd[1], "x", 1) != 1)
			break;
	}
	/* Wake the reader for good. */
	if (write(pipefd[1], "x", 1) != 1)
		return NULL;
	return NULL;
}

NOINLINE void off_burn_b(void)
{
	for (int i = 0; i < 100000; i++)
		sink += i;
}

NOINLINE void off_burn_a(void)
{
	off_burn_b();
	__asm__ volatile("" ::: "memory");
}

static void *burner(void *arg)
{
	while (!atomic_load(&stop))
		off_burn_a();
	return NULL;
}

NOINLINE void off_short_b(void)
{
	struct timespec ts = { 0, 100 * 1000 };

	nanosleep(&ts, NULL);
	short_waits++;
	__asm__ volatile("" ::: "memory");
}

NOINLINE void off_short_a(void)
{
	off_short_b();
	__asm__ volatile("" ::: "memory");
}

static void *shorty(void *arg)
{
	while (!atomic_load(&stop))
		off_short_a();
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	void *(*fns[])(void *) = { sleeper, piper, feeder, burner, shorty };
	pthread_t t[5];
	struct timespec ts;

	printf("%d\n", getpid());
	fflush(stdout);
	if (pipe(pipefd) < 0)
		return 1;
	for (int i = 0; i < 5; i++)
		if (pthread_create(&t[i], NULL, fns[i], NULL) != 0)
			return 1;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < 5; i++)
		pthread_join(t[i], NULL);
	printf("SLEEP_NS %llu PIPE_NS %llu SHORT_WAITS %llu\n", (unsigned long long)sleep_ns,
	       (unsigned long long)pipe_ns, (unsigned long long)short_waits);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Four threads burning CPU under worker_main → worker_loop → worker_leaf, built without frame
 * pointers: thread stacks live in mmap()ed memory and end in glibc's clone3/start_thread.
 * Usage: threads [SECONDS]. Prints its pid first.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static double end_time;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void worker_leaf(unsigned long n)
{
	unsigned long x = sink;

	for (unsigned long i = 0; i < n; i++)
		x = (x ^ (x >> 11)) * 0x9e3779b97f4a7c15ul;
	sink = x;
}

__attribute__((noinline)) static void worker_loop(void)
{
	while (now() < end_time)
		worker_leaf(1000000);
}

static void *worker_main(void *arg)
{
	worker_loop();
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t t[4];

	end_time = now() + (argc > 1 ? atof(argv[1]) : 5.0);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, worker_main, NULL);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	return 0;
}

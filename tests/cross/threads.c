// SPDX-License-Identifier: MIT
/*
 * Several threads spinning in noinline chains until a signal from outside (SIGQUIT) dumps the
 * process: worker → spin_outer → spin_inner → (busy loop, sometimes calling step), and one
 * thread polling clock_gettime (mostly inside the vdso on x86_64: frames without a file name
 * in NT_FILE). The main thread waits in pthread_join. Prints "ready PID" once all of them run.
 * Usage: threads [MAPS_OUT]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define N_THREADS 3

static atomic_int spinning;
static volatile unsigned long counter;

NOINLINE static unsigned long step(unsigned long x)
{
	return x * 2654435761u + 1;
}

NOINLINE static void spin_inner(int id)
{
	unsigned long x = id;

	atomic_fetch_add(&spinning, 1);
	for (;;) {
		for (int i = 0; i < 1000; i++)
			x = x * 6364136223846793005ul + 1442695040888963407ul;
		x = step(x);
		counter += x;
	}
}

NOINLINE static void spin_outer(int id)
{
	spin_inner(id + 1);
	sink = id;
}

NOINLINE static void poll_clock(void)
{
	struct timespec ts;

	atomic_fetch_add(&spinning, 1);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		counter += ts.tv_nsec;
	}
}

static void *clock_worker(void *arg)
{
	poll_clock();
	return arg;
}

static void *worker(void *arg)
{
	spin_outer((int)(long)arg);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[N_THREADS + 1];

	save_maps(argc > 1 ? argv[1] : NULL);
	for (long i = 0; i < N_THREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i) != 0)
			return 3;
	if (pthread_create(&t[N_THREADS], NULL, clock_worker, NULL) != 0)
		return 3;
	while (atomic_load(&spinning) < N_THREADS + 1)
		usleep(1000);
	/* The pid to signal: under gdb it is not the pid of the process the test started. */
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i <= N_THREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * Switch-heavy workload: two threads pass a byte back and forth over two pipes for argv[1]
 * seconds, then print the round trips per second (each round trip is two blocking reads,
 * two context switches at least). Prints its pid first.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int a2b[2], b2a[2];
static volatile int stop;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *pong(void *arg)
{
	char c;

	while (read(a2b[0], &c, 1) == 1 && c)
		if (write(b2a[1], &c, 1) != 1)
			break;
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5, t0, t;
	unsigned long long n = 0;
	pthread_t th;
	char c = 1;

	printf("%d\n", getpid());
	fflush(stdout);
	if (pipe(a2b) < 0 || pipe(b2a) < 0 || pthread_create(&th, NULL, pong, NULL) != 0)
		return 1;
	t0 = now_s();
	do {
		for (int i = 0; i < 1000; i++) {
			if (write(a2b[1], &c, 1) != 1 || read(b2a[0], &c, 1) != 1)
				return 1;
		}
		n += 1000;
		t = now_s();
	} while (t - t0 < secs);
	c = 0;
	if (write(a2b[1], &c, 1) != 1)
		return 1;
	pthread_join(th, NULL);
	printf("ROUNDTRIPS_PER_S %.0f\n", n / (t - t0));
	return 0;
}

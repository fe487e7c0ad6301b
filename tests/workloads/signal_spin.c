// SPDX-License-Identifier: MIT
/*
 * Spends its time in a signal handler: main → signal_loop → raise(SIGUSR1) → [kernel] →
 * __restore_rt ← on_signal → handler_burn. Stacks must go through the sigreturn frame back
 * to main. Built without frame pointers. Usage: signal_spin [SECONDS]. Prints its pid first.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void handler_burn(void)
{
	unsigned long x = sink;

	for (int i = 0; i < 2000000; i++)
		x = x * 2862933555777941757ul + 3037000493ul;
	sink = x;
}

__attribute__((noinline)) static void on_signal(int sig)
{
	handler_burn();
	sink += sig;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void signal_loop(double secs)
{
	double end = now() + secs;

	while (now() < end)
		raise(SIGUSR1);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGUSR1, &sa, NULL);
	printf("%d\n", (int)getpid());
	fflush(stdout);
	signal_loop(argc > 1 ? atof(argv[1]) : 5.0);
	return 0;
}

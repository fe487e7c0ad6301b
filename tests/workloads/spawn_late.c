// SPDX-License-Identifier: MIT
/*
 * Threads and a child that appear while a profiler is attached. At start: two threads spinning
 * in early_spin, main spinning in main_spin. On SIGUSR1: main starts a thread spinning in
 * late_spin and forks a child spinning in child_spin (it dies with this process). Everything
 * spins until killed. Usage: spawn_late. Prints its pid first, and nothing else.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

__attribute__((noinline)) static void burn(void)
{
	unsigned long x = sink;

	for (int i = 0; i < 100000; i++)
		x = (x ^ (x >> 13)) * 0x9e3779b97f4a7c15ul + i;
	sink = x;
}

__attribute__((noinline)) static void child_spin(void)
{
	for (;;)
		burn();
}

__attribute__((noinline)) static void *late_spin(void *arg)
{
	(void)arg;
	for (;;)
		burn();
	return NULL;
}

__attribute__((noinline)) static void *early_spin(void *arg)
{
	(void)arg;
	for (;;)
		burn();
	return NULL;
}

__attribute__((noinline)) static void main_spin(void)
{
	while (!go)
		burn();
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	pthread_t t;
	pid_t parent = getpid(), child;

	sigaction(SIGUSR1, &sa, NULL);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t, NULL, early_spin, NULL) != 0)
			return 1;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	main_spin();
	if (pthread_create(&t, NULL, late_spin, NULL) != 0)
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		child_spin();
	}
	for (;;)
		burn();
}

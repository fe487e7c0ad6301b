// SPDX-License-Identifier: MIT
/* The adaptive stack copy's learning rule (pipeline/stacksize.c), without BPF. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "pipeline/stacksize.h"

/* What the capture would have been told, per pid (the last call wins). */
#define PIDS 6000
static int64_t told[PIDS];
static unsigned n_told;

static void on_set(void *userdata, uint32_t pid, uint32_t gap)
{
	(void)userdata;
	cr_assert_lt(pid, PIDS);
	told[pid] = gap;
	n_told++;
}

static struct stack_sizer *sizer(void)
{
	struct stack_sizer *z;

	for (size_t i = 0; i < PIDS; i++)
		told[i] = -1;
	n_told = 0;
	cr_assert_eq(stack_sizer_new(on_set, NULL, &z), 0);
	return z;
}

static void feed(struct stack_sizer *z, uint32_t pid, uint64_t gap, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		stack_sizer_observe(z, pid, gap, false, false);
}

Test(stacksize, rule)
{
	/* First: the smallest gap seen less the margin; nothing below 0. */
	cr_assert_eq(stack_sizer_next(-1, 6000), 6000 - STACK_SIZER_MARGIN);
	cr_assert_eq(stack_sizer_next(-1, STACK_SIZER_MARGIN / 2), 0);
	/* A smaller gap (a bigger copy) is taken at once... */
	cr_assert_eq(stack_sizer_next(5000, 3000), 3000 - STACK_SIZER_MARGIN);
	/* ...a larger one (a smaller copy) halfway. */
	cr_assert_eq(stack_sizer_next(1000, 3000 + STACK_SIZER_MARGIN), 2000);
	cr_assert_eq(stack_sizer_next(1000, 1000 + STACK_SIZER_MARGIN), 1000);
}

Test(stacksize, learns_then_copies_more_at_once)
{
	struct stack_sizer *z = sizer();

	/* Nothing is published before STACK_SIZER_FIRST samples: copies go to the VMA's end. */
	feed(z, 42, 6000, STACK_SIZER_FIRST - 1);
	cr_assert_eq(stack_sizer_get(z, 42), -1);
	cr_assert_eq(told[42], -1);
	feed(z, 42, 6000, 1);
	cr_assert_eq(stack_sizer_get(z, 42), 6000 - STACK_SIZER_MARGIN);
	cr_assert_eq(told[42], 6000 - STACK_SIZER_MARGIN);

	/* Samples like those change nothing (and are not told again). */
	unsigned before = n_told;
	feed(z, 42, 6000, 10);
	cr_assert_eq(n_told, before);

	/* Another thread with less above its frames: the gap drops with the very next sample. */
	stack_sizer_observe(z, 42, 2000, false, false);
	cr_assert_eq(told[42], 2000 - STACK_SIZER_MARGIN);

	/* A truncated walk says nothing about the gap. */
	stack_sizer_observe(z, 42, 10, true, false);
	cr_assert_eq(told[42], 2000 - STACK_SIZER_MARGIN);
	stack_sizer_free(z);
}

Test(stacksize, cut_walk_copies_everything_then_relearns)
{
	struct stack_sizer *z = sizer();

	feed(z, 7, 4096, STACK_SIZER_FIRST);
	cr_assert_eq(told[7], 4096 - STACK_SIZER_MARGIN);
	/* A walk ran out of a copy cut at the gap: copy to the end at once. */
	stack_sizer_observe(z, 7, 0, true, true);
	cr_assert_eq(told[7], 0);
	cr_assert_eq(stack_sizer_get(z, 7), 0);
	/* And learn again from the samples that follow (halfway up, as any shrink of the copy). */
	feed(z, 7, 4096, STACK_SIZER_WINDOW);
	cr_assert_gt(told[7], 0);
	cr_assert_leq(told[7], 4096 - STACK_SIZER_MARGIN);
	stack_sizer_free(z);
}

Test(stacksize, copy_shrinks_slowly)
{
	struct stack_sizer *z = sizer();
	int64_t prev;

	/* One deep-gap window, then only larger gaps: the gap rises halfway per window, once the
	 * small one has left the history. */
	feed(z, 9, 1000, STACK_SIZER_WINDOW);
	cr_assert_eq(told[9], 1000 - STACK_SIZER_MARGIN);
	prev = told[9];
	for (int w = 1; w < STACK_SIZER_HISTORY; w++) {
		feed(z, 9, 9000, STACK_SIZER_WINDOW);
		cr_assert_eq(told[9], prev, "window %d: the small gap is still in the history", w);
	}
	feed(z, 9, 9000, STACK_SIZER_WINDOW);
	cr_assert_gt(told[9], prev);
	cr_assert_lt(told[9], 9000 - STACK_SIZER_MARGIN);
	for (int w = 0; w < 20; w++)
		feed(z, 9, 9000, STACK_SIZER_WINDOW);
	cr_assert_eq(told[9], 9000 - STACK_SIZER_MARGIN);
	stack_sizer_free(z);
}

Test(stacksize, many_processes_and_forget)
{
	struct stack_sizer *z = sizer();

	for (uint32_t pid = 1; pid < PIDS; pid++)
		feed(z, pid, 1000 + pid, STACK_SIZER_FIRST);
	/* Forget every other one (deletions move entries within the table): the rest stay. */
	for (uint32_t pid = 1; pid < PIDS; pid += 2)
		stack_sizer_forget(z, pid);
	for (uint32_t pid = 1; pid < PIDS; pid++) {
		int64_t want = pid % 2 ? -1 : (int64_t)(1000 + pid - STACK_SIZER_MARGIN);

		cr_assert_eq(stack_sizer_get(z, pid), want, "pid %u", pid);
	}
	/* A forgotten process starts over: nothing published until it is seen again enough. */
	feed(z, 1, 500, 1);
	cr_assert_eq(stack_sizer_get(z, 1), -1);
	stack_sizer_free(z);
}

// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "pipeline/aggregate.h"

static struct agg_stack *make_stack(uint32_t pid, size_t n, uint64_t base)
{
	struct agg_stack *s = calloc(1, sizeof(*s) + n * sizeof(struct agg_frame));

	s->pid = s->tid = pid;
	strcpy(s->comm, "w");
	s->n_frames = n;
	for (size_t i = 0; i < n; i++)
		s->frames[i] = (struct agg_frame){ .addr = base + i, .map_id = AGG_MAP_NONE };
	return s;
}

Test(aggregate, counts_identical_stacks_once)
{
	struct aggregate *a;
	struct agg_stack *s1 = make_stack(1, 3, 0x1000), *s2 = make_stack(1, 3, 0x2000),
			 *s3 = make_stack(2, 3, 0x1000);

	cr_assert_eq(aggregate_new(&a), 0);
	for (int i = 0; i < 5000; i++)
		cr_assert_eq(aggregate_add(a, s1, 1), 0);
	cr_assert_eq(aggregate_add(a, s2, 2), 0);
	cr_assert_eq(aggregate_add(a, s3, 1), 0);
	cr_assert_eq(aggregate_n_stacks(a), 3);
	cr_assert_eq(aggregate_n_samples(a), 5003);
	cr_assert_eq(aggregate_stack(a, 0)->count, 5000);
	cr_assert_eq(aggregate_stack(a, 1)->count, 2);
	cr_assert_null(aggregate_stack(a, 3));
	/* Many distinct stacks: the table grows and keeps every count. */
	for (uint64_t i = 0; i < 20000; i++) {
		struct agg_stack *s = make_stack(3, 2, 0x100000 + i * 16);

		cr_assert_eq(aggregate_add(a, s, 1), 0);
		free(s);
	}
	cr_assert_eq(aggregate_n_stacks(a), 20003);
	cr_assert_eq(aggregate_n_samples(a), 25003);
	aggregate_free(a);
	free(s1);
	free(s2);
	free(s3);
}

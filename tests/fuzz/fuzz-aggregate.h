/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets that feed a session (session, raw, perfdata): the promises an
 * aggregate keeps whatever records went in, i.e. what the profile writer relies on when it walks
 * it. Aborts (FUZZ_CHECK) when one is broken.
 */
#pragma once

#include "pipeline/aggregate.h"
#include "tests/fuzz/fuzz-common.h"

static inline void fuzz_check_aggregate(const struct aggregate *agg)
{
	uint64_t total = 0;

	for (size_t i = 0; i < aggregate_n_stacks(agg); i++) {
		const struct agg_stack *s = aggregate_stack(agg, i);

		FUZZ_CHECK(s);
		FUZZ_CHECK(s->n_frames <= AGG_MAX_FRAMES);
		/* Weighed by samples, or (off-CPU waits) by time off the CPU. */
		FUZZ_CHECK(s->count >= 1 || (s->state != 0 && s->off_cpu_ns >= 1));
		FUZZ_CHECK(s->comm[sizeof(s->comm) - 1] == '\0');
		FUZZ_CHECK(s->pcomm[sizeof(s->pcomm) - 1] == '\0');
		FUZZ_CHECK(s->container == 0 || aggregate_container(agg, s->container));
		for (size_t j = 0; j < s->n_frames; j++)
			FUZZ_CHECK(s->frames[j].map_id < AGG_MAP_FIRST ||
				   aggregate_mapping(agg, s->frames[j].map_id));
		total += s->count;
	}
	FUZZ_CHECK(aggregate_stack(agg, aggregate_n_stacks(agg)) == NULL);
	FUZZ_CHECK(total == aggregate_n_samples(agg));
}

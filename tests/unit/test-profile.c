// SPDX-License-Identifier: MIT
/* profile_build(): an aggregate built by hand -> a pprof profile and its summary. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bpf/profd.h"
#include "output/pprof.h"
#include "output/profile.h"
#include "pipeline/aggregate.h"
#include "pipeline/python/python.h"
#include "pipeline/unwind/unwind.h"

static struct agg_stack *stack_of(uint32_t pid, const char *comm, size_t n)
{
	struct agg_stack *s = calloc(1, sizeof(*s) + n * sizeof(struct agg_frame));

	cr_assert_not_null(s);
	s->pid = s->tid = pid;
	strcpy(s->comm, comm);
	s->n_frames = n;
	return s;
}

/* The serialized profile, gunzipped (at most 1 MiB). */
static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *ret_len)
{
	uint8_t *out = malloc(1 << 20);
	z_stream z = { .next_in = (uint8_t *)in, .avail_in = len, .next_out = out,
		       .avail_out = 1 << 20 };

	cr_assert_not_null(out);
	cr_assert_eq(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
	cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	*ret_len = z.total_out;
	inflateEnd(&z);
	return out;
}

static bool has(const uint8_t *data, size_t len, const char *str)
{
	return memmem(data, len, str, strlen(str)) != NULL;
}

Test(profile, hand_built_aggregate)
{
	static struct py_code code = { .refs = 1, .qualname = (char *)"py_work",
				       .filename = (char *)"work.py", .firstlineno = 3 };
	struct profile_options o = { .period_ns = 10000000, .perfmaps = PROFILE_PERFMAPS_NONE,
				     .off_cpu = true };
	struct profile_summary sum;
	struct pprof_builder *b = NULL;
	struct aggregate *a;
	struct agg_stack *s1 = stack_of(10, "one", 3), *s2 = stack_of(11, "two", 1),
			 *s3 = stack_of(12, "three", 2);
	uint16_t cont;
	uint8_t *gz, *data;
	size_t gz_len, len;

	cr_assert_eq(aggregate_new(&a), 0);
	cr_assert_eq(aggregate_intern_container(a, "c0ffee", &cont), 0);
	/* A kernel frame, then two user frames in no known mapping; the walk was complete. */
	s1->frames[0] = (struct agg_frame){ .addr = 0xffffffff81000010, .map_id = AGG_MAP_KERNEL,
					    .kind = AGG_FRAME_KERNEL };
	s1->frames[1] = (struct agg_frame){ .addr = 0x401000, .map_id = AGG_MAP_NONE };
	s1->frames[2] = (struct agg_frame){ .addr = 0x402000, .map_id = AGG_MAP_NONE,
					    .is_return = 1 };
	s1->complete = true;
	s1->container = cont;
	/* A Python frame, and a walk that stopped: a synthetic frame says where. */
	s2->frames[0] = (struct agg_frame){ .code = &code, .map_id = AGG_MAP_NONE,
					    .kind = AGG_FRAME_PYTHON, .line = 7 };
	s2->stop = UNWIND_STOP_NO_MAPPING;
	/* An off-CPU wait of 5 ms, asleep. */
	s3->frames[0] = (struct agg_frame){ .addr = 0xffffffff81000020, .map_id = AGG_MAP_KERNEL,
					    .kind = AGG_FRAME_KERNEL };
	s3->frames[1] = (struct agg_frame){ .addr = 0x403000, .map_id = AGG_MAP_NONE };
	s3->complete = true;
	s3->off_cpu_ns = 5000000;
	s3->state = PROFD_OFFCPU_SLEEP;
	cr_assert_eq(aggregate_add(a, s1, 3), 0);
	cr_assert_eq(aggregate_add(a, s2, 2), 0);
	cr_assert_eq(aggregate_add(a, s3, 0), 0);
	cr_assert_eq(code.refs, 2); /* the aggregate holds the code */

	cr_assert_eq(profile_build(a, &o, &b, &sum), 0);
	cr_assert_eq(pprof_n_samples(b), 3);
	/* Locations: kernel, two user, Python, the stop marker, the wait's two. */
	cr_assert_eq(pprof_n_locations(b), 7);
	cr_assert_eq(sum.n_locations, 7);
	cr_assert_eq(sum.samples, 5);
	cr_assert_eq(sum.user_stacks, 5);
	cr_assert_eq(sum.complete, 3);
	cr_assert_eq(sum.stops[UNWIND_STOP_NO_MAPPING], 2);
	cr_assert_eq(sum.off_cpu_ns, 5000000);
	cr_assert_eq(sum.n_waits, 1);
	cr_assert_str_eq(sum.waits[0].stack, "[unknown] 0x403000");
	/* The leaf by self samples: the kernel frame (3), then the Python function (2). */
	cr_assert_eq(sum.n_top, 2);
	cr_assert_str_eq(sum.top[0].name, "[kernel] 0xffffffff81000010");
	cr_assert_eq(sum.top[0].self, 3);
	cr_assert_str_eq(sum.top[1].name, "py_work");
	cr_assert_eq(sum.top[1].self, 2);

	cr_assert_eq(pprof_serialize(b, &gz, &gz_len), 0);
	data = gunzip(gz, gz_len, &len);
	free(gz);
	cr_assert(has(data, len, "container_id"));
	cr_assert(has(data, len, "c0ffee"));
	cr_assert(has(data, len, "[unknown] 0x402000"));
	cr_assert(has(data, len, "work.py"));
	cr_assert(has(data, len, "[truncated: no mapping]"));
	cr_assert(has(data, len, "off_cpu"));
	cr_assert(has(data, len, "state"));
	cr_assert(has(data, len, "three"));
	free(data);
	pprof_builder_free(b);
	aggregate_free(a);
	cr_assert_eq(code.refs, 1);
	free(s1);
	free(s2);
	free(s3);
}

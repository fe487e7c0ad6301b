// SPDX-License-Identifier: MIT
/*
 * session_handle_record() with hostile ring-buffer records: bad versions, types and lengths
 * (both the length the ring buffer reports and the header's own), huge ustack_len/kstack_len.
 * Framing in fuzz-common.h; each record is copied into a heap block of exactly its length.
 *
 * One session for the whole run, as in the daemon. Record pids are mapped onto this process
 * (odd pids) or a pid that cannot exist (even ones), so the process table reads only our own
 * /proc/self maps and the run does not depend on what else runs on the host. The aggregate is
 * taken and freed after each input to keep memory flat.
 */
#include <errno.h>

#include "bpf/profd.h"
#include "daemon/session.h"
#include "tests/fuzz/fuzz-common.h"

#define NO_SUCH_PID 0x3fffffffu /* above PID_MAX_LIMIT (2^22) */

static struct session *session;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct session_config cfg = {.max_depth = 128};

	if (session_new(&cfg, &session) < 0)
		abort();
	return 0;
}

static void handle(const uint8_t *p, size_t len)
{
	uint8_t *rec = malloc(len ? len : 1);
	const struct session_stats *st = session_stats(session);
	uint64_t records = st->records, bad = st->bad_records, samples = st->samples;

	if (!rec)
		abort();
	memcpy(rec, p, len);
	/* pid sits at the same offset in samples and task events. */
	if (len >= offsetof(struct profd_sample, pid) + sizeof(uint32_t)) {
		uint32_t pid;

		memcpy(&pid, rec + offsetof(struct profd_sample, pid), sizeof(pid));
		pid = pid & 1 ? (uint32_t)getpid() : NO_SUCH_PID;
		memcpy(rec + offsetof(struct profd_sample, pid), &pid, sizeof(pid));
	}
	FUZZ_CHECK(session_handle_record(session, rec, len) == 0);
	/* Every record is counted once, and at most one of sample / bad. */
	FUZZ_CHECK(st->records == records + 1);
	FUZZ_CHECK((st->bad_records - bad) + (st->samples - samples) <= 1);
	free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aggregate *agg;

	while (size >= sizeof(uint32_t)) {
		uint32_t len;

		memcpy(&len, data, sizeof(len));
		data += sizeof(len);
		size -= sizeof(len);
		if (len > size)
			len = (uint32_t)size;
		handle(data, len);
		data += len;
		size -= len;
	}

	/* What the profile writer will walk: every stack within its limits. */
	agg = session_aggregate(session);
	for (size_t i = 0; i < aggregate_n_stacks(agg); i++) {
		const struct agg_stack *s = aggregate_stack(agg, i);

		FUZZ_CHECK(s->n_frames <= AGG_MAX_FRAMES);
		FUZZ_CHECK(s->comm[sizeof(s->comm) - 1] == '\0');
		for (size_t j = 0; j < s->n_frames; j++)
			FUZZ_CHECK(s->frames[j].map_id < AGG_MAP_FIRST ||
				   aggregate_mapping(agg, s->frames[j].map_id));
	}
	if (session_take_aggregate(session, &agg) == 0)
		aggregate_free(agg);
	return 0;
}

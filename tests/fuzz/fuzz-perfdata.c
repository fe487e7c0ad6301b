// SPDX-License-Identifier: MIT
/*
 * perf.data files (`perf record --call-graph dwarf`) read the way `profd convert` reads them:
 * perfdata_open(), perfdata_read() delivering the events in time order, and the events turned
 * into what the session takes: executable MMAP/MMAP2 mappings (with HEADER_BUILD_ID build-ids)
 * into a static process table, per process, copied on FORK, emptied on COMM exec, dropped on
 * EXIT; SAMPLEs into sample records (registers, kernel frames) whose user stack bytes stay
 * where the reader has them (session_handle_sample()), unwound by the session. The input is the
 * file.
 *
 * The events go through convert's own adapter (sources/perfdata-feed.h: overlapping mappings
 * split as mmap(MAP_FIXED) does, build-ids, forks, execs, exits), so what is fuzzed is what
 * ships. No binary is opened (the table's open callback finds nothing): unwinding falls back to
 * frame pointers. One session for the whole run; the processes an input added are removed and
 * its aggregate freed after it.
 *
 * Checked besides memory safety: open/read return only documented errors, damage comes with a
 * message and an offset inside the file, every event is counted exactly once in the stats,
 * samples arrive in time order, every string and stack copy handed out is a piece of the file
 * (never bytes past it), kernel frames within PERFDATA_MAX_KSTACK; and the aggregate's promises.
 */
#include <errno.h>

#include "bpf/profd.h"
#include "sources/perfdata.h"
#include "sources/perfdata-feed.h"
#include "pipeline/session.h"
#include "tests/fuzz/fuzz-aggregate.h"
#include "tests/fuzz/fuzz-common.h"

struct ctx {
	const uint8_t *data; /* the input: what every byte handed out must come from */
	size_t size;
	struct perfdata *pd;
	const struct perfdata_info *info;
	struct perfdata_feed *feed; /* convert's: NULL unless convert would run on this file */
	uint64_t delivered, last_sample_time;
};

static struct session *session;
static struct proc_table *procs;
static struct ctx c;

static int open_nothing(void *userdata, const struct proc_static_map *m)
{
	return -ENOENT;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (session_new(&(struct session_config){.max_depth = 128}, &session) < 0)
		abort();
	procs = session_procs(session);
	if (proc_table_set_static(procs, open_nothing, NULL) < 0)
		abort();
	return 0;
}

/* [p, p + n) is a piece of the input (the reader hands out pointers into its mapping). */
static void check_from_input(const void *p, size_t n)
{
	FUZZ_CHECK(n <= c.size);
	if (n)
		FUZZ_CHECK(memmem(c.data, c.size, p, n) != NULL);
}

/* What convert does with the event: the shipped adapter (sources/perfdata-feed.c). */
static void feed(const struct perfdata_event *ev)
{
	uint64_t records = session_stats(session)->records;
	int r;

	if (!c.feed)
		return;
	r = perfdata_feed_event(c.feed, ev);
	FUZZ_CHECK(r == 0 || r == -ENOMEM);
	if (ev->type == PERFDATA_EV_SAMPLE && r == 0)
		FUZZ_CHECK(session_stats(session)->records == records + 1);
}

static void check_mmap(const struct perfdata_event *ev)
{
	const struct perfdata_mmap *m = &ev->mmap;
	const uint8_t *bid;
	size_t n;

	FUZZ_CHECK(m->path);
	check_from_input(m->path, strlen(m->path) + 1);
	FUZZ_CHECK(m->build_id_len <= 20);
	if (m->build_id_len)
		check_from_input(m->build_id, m->build_id_len);
	if (!m->path[0] || !strncmp(m->path, "//anon", 6))
		return;
	n = perfdata_build_id(c.pd, m->path, &bid);
	FUZZ_CHECK(n <= 20);
	if (n)
		check_from_input(bid, n);
}

static int on_event(void *userdata, const struct perfdata_event *ev)
{
	c.delivered++;
	FUZZ_CHECK(ev->offset >= c.info->data_offset && ev->offset + 8 <= c.size);
	switch (ev->type) {
	case PERFDATA_EV_SAMPLE:
		FUZZ_CHECK(ev->time >= c.last_sample_time);
		c.last_sample_time = ev->time;
		FUZZ_CHECK(ev->sample.n_kstack <= PERFDATA_MAX_KSTACK);
		FUZZ_CHECK(ev->sample.stack_len == 0 || ev->sample.stack);
		check_from_input(ev->sample.stack, ev->sample.stack_len);
		break;
	case PERFDATA_EV_MMAP:
		check_mmap(ev);
		break;
	case PERFDATA_EV_COMM:
		FUZZ_CHECK(ev->comm.comm);
		check_from_input(ev->comm.comm, strlen(ev->comm.comm) + 1);
		break;
	case PERFDATA_EV_FORK:
	case PERFDATA_EV_EXIT:
	case PERFDATA_EV_LOST:
		break;
	default:
		FUZZ_CHECK(!"unknown event type");
	}
	feed(ev);
	return 0;
}

static void check_info(const struct perfdata_info *info, size_t size)
{
	FUZZ_CHECK(info->n_attrs >= 1 && info->n_attrs <= PERFDATA_MAX_ATTRS);
	FUZZ_CHECK(info->n_build_ids <= PERFDATA_MAX_BUILD_IDS);
	FUZZ_CHECK(info->data_offset <= size);
	FUZZ_CHECK(!info->data_size_guessed || info->data_offset + info->data_size == size);
	FUZZ_CHECK(!info->arch_known || info->e_machine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aggregate *agg;
	char path[64];
	int fd = fuzz_memfd(data, size), r;

	c = (struct ctx){.data = data, .size = size};
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = perfdata_open(path, &c.pd);
	if (r == -EBADMSG) {
		FUZZ_CHECK(c.pd && perfdata_error(c.pd)[0]);
		FUZZ_CHECK(perfdata_error_offset(c.pd) <= size);
		perfdata_free(c.pd);
		return 0;
	}
	if (r < 0) {
		FUZZ_CHECK(r == -ENOEXEC || r == -EOPNOTSUPP || r == -E2BIG || r == -ENOMEM);
		return 0;
	}
	c.info = perfdata_info(c.pd);
	check_info(c.info, size);
	FUZZ_CHECK(perfdata_error(c.pd)[0] == '\0');
	/* convert's conditions: user registers and stacks in the samples, a known architecture. */
	if (perfdata_has_user_stacks(c.info) && c.info->e_machine &&
	    perfdata_feed_new(c.pd, session, NULL, NULL, &c.feed) < 0)
		abort();

	r = perfdata_read(c.pd, on_event, NULL);
	if (r == -EBADMSG) {
		FUZZ_CHECK(perfdata_error(c.pd)[0]);
		FUZZ_CHECK(perfdata_error_offset(c.pd) <= size);
	} else {
		FUZZ_CHECK(r == 0 || r == -E2BIG || r == -ENOMEM || r == -EOPNOTSUPP);
	}
	if (r == 0 || r == -EBADMSG) {
		const struct perfdata_stats *st = perfdata_stats(c.pd);
		uint64_t typed =
		    st->samples + st->mmaps + st->comms + st->forks + st->exits + st->lost_events;

		/* Every event framed is delivered, skipped or counted malformed; once. */
		FUZZ_CHECK(typed == c.delivered);
		FUZZ_CHECK(st->events == typed + st->skipped + st->malformed);
	}
	perfdata_feed_remove_procs(c.feed);
	perfdata_feed_free(c.feed);
	perfdata_free(c.pd);

	agg = session_aggregate(session);
	fuzz_check_aggregate(agg);
	if (session_take_aggregate(session, &agg) == 0)
		aggregate_free(agg);
	FUZZ_CHECK(proc_table_n_procs(procs) == 0);
	return 0;
}

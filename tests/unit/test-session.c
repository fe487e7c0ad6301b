// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "pipeline/aggregate.h"
#include "pipeline/proc.h"
#include "pipeline/session.h"

Test(session, malformed_records_counted)
{
	struct session *s;
	uint8_t buf[sizeof(struct profd_sample) + 64] = {};
	struct profd_sample *rec = (struct profd_sample *)buf;
	const struct session_stats *st;

	cr_assert_eq(session_new(NULL, &s), 0);
	/* Too short for a header. */
	session_handle_record(s, buf, 3);
	/* Wrong version. */
	rec->hdr = (struct profd_rec_hdr){ .type = PROFD_REC_SAMPLE, .version = 99,
					   .size = sizeof(buf) };
	session_handle_record(s, buf, sizeof(buf));
	/* Header claims more than was delivered. */
	rec->hdr.version = PROFD_RECORD_VERSION;
	rec->hdr.size = sizeof(buf) + 1;
	session_handle_record(s, buf, sizeof(buf));
	/* Stack length past the record. */
	rec->hdr.size = sizeof(buf);
	rec->ustack_len = 65;
	session_handle_record(s, buf, sizeof(buf));
	/* Kernel IPs past the record: 64 stack bytes fit, the 8 bytes of one IP after them do not. */
	rec->ustack_len = 64;
	rec->kstack_len = 1;
	session_handle_record(s, buf, sizeof(buf));
	/* More kernel IPs than a record may hold. */
	rec->ustack_len = 0;
	rec->kstack_len = PROFD_MAX_KSTACK + 1;
	session_handle_record(s, buf, sizeof(buf));
	rec->kstack_len = 0;
	/* Unknown type. */
	rec->hdr.type = 77;
	session_handle_record(s, buf, sizeof(buf));

	st = session_stats(s);
	cr_assert_eq(st->records, 7);
	cr_assert_eq(st->bad_records, 7);
	cr_assert_eq(st->samples, 0);
	session_free(s);
}

Test(session, sample_of_self_is_unwound)
{
	struct session *s;
	uint8_t buf[sizeof(struct profd_sample) + 64 + 16] = {};
	struct profd_sample *rec = (struct profd_sample *)buf;
	const uint64_t kstack[2] = { 0xffffffff81000010ull, 0xffffffff81000020ull };
	const struct agg_stack *st;

	cr_assert_eq(session_new(NULL, &s), 0);
	*rec = (struct profd_sample){
		.hdr = { .type = PROFD_REC_SAMPLE, .version = PROFD_RECORD_VERSION,
			 .size = sizeof(buf) },
		.pid = getpid(),
		.tid = getpid(),
		.e_machine = PROFD_EM_X86_64,
		.comm = "self",
		.regs = { (uint64_t)(uintptr_t)&proc_maps_parse_line, 0x10000, 0, 0 },
		.kstack_len = 2,
		.ustack_len = 64,
		.stack_above = PROFD_STACK_ABOVE_UNKNOWN,
	};
	/* The kernel IPs come last, after the stack bytes. */
	memcpy(buf + sizeof(*rec) + 64, kstack, sizeof(kstack));
	cr_assert_eq(session_handle_record(s, buf, sizeof(buf)), 0);
	cr_assert_eq(session_stats(s)->samples, 1);
	st = aggregate_stack(session_aggregate(s), 0);
	cr_assert_not_null(st);
	/* Two kernel frames, then the user pc in our own mapping. */
	cr_assert_geq(st->n_frames, 3);
	cr_assert_eq(st->frames[0].map_id, AGG_MAP_KERNEL);
	cr_assert_eq(st->frames[0].kind, AGG_FRAME_KERNEL);
	cr_assert(st->frames[1].is_return);
	cr_assert_eq(st->frames[2].kind, AGG_FRAME_NATIVE);
	cr_assert_eq(st->frames[2].addr, (uint64_t)(uintptr_t)&proc_maps_parse_line);
	cr_assert_geq(st->frames[2].map_id, AGG_MAP_FIRST);
	cr_assert_str_eq(st->comm, "self");
	session_free(s);
}

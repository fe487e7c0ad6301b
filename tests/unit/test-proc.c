// SPDX-License-Identifier: MIT
/* Process table, maps parsing, aggregation and record handling. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "daemon/aggregate.h"
#include "daemon/proc.h"
#include "daemon/session.h"

static struct maps_entry parse(const char *text, int *ret)
{
	static char line[PROC_MAPS_LINE_MAX];
	struct maps_entry e = {};

	snprintf(line, sizeof(line), "%s", text);
	*ret = proc_maps_parse_line(line, &e);
	return e;
}

Test(maps, file_mapping)
{
	int r;
	struct maps_entry e = parse("7f1c2a000000-7f1c2a195000 r-xp 00028000 08:01 1835245    "
				    "               /usr/lib/x86_64-linux-gnu/libc.so.6\n",
				    &r);

	cr_assert_eq(r, 0);
	cr_assert_eq(e.start, 0x7f1c2a000000ull);
	cr_assert_eq(e.end, 0x7f1c2a195000ull);
	cr_assert_eq(e.pgoff, 0x28000);
	cr_assert_eq(e.dev_major, 8);
	cr_assert_eq(e.dev_minor, 1);
	cr_assert_eq(e.ino, 1835245);
	cr_assert_eq(e.prot, PROT_READ | PROT_EXEC);
	cr_assert_not(e.shared);
	cr_assert_not(e.deleted);
	cr_assert_str_eq(e.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
}

Test(maps, deleted_and_spaces)
{
	int r;
	struct maps_entry e = parse("55d0c0a00000-55d0c0a01000 r-xs 00001000 fd:02 42 "
				    "/tmp/my dir/old binary (deleted)",
				    &r);

	cr_assert_eq(r, 0);
	cr_assert(e.deleted);
	cr_assert(e.shared);
	cr_assert_str_eq(e.path, "/tmp/my dir/old binary");
}

Test(maps, anonymous_and_special)
{
	int r;
	struct maps_entry e = parse("7ffd1c5f0000-7ffd1c611000 rw-p 00000000 00:00 0", &r);

	cr_assert_eq(r, 0);
	cr_assert_null(e.path);
	cr_assert_eq(e.prot, PROT_READ | PROT_WRITE);

	e = parse("7ffd1c7fc000-7ffd1c7fe000 r-xp 00000000 00:00 0                          [vdso]",
		  &r);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(e.path, "[vdso]");
	cr_assert_eq(e.prot, PROT_READ | PROT_EXEC);

	e = parse("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]", &r);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(e.path, "[vsyscall]");
}

Test(maps, junk_rejected)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"7000-6000 r-xp 00000000 00:00 0",          /* end before start */
		"7000-8000 r-x 00000000 00:00 0",           /* short perms */
		"7000-8000 r-xp zz 00:00 0",                /* bad offset */
		"7000-8000 r-xp 0 0800 0",                  /* bad dev */
		"7000-8000 r-xp 0 08:00 x",                 /* bad inode */
		"11111111111111111-8000 r-xp 0 08:00 1 /x", /* address too long */
	};
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(bad[i], &r);
		cr_assert_eq(r, -EINVAL, "accepted: '%s'", bad[i]);
	}
}

Test(proc, self_mappings)
{
	struct proc_table *t;
	struct proc *p;
	const struct mapping *m;
	uint64_t here = (uint64_t)(uintptr_t)&proc_maps_parse_line;

	cr_assert_eq(proc_table_new("/proc", &t), 0);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	cr_assert_gt(p->n_maps, 2);
	for (size_t i = 1; i < p->n_maps; i++)
		cr_assert_geq(p->maps[i].start, p->maps[i - 1].end, "maps not sorted");

	m = proc_find_mapping(t, p, here);
	cr_assert_not_null(m, "our own code is not in any mapping");
	cr_assert_eq(m->kind, MAPPING_FILE);
	cr_assert(m->is_exe);
	cr_assert_not_null(m->dso);
	cr_assert_geq(m->dso->fd, 0);
	cr_assert(m->dso->is_elf);
	cr_assert_eq(m->dso->e_machine, 62 /* EM_X86_64 */);
	cr_assert_gt(m->dso->build_id_len, 0, "the test binary has a GNU build-id note");
	cr_assert_eq(strlen(m->dso->build_id_hex), m->dso->build_id_len * 2);

	/* libc is mapped and shares one dso between all of its executable mappings. */
	/* (getpid, not memcpy: sanitizers interpose memcpy from their own library.) */
	m = proc_find_mapping(t, p, (uint64_t)(uintptr_t)&getpid);
	cr_assert_not_null(m);
	cr_assert(strstr(m->name, "libc") != NULL, "%s", m->name);
	cr_assert_not(m->is_exe);

	/* The vdso is readable through a memfd copy. */
	for (size_t i = 0; i < p->n_maps; i++)
		if (p->maps[i].kind == MAPPING_VDSO) {
			cr_assert_not_null(p->maps[i].dso);
			cr_assert(p->maps[i].dso->is_elf);
		}

	cr_assert_eq(proc_table_n_procs(t), 1);
	proc_table_remove(t, getpid());
	cr_assert_eq(proc_table_n_procs(t), 0);
	proc_table_free(t);
}

Test(proc, missing_process)
{
	struct proc_table *t;
	struct proc *p;

	cr_assert_eq(proc_table_new("/proc", &t), 0);
	cr_assert_eq(proc_table_get(t, 0x3ffffff0, &p), -ESRCH);
	proc_table_free(t);
}

Test(proc, new_mapping_found_after_refresh)
{
	struct proc_table *t;
	struct proc *p;
	void *code;

	cr_assert_eq(proc_table_new("/proc", &t), 0);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	code = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(code, MAP_FAILED);
	usleep((PROC_REFRESH_MIN_NS / 1000) + 10000);
	const struct mapping *m = proc_find_mapping(t, p, (uint64_t)(uintptr_t)code + 16);
	cr_assert_not_null(m, "a mapping made after the first read was not picked up");
	cr_assert_eq(m->kind, MAPPING_ANON);
	munmap(code, 4096);
	proc_table_free(t);
}

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
	/* Unknown type. */
	rec->hdr.type = 77;
	session_handle_record(s, buf, sizeof(buf));

	st = session_stats(s);
	cr_assert_eq(st->records, 5);
	cr_assert_eq(st->bad_records, 5);
	cr_assert_eq(st->samples, 0);
	session_free(s);
}

Test(session, sample_of_self_is_unwound)
{
	struct session *s;
	uint8_t buf[sizeof(struct profd_sample) + 64] = {};
	struct profd_sample *rec = (struct profd_sample *)buf;
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
		.kstack = { 0xffffffff81000010ull, 0xffffffff81000020ull },
		.ustack_len = 64,
	};
	cr_assert_eq(session_handle_record(s, buf, sizeof(buf)), 0);
	cr_assert_eq(session_stats(s)->samples, 1);
	st = aggregate_stack(session_aggregate(s), 0);
	cr_assert_not_null(st);
	/* Two kernel frames, then the user pc in our own mapping. */
	cr_assert_geq(st->n_frames, 3);
	cr_assert_eq(st->frames[0].map_id, AGG_MAP_KERNEL);
	cr_assert_eq(st->frames[1].flags & AGG_FRAME_RETURN, AGG_FRAME_RETURN);
	cr_assert_eq(st->frames[2].addr, (uint64_t)(uintptr_t)&proc_maps_parse_line);
	cr_assert_geq(st->frames[2].map_id, AGG_MAP_FIRST);
	cr_assert_str_eq(st->comm, "self");
	session_free(s);
}

// SPDX-License-Identifier: MIT
/*
 * The process table fed by the kernel's side-band stream, from synthetic perf records: the
 * time-ordered merge of records pushed out of order (as two CPUs' rings give them), the
 * generations (FORK copies the parent's mappings, an exec starts a new generation, a sample
 * after EXIT still resolves against the ended one, which is freed only after the grace
 * period), mappings cut by later ones, a file opened after its process is gone, LOST and junk.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pipeline/proc.h"

static uint8_t buf[4096];

/* header + body + the sample_id_all trailer (pid, tid, time, cpu, res), 8-byte padded */
static size_t rec(uint32_t type, uint16_t misc, const void *body, size_t len, uint32_t pid,
		  uint64_t time)
{
	struct { uint32_t pid, tid; uint64_t time; uint32_t cpu, res; } id = { pid, pid, time, 0, 0 };
	size_t size = (8 + len + 7) / 8 * 8 + sizeof(id);
	struct perf_event_header h = { .type = type, .misc = misc, .size = (uint16_t)size };

	cr_assert_leq(size, sizeof(buf));
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 8, body, len);
	memcpy(buf + size - sizeof(id), &id, sizeof(id));
	return size;
}

static void push(struct proc_table *t, size_t size)
{
	cr_assert_eq(proc_table_sideband_push(t, buf, size), 0);
}

static void push_task(struct proc_table *t, uint32_t type, uint32_t pid, uint32_t ppid,
		      uint64_t time)
{
	struct { uint32_t pid, ppid, tid, ptid; uint64_t time; } b = { pid, ppid, pid, ppid, time };

	push(t, rec(type, 0, &b, sizeof(b), pid, time));
}

static void push_exec(struct proc_table *t, uint32_t pid, uint64_t time)
{
	struct { uint32_t pid, tid; char comm[16]; } b = { pid, pid, "storm" };

	push(t, rec(PERF_RECORD_COMM, PERF_RECORD_MISC_COMM_EXEC, &b, sizeof(b), pid, time));
}

/* An executable mapping of `path` (dev/ino as stat says) at [start, end). */
static void push_mmap(struct proc_table *t, uint32_t pid, uint64_t start, uint64_t end,
		      const char *path, uint64_t time)
{
	struct __attribute__((packed)) {
		uint32_t pid, tid;
		uint64_t addr, len, pgoff;
		uint32_t maj, min;
		uint64_t ino, ino_generation;
		uint32_t prot, flags;
		char name[256];
	} b = { .pid = pid, .tid = pid, .addr = start, .len = end - start,
		.prot = PROT_READ | PROT_EXEC, .flags = MAP_PRIVATE };
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	b.maj = major(st.st_dev);
	b.min = minor(st.st_dev);
	b.ino = st.st_ino;
	snprintf(b.name, sizeof(b.name), "%s", path);
	push(t, rec(PERF_RECORD_MMAP2, 0, &b, offsetof(typeof(b), name) + strlen(path) + 1, pid,
		    time));
}

static const struct mapping *find(const struct proc *p, uint64_t addr)
{
	for (size_t i = 0; i < p->n_maps; i++)
		if (addr >= p->maps[i].start && addr < p->maps[i].end)
			return &p->maps[i];
	return NULL;
}

static char exe[4096];
static char dir[] = "/tmp/profd-sb-XXXXXX"; /* an empty "/proc": every process is gone */

static struct proc_table *table(void)
{
	struct proc_table *t;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(proc_table_new(dir, &t), 0);
	cr_assert_eq(proc_table_set_sideband(t, true), 0);
	return t;
}

static void done(struct proc_table *t)
{
	proc_table_free(t);
	rmdir(dir);
}

Test(sideband, generations_merged_by_time)
{
	struct proc_table *t = table();
	struct proc_sideband_stats st;
	struct proc *p;

	/* CPU 1's ring first (the child), then CPU 0's (the parent): the merge puts them in time
	 * order, so the fork at 20 copies the mapping the parent made at 11. */
	push_exec(t, 101, 30);
	push_mmap(t, 101, 0x5000, 0x6000, exe, 31);
	push_task(t, PERF_RECORD_EXIT, 101, 100, 40);
	push_exec(t, 100, 10);
	push_mmap(t, 100, 0x1000, 0x2000, exe, 11);
	push_task(t, PERF_RECORD_FORK, 101, 100, 20);

	/* Before its fork, pid 101 is not known to the stream: its oldest generation answers. */
	cr_assert_eq(proc_table_get_at(t, 100, 15, &p), 0);
	cr_assert_not_null(find(p, 0x1800));
	cr_assert(find(p, 0x1800)->is_exe, "the first file an exec maps is the executable");

	/* Forked: a copy of the parent's mappings. */
	cr_assert_eq(proc_table_get_at(t, 101, 25, &p), 0);
	cr_assert_eq(p->start_ns, 20);
	cr_assert_not_null(find(p, 0x1800));
	cr_assert_null(find(p, 0x5800));

	/* Exec'd: a new generation, only its own mappings; the file opened though the process is
	 * gone (this test's "/proc" is empty), from profd's root, checked by device and inode. */
	cr_assert_eq(proc_table_get_at(t, 101, 35, &p), 0);
	cr_assert_eq(p->start_ns, 30);
	cr_assert_null(find(p, 0x1800));
	cr_assert_not_null(find(p, 0x5800));
	cr_assert_not_null(find(p, 0x5800)->dso);
	cr_assert_geq(find(p, 0x5800)->dso->fd, 0);

	/* A sample after the exit still resolves against the ended generation... */
	cr_assert_eq(proc_table_get_at(t, 101, 45, &p), 0);
	cr_assert_eq(p->end_ns, 40);
	cr_assert_not_null(find(p, 0x5800));
	/* ...and the fork generation is still there for samples before the exec. */
	cr_assert_eq(proc_table_get_at(t, 101, 22, &p), 0);
	cr_assert_not_null(find(p, 0x1800));

	proc_table_sideband_stats(t, &st);
	cr_assert_eq(st.forks, 1);
	cr_assert_eq(st.execs, 2);
	cr_assert_eq(st.exits, 1);
	cr_assert_eq(st.mmaps, 2);
	cr_assert_eq(st.generations, 3);

	/* Within the grace period nothing is freed; after it, the ended process goes. */
	proc_table_sideband_tick(t, 40 + PROC_SIDEBAND_GRACE_NS);
	cr_assert_eq(proc_table_get_at(t, 101, 45, &p), 0);
	proc_table_sideband_tick(t, 41 + PROC_SIDEBAND_GRACE_NS);
	cr_assert_eq(proc_table_get_at(t, 101, 45, &p), -ESRCH);
	cr_assert_eq(proc_table_get_at(t, 100, 50, &p), 0, "the parent lives on");
	proc_table_sideband_stats(t, &st);
	cr_assert_eq(st.generations, 1);
	done(t);
}

Test(sideband, later_mapping_cuts_older_ones)
{
	struct proc_table *t = table();
	struct proc *p;

	push_exec(t, 200, 10);
	push_mmap(t, 200, 0x10000, 0x20000, exe, 11);
	/* Mapped over the middle of the first: it keeps a head and a tail. */
	push_mmap(t, 200, 0x14000, 0x15000, "/bin/sh", 12);
	cr_assert_eq(proc_table_get_at(t, 200, 13, &p), 0);
	cr_assert_eq(p->n_maps, 3);
	cr_assert_eq(p->maps[0].start, 0x10000);
	cr_assert_eq(p->maps[0].end, 0x14000);
	cr_assert_eq(p->maps[1].start, 0x14000);
	cr_assert_str_eq(p->maps[1].name, "/bin/sh");
	cr_assert_eq(p->maps[2].start, 0x15000);
	cr_assert_eq(p->maps[2].end, 0x20000);
	cr_assert_eq(p->maps[2].pgoff, 0x5000, "the tail's file offset moves with its start");
	cr_assert_eq(p->maps[0].dso, p->maps[2].dso);
	done(t);
}

Test(sideband, records_applied_only_up_to_the_sample)
{
	struct proc_table *t = table();
	struct proc *p;

	push_exec(t, 300, 10);
	push_mmap(t, 300, 0x1000, 0x2000, exe, 11);
	push_exec(t, 300, 50);
	push_mmap(t, 300, 0x3000, 0x4000, exe, 51);
	/* A sample at 20 sees the first image even though the second is queued already. */
	cr_assert_eq(proc_table_get_at(t, 300, 20, &p), 0);
	cr_assert_not_null(find(p, 0x1800));
	cr_assert_null(find(p, 0x3800));
	cr_assert_eq(proc_table_get_at(t, 300, 60, &p), 0);
	cr_assert_null(find(p, 0x1800));
	cr_assert_not_null(find(p, 0x3800));
	done(t);
}

Test(sideband, lost_and_malformed_counted)
{
	struct proc_table *t = table();
	struct proc_sideband_stats st;
	uint64_t lost[2] = { 0, 7 };
	struct proc *p;
	size_t n;

	push(t, rec(PERF_RECORD_LOST, 0, lost, sizeof(lost), 0, 5));
	/* Shorter than its trailer; a size that disagrees with the header. */
	cr_assert_eq(proc_table_sideband_push(t, buf, 12), 0);
	push_exec(t, 400, 10);
	n = rec(PERF_RECORD_COMM, 0, "x", 1, 1, 1);
	buf[6] ^= 8;
	cr_assert_eq(proc_table_sideband_push(t, buf, n), 0);
	(void)proc_table_get_at(t, 400, 20, &p);
	proc_table_sideband_stats(t, &st);
	cr_assert_eq(st.lost, 7);
	cr_assert_eq(st.resyncs, 1);
	cr_assert_eq(st.malformed, 2);
	done(t);
}

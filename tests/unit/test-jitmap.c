// SPDX-License-Identifier: MIT
/*
 * JIT perf maps of live processes (pipeline/jitmap.h) against a fake /proc: which file is
 * opened, when it is trusted, the copies kept, reloads and the exit look.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/aggregate.h"
#include "pipeline/jitmap.h"
#include "symbolize/symbolize.h"

static char base[] = "/tmp/profd-jitmap-XXXXXX";
static char proc[256];

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", base, rel);
	f = fopen(path, "we");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static void status(unsigned pid, const char *nspid, unsigned u0, unsigned u1)
{
	char rel[64], text[256];

	snprintf(rel, sizeof(rel), "proc/%u/status", pid);
	snprintf(text, sizeof(text), "Name:\tjit\nNSpid:\t%s\nUid:\t%u\t%u\t%u\t%u\n", nspid, u0,
		 u1, u0, u0);
	put(rel, text);
}

/* A fake process `pid` of our uid whose /tmp holds perf-<pid>.map with `map` (NULL: none). */
static void fake_proc(unsigned pid, const char *map)
{
	char cmd[512], rel[128], nspid[16];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/proc/%u/root/tmp'", base, pid);
	cr_assert_eq(system(cmd), 0);
	snprintf(nspid, sizeof(nspid), "%u", pid);
	status(pid, nspid, getuid(), getuid());
	if (map) {
		snprintf(rel, sizeof(rel), "proc/%u/root/tmp/perf-%u.map", pid, pid);
		put(rel, map);
	}
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(base));
	snprintf(proc, sizeof(proc), "%s/proc", base);
}

static void teardown(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	(void)system(cmd);
}

TestSuite(jitmap, .init = setup, .fini = teardown);

static int open_live(unsigned pid, uint32_t *uid)
{
	int fd = jitmap_open_live(proc, (pid_t)pid, uid);

	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : fd;
}

Test(jitmap, owner_uids_links_and_kind)
{
	char path[512], other[512];
	uint32_t uid = 12345;

	fake_proc(100, "1000 10 fine\n");
	cr_assert_eq(open_live(100, &uid), 0);
	cr_assert_eq(uid, getuid());

	/* The process's uids disagree (set-uid): whose map would it be? */
	status(100, "100", getuid(), getuid() + 1);
	cr_assert_eq(open_live(100, &uid), -EPERM);
	/* Another uid's process: the file is not its owner's. */
	status(100, "100", getuid() + 1, getuid() + 1);
	cr_assert_eq(open_live(100, &uid), -EPERM);
	status(100, "100", getuid(), getuid());
	cr_assert_eq(open_live(100, &uid), 0);

	/* A second link: maybe someone else's file. */
	snprintf(path, sizeof(path), "%s/100/root/tmp/perf-100.map", proc);
	snprintf(other, sizeof(other), "%s/100/root/tmp/other", proc);
	cr_assert_eq(link(path, other), 0);
	cr_assert_eq(open_live(100, &uid), -EPERM);
	cr_assert_eq(unlink(other), 0);

	/* A FIFO is never opened for reading (it would block). */
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(open_live(100, &uid), -EINVAL);
	cr_assert_eq(unlink(path), 0);

	/* A symlink resolves below the process's /tmp, never to the host's file. */
	cr_assert_eq(symlink("/etc/passwd", path), 0);
	cr_assert_eq(open_live(100, &uid), -ENOENT);
	cr_assert_eq(unlink(path), 0);

	/* No map, no process. */
	cr_assert_eq(open_live(100, &uid), -ENOENT);
	cr_assert_eq(open_live(999, &uid), -ENOENT);
}

Test(jitmap, pid_inside_its_namespace)
{
	char rel[128];

	fake_proc(200, NULL);
	status(200, "200\t7", getuid(), getuid());
	snprintf(rel, sizeof(rel), "proc/200/root/tmp/perf-7.map");
	put(rel, "1000 10 in_ns\n");
	uint32_t uid;
	cr_assert_eq(open_live(200, &uid), 0);
}

Test(jitmap, copies_reloads_and_exit)
{
	struct jitmaps *t = NULL;
	struct jitmap *a, *b, *c;
	const char *name;
	char rel[128];

	fake_proc(300, "1000 10 first\n");
	snprintf(rel, sizeof(rel), "proc/300/root/tmp/perf-300.map");
	cr_assert_eq(jitmaps_new(proc, &t), 0);
	a = jitmaps_lookup(t, 300, 0x1000);
	cr_assert_not_null(a);
	cr_assert_eq(a->owner, getuid());
	cr_assert_eq(a->bytes, strlen("1000 10 first\n"));
	jitmap_ref(a);

	/* Changed, but looked at again only after JITMAP_REFRESH_MIN_NS. */
	put(rel, "1000 10 first\n2000 10 second\n");
	cr_assert_eq(jitmaps_lookup(t, 300, 0x2000), a);
	usleep(JITMAP_REFRESH_MIN_NS / 1000 + 100000);
	b = jitmaps_lookup(t, 300, 0x2000);
	cr_assert_not_null(b);
	cr_assert_neq(b, a);
	cr_assert_eq(perfmap_lookup(jitmap_perfmap(b), 0x2000, &name, NULL), 0);
	cr_assert_str_eq(name, "second");
	/* The older copy is what it was. */
	cr_assert_eq(perfmap_lookup(jitmap_perfmap(a), 0x2000, &name, NULL), -ENOENT);
	cr_assert_eq(perfmap_lookup(jitmap_perfmap(a), 0x1000, &name, NULL), 0);
	cr_assert_str_eq(name, "first");

	/* Unchanged: the same copy, however often it is looked at. */
	usleep(JITMAP_REFRESH_MIN_NS / 1000 + 100000);
	cr_assert_eq(jitmaps_lookup(t, 300, 0x3000), b);

	/* At exit, a sample outside the copy since: one last look at a changed file. */
	put(rel, "1000 10 first\n2000 10 second\n3000 10 third\n");
	cr_assert_eq(jitmaps_lookup(t, 300, 0x3000), b); /* within the refresh interval */
	c = jitmaps_exit(t, 300);
	cr_assert_not_null(c);
	cr_assert_eq(perfmap_lookup(jitmap_perfmap(c), 0x3000, &name, NULL), 0);
	cr_assert_str_eq(name, "third");
	/* Forgotten: nothing more is read for that pid. */
	cr_assert_null(jitmaps_exit(t, 300));

	/* An aggregate keeps a copy per pid; replace_only needs one of the same owner. */
	struct aggregate *agg = NULL;
	cr_assert_eq(aggregate_new(&agg), 0);
	cr_assert_eq(aggregate_set_jitmap(agg, 300, c, true), -ENOENT);
	cr_assert_eq(aggregate_set_jitmap(agg, 300, a, false), 0);
	cr_assert_eq(aggregate_set_jitmap(agg, 300, c, true), 0);
	cr_assert_eq(aggregate_jitmap(agg, 300), c);
	cr_assert_null(aggregate_jitmap(agg, 301));
	aggregate_free(agg);

	jitmap_unref(c);
	jitmap_unref(a);
	jitmaps_free(t);
}

Test(jitmap, gone_process_gets_nothing)
{
	struct jitmaps *t = NULL;
	char cmd[512];

	fake_proc(400, NULL);
	cr_assert_eq(jitmaps_new(proc, &t), 0);
	cr_assert_null(jitmaps_lookup(t, 400, 0x1000));
	/* The process is gone; its pid's map appears afterwards: never read. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/400' && mkdir -p '%s/tmp'", proc, base);
	cr_assert_eq(system(cmd), 0);
	put("tmp/perf-400.map", "1000 10 late\n");
	usleep(JITMAP_REFRESH_MIN_NS / 1000 + 100000);
	cr_assert_null(jitmaps_lookup(t, 400, 0x1000));
	cr_assert_null(jitmaps_exit(t, 400));
	jitmaps_free(t);
}

// SPDX-License-Identifier: MIT
/*
 * service/outdir: interval file names (and the -N of a second interval in the same second),
 * retention by count and bytes (oldest first, never the newest, other files untouched), the
 * temp files of a crashed write removed, and the checks on output_dir / spool_dir.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "service/outdir.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/profd-outdir-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0750), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

static void put(const char *name, size_t size)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "we");
	cr_assert_not_null(f, "%s", p);
	for (size_t i = 0; i < size; i++)
		fputc('x', f);
	fclose(f);
}

static bool there(const char *name)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

TestSuite(outdir, .init = setup, .fini = teardown);

Test(outdir, profile_path_adds_n_in_the_same_second)
{
	struct tm tm = {.tm_year = 2026 - 1900,
			.tm_mon = 10,
			.tm_mday = 22,
			.tm_hour = 2,
			.tm_min = 45,
			.tm_sec = 1};
	time_t t = timegm(&tm);
	char want[256], *p = NULL;

	cr_assert_eq(outdir_profile_path(dir, t, OUTPUT_PPROF, &p), 0);
	snprintf(want, sizeof(want), "%s/profile-20261122T024501Z.pb.gz", dir);
	cr_assert_str_eq(p, want);
	free(p);
	put("profile-20261122T024501Z.pb.gz", 1);
	cr_assert_eq(outdir_profile_path(dir, t, OUTPUT_PPROF, &p), 0);
	snprintf(want, sizeof(want), "%s/profile-20261122T024501Z-1.pb.gz", dir);
	cr_assert_str_eq(p, want);
	free(p);
	cr_assert_eq(outdir_profile_path(dir, t, OUTPUT_FOLDED, &p), 0);
	snprintf(want, sizeof(want), "%s/profile-20261122T024501Z.folded", dir);
	cr_assert_str_eq(p, want);
	free(p);
}

Test(outdir, retention_removes_the_oldest_never_the_newest)
{
	put("profile-20261122T024501Z.pb.gz", 10);
	put("profile-20261122T024501Z-1.folded", 10);
	put("profile-20261122T024601Z.pb.gz", 10);
	put("profile-20261122T024701Z.speedscope.json", 10);
	put("profile-20261122T024801Z.pb.gz", 10);
	put("notes.txt", 100);
	put("profile-2026.pb.gz", 10); /* not a stamp: not an interval file */

	cr_assert_eq(outdir_retention(dir, 0, 0), 0, "no bound, nothing removed");
	cr_assert_eq(outdir_retention(dir, 3, 0), 2);
	cr_assert_not(there("profile-20261122T024501Z.pb.gz"));
	cr_assert_not(there("profile-20261122T024501Z-1.folded"));
	cr_assert(there("profile-20261122T024601Z.pb.gz"));
	cr_assert_eq(outdir_retention(dir, 0, 15), 2, "bytes: down to one file of 10");
	cr_assert(there("profile-20261122T024801Z.pb.gz"));
	cr_assert_eq(outdir_retention(dir, 0, 5), 0, "the newest stays, whatever its size");
	cr_assert(there("profile-20261122T024801Z.pb.gz"));
	cr_assert(there("notes.txt"));
	cr_assert(there("profile-2026.pb.gz"));
}

Test(outdir, stale_temp_files_removed)
{
	put(".profile-20261122T024501Z.pb.gz.Ab12Cd", 1);
	put(".profile-20261122T024501Z.folded.Ab12Cd", 1);
	put(".profile-20261122T024501Z.txt.Ab12Cd", 1);
	put("profile-20261122T024501Z.pb.gz.Ab12Cd", 1);
	outdir_remove_stale_temp_files(dir);
	cr_assert_not(there(".profile-20261122T024501Z.pb.gz.Ab12Cd"));
	cr_assert_not(there(".profile-20261122T024501Z.folded.Ab12Cd"));
	cr_assert(there(".profile-20261122T024501Z.txt.Ab12Cd"));
	cr_assert(there("profile-20261122T024501Z.pb.gz.Ab12Cd"));
}

Test(outdir, prepare_creates_and_refuses)
{
	char p[256], q[256], err[512] = "";
	struct stat st;

	snprintf(p, sizeof(p), "%s/a/b", dir);
	cr_assert_eq(outdir_prepare("output_dir", p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 07777, OUTDIR_DIR_MODE, "%o", st.st_mode & 07777);

	snprintf(q, sizeof(q), "%s/link", dir);
	cr_assert_eq(symlink(p, q), 0);
	cr_assert_eq(outdir_prepare("output_dir", q, err, sizeof(err)), -EPERM);
	cr_assert_not_null(strstr(err, "symbolic link"), "%s", err);

	put("file", 1);
	snprintf(q, sizeof(q), "%s/file", dir);
	cr_assert_eq(outdir_prepare("spool_dir", q, err, sizeof(err)), -ENOTDIR);
	cr_assert_not_null(strstr(err, "spool_dir"), "%s", err);

	cr_assert_eq(chmod(p, 0777), 0);
	cr_assert_eq(outdir_prepare("output_dir", p, err, sizeof(err)), -EPERM);
	cr_assert_not_null(strstr(err, "chmod go-w"), "%s", err);
}

// SPDX-License-Identifier: MIT
/*
 * common/safeopen: the one opener of files a profiled process names. Paths resolve inside the
 * given root (symlinks, "..", absolute links), magic links are refused, nothing but a regular
 * file within the size cap is opened for reading, SAFE_OPEN_NO_SYMLINKS refuses every link, and
 * the component walk used without openat2 follows none. (test-proc.c checks the same through
 * proc_open_in_root() and the process table.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/safeopen.h"

static char root[64];

static void rpath(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", root, rel);
}

static void rwrite(const char *rel, const char *text)
{
	char p[256];
	FILE *f;

	rpath(p, sizeof(p), rel);
	f = fopen(p, "we");
	cr_assert_not_null(f, "%s", p);
	fputs(text, f);
	fclose(f);
}

static void rlink(const char *target, const char *rel)
{
	char p[256];

	rpath(p, sizeof(p), rel);
	cr_assert_eq(symlink(target, p), 0, "%s: %s", p, strerror(errno));
}

static void setup(void)
{
	char p[256];
	int fd;

	snprintf(root, sizeof(root), "/tmp/profd-safeopen-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	rpath(p, sizeof(p), "etc");
	cr_assert_eq(mkdir(p, 0755), 0);
	rpath(p, sizeof(p), "lib");
	cr_assert_eq(mkdir(p, 0755), 0);
	rwrite("etc/shadow", "inside shadow\n");
	rwrite("lib/good.debug", "a regular file\n");
	rlink("/etc/shadow", "lib/abs.debug");
	rlink("../../../../../../../../etc/shadow", "lib/dotdot.debug");
	rlink("good.debug", "lib/rel.debug");
	rlink("/lib", "libdir");
	rlink("/proc/self/root/etc/hostname", "lib/magic.debug"); /* inside: no /proc here */
	rpath(p, sizeof(p), "lib/fifo.debug");
	cr_assert_eq(mkfifo(p, 0644), 0);
	rpath(p, sizeof(p), "lib/big.debug");
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1000), 0);
	close(fd);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", root);
}

/* Open below the test root; on success the text read (static buffer). */
static int ropen(const char *path, unsigned flags, uint64_t max, const char **ret_text)
{
	static char text[64];
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;
	struct stat st, st2;
	ssize_t n;

	cr_assert_geq(rootfd, 0);
	fd = safe_open_in_root(rootfd, path, flags, max, &st);
	close(rootfd);
	if (fd < 0)
		return fd;
	cr_assert_eq(fstat(fd, &st2), 0);
	cr_assert_eq(st.st_ino, st2.st_ino);
	cr_assert(S_ISREG(st2.st_mode));
	cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	cr_assert_neq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	text[n] = '\0';
	if (ret_text)
		*ret_text = text;
	return 0;
}

Test(safeopen, links_stay_inside_the_root, .init = setup, .fini = teardown, .timeout = 20)
{
	const char *text;

	cr_assert_eq(ropen("/lib/abs.debug", 0, 1 << 20, &text), 0);
	cr_assert_str_eq(text, "inside shadow\n", "an absolute link left the root");
	cr_assert_eq(ropen("/lib/dotdot.debug", 0, 1 << 20, &text), 0);
	cr_assert_str_eq(text, "inside shadow\n", "\"..\" left the root");
	cr_assert_eq(ropen("/../../etc/shadow", 0, 1 << 20, &text), 0);
	cr_assert_str_eq(text, "inside shadow\n");
	/* The host's /proc is not inside this root: the link names nothing. */
	cr_assert_eq(ropen("/lib/magic.debug", 0, 1 << 20, NULL), -ENOENT);
}

/* Magic links (/proc/N/root, /proc/N/fd/M) jump anywhere: refused even with "/" as the root. */
Test(safeopen, magic_links_refused, .timeout = 20)
{
	int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), fd;

	cr_assert_geq(rootfd, 0);
	fd = safe_open_in_root(rootfd, "/proc/self/root/etc/passwd", 0, 1 << 30, NULL);
	cr_assert_eq(fd, -ELOOP, "got %d", fd);
	fd = safe_open_in_root(rootfd, "/proc/self/exe", 0, 1 << 30, NULL);
	cr_assert_eq(fd, -ELOOP, "got %d", fd);
	/* A plain host file through the same root opens. */
	fd = safe_open_in_root(rootfd, "/etc/passwd", 0, 1 << 30, NULL);
	cr_assert_geq(fd, 0);
	close(fd);
	close(rootfd);
}

/* Nothing but a regular file within the cap: devices and FIFOs are never opened for reading. */
Test(safeopen, only_regular_files_within_the_cap, .init = setup, .fini = teardown, .timeout = 20)
{
	int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

	cr_assert_geq(rootfd, 0);
	for (unsigned flags = 0; flags <= SAFE_OPEN_NO_OPENAT2; flags += SAFE_OPEN_NO_OPENAT2) {
		cr_assert_eq(ropen("/lib/fifo.debug", flags, 1 << 20, NULL), -EINVAL);
		cr_assert_eq(ropen("/lib", flags, 1 << 20, NULL), -EISDIR);
		cr_assert_eq(ropen("/lib/big.debug", flags, 999, NULL), -EFBIG);
		cr_assert_eq(ropen("/lib/big.debug", flags, 1000, NULL), 0);
		cr_assert_eq(safe_open_in_root(rootfd, "/dev/null", flags, 1 << 20, NULL), -EINVAL);
		cr_assert_eq(safe_open_in_root(rootfd, "/dev/ptmx", flags, 1 << 20, NULL), -EINVAL);
	}
	close(rootfd);
	cr_assert_eq(safe_open_in_root(-1, "/x", 0, 1, NULL), -EINVAL);
	cr_assert_eq(safe_reopen_regular(-1, 1, NULL), -EINVAL);
}

/* SAFE_OPEN_NO_SYMLINKS and the walk without openat2: no link is followed, in or out. */
Test(safeopen, no_symlinks_refuses_every_link, .init = setup, .fini = teardown, .timeout = 20)
{
	static const char *const links[] = { "/lib/abs.debug", "/lib/dotdot.debug",
					     "/lib/rel.debug", "/libdir/good.debug" };
	const char *text;

	for (unsigned flags = SAFE_OPEN_NO_SYMLINKS;
	     flags <= (SAFE_OPEN_NO_SYMLINKS | SAFE_OPEN_NO_OPENAT2); flags += SAFE_OPEN_NO_OPENAT2) {
		for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
			cr_assert_eq(ropen(links[i], flags, 1 << 20, NULL), -ELOOP, "%s, flags %u",
				     links[i], flags);
		cr_assert_eq(ropen("/lib/good.debug", flags, 1 << 20, &text), 0);
		cr_assert_str_eq(text, "a regular file\n");
	}
	/* Without openat2, links are refused even without the flag, ".." too. */
	cr_assert_eq(ropen("/lib/rel.debug", SAFE_OPEN_NO_OPENAT2, 1 << 20, NULL), -ELOOP);
	cr_assert_eq(ropen("/lib/../etc/shadow", SAFE_OPEN_NO_OPENAT2, 1 << 20, NULL), -EXDEV);
}

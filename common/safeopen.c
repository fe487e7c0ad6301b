// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/safeopen.h"

int safe_reopen_regular(int pfd, uint64_t max_size, struct stat *ret_st)
{
	char self[64];
	struct stat st;
	int fd;

	if (pfd < 0)
		return -EINVAL;
	if (fstat(pfd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	/* A FIFO would block the reader, opening a device can have side effects. */
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max_size)
		return -EFBIG;
	/* The magic link reopens the very inode pfd holds: no path is resolved again. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (ret_st)
		*ret_st = st;
	return fd;
}

/*
 * Without openat2: one component at a time below rootfd, never following a symlink. The paths
 * callers pass are canonical (the kernel prints a mapping's path from its dentry) or must not
 * contain links at all, so a symlink or ".." on the way is refused (-ELOOP, -EXDEV, the errors
 * openat2 gives for RESOLVE_NO_SYMLINKS and RESOLVE_BENEATH) rather than followed, possibly out
 * of the root.
 */
static int walk_in_root(int rootfd, const char *path)
{
	_cleanup_close_ int dfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	char name[NAME_MAX + 1];
	const char *p = path;

	if (dfd < 0)
		return -errno;
	for (;;) {
		struct stat st;
		size_t len;
		int fd;

		while (*p == '/')
			p++;
		if (!*p)
			return TAKE_FD(dfd);
		len = strcspn(p, "/");
		if (len > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, ".."))
			return -EXDEV;
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		close(dfd);
		dfd = fd;
		if (fstat(dfd, &st) < 0)
			return -errno;
		if (S_ISLNK(st.st_mode))
			return -ELOOP;
		if (*p && !S_ISDIR(st.st_mode))
			return -ENOTDIR;
	}
}

int safe_open_in_root(int rootfd, const char *path, unsigned flags, uint64_t max_size,
		      struct stat *ret_st)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int pfd = -1;

	if (rootfd < 0 || !path)
		return -EINVAL;
	if (flags & SAFE_OPEN_NO_SYMLINKS)
		how.resolve |= RESOLVE_NO_SYMLINKS;
	if (!(flags & SAFE_OPEN_NO_OPENAT2)) {
		pfd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		/* ENOSYS: before Linux 5.6, or hidden by a seccomp filter (container runtimes). */
		if (pfd < 0 && errno != ENOSYS)
			return -errno;
	}
	if (pfd < 0) {
		pfd = walk_in_root(rootfd, path);
		if (pfd < 0)
			return pfd;
	}
	return safe_reopen_regular(pfd, max_size, ret_st);
}

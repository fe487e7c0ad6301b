/* SPDX-License-Identifier: MIT */
/*
 * The one way profd opens a file whose name a profiled process chose (a mapped binary's path,
 * a debug file its .gnu_debuglink names, a JIT's perf map): inside that process's root, never
 * a device, a FIFO or anything but a regular file, never larger than the caller's cap.
 *
 * How: the path is looked up with openat2(O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
 * below `rootfd` as if rootfd were "/" (a process's /proc/PID/root, or "/" itself for host
 * paths): symlinks, absolute or made of "..", resolve inside the root; magic links
 * (/proc/N/root, /proc/N/fd/M) are refused. The O_PATH fd opens nothing (no device open, no
 * FIFO wait); it is fstat()ed and only a regular file within the size cap is then reopened for
 * reading through /proc/self/fd/N, which reopens that very inode without resolving any path
 * again. Where openat2 is unavailable (ENOSYS: Linux < 5.6, or a seccomp filter), the path is
 * walked one component at a time with O_PATH | O_NOFOLLOW, and any symlink (-ELOOP) or ".."
 * (-EXDEV) on it is refused, never followed.
 */
#pragma once

#include <stdint.h>
#include <sys/stat.h>

/* Take the component walk even where openat2 exists (tests). */
#define SAFE_OPEN_NO_OPENAT2 (1u << 0)
/* Refuse a symlink anywhere on the path (-ELOOP; openat2's RESOLVE_NO_SYMLINKS), for names a
 * process chose that must not lead elsewhere in its root (a debuglink name). */
#define SAFE_OPEN_NO_SYMLINKS (1u << 1)

/*
 * Open `path` below the directory `rootfd` (see above) read-only, O_CLOEXEC. Returns the fd, or
 * -EINVAL (bad arguments; a FIFO, socket or device), -EISDIR (a directory), -EFBIG (larger than
 * max_size bytes), -ELOOP (a symlink loop, or a refused symlink), -EXDEV ("..", without
 * openat2; or a magic link), or the -errno of the lookup. *ret_st (may be NULL) gets the
 * fstat() of the file opened.
 */
int safe_open_in_root(int rootfd, const char *path, unsigned flags, uint64_t max_size,
		      struct stat *ret_st);

/*
 * The second half of safe_open_in_root(): turn an O_PATH fd (not consumed) into a read-only one,
 * only for a regular file no larger than max_size. Same errors; for fds from elsewhere (e.g.
 * /proc/PID/map_files/...).
 */
int safe_reopen_regular(int pfd, uint64_t max_size, struct stat *ret_st);

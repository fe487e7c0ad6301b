// SPDX-License-Identifier: MIT
/* struct sym_root: a directory fd shared by reference (see symbolize.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbolize/symbolize.h"

struct sym_root {
	unsigned refs; /* atomic: sym_warmer threads open sym_elfs that take references */
	int fd;
};

int sym_root_new(int dirfd, struct sym_root **ret)
{
	struct sym_root *r;
	struct stat st;

	if (dirfd < 0 || !ret)
		return -EINVAL;
	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->refs = 1;
	r->fd = dirfd;
	*ret = r;
	return 0;
}

int sym_root_open(const char *dir, struct sym_root **ret)
{
	int fd, r;

	if (!dir || !ret)
		return -EINVAL;
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = sym_root_new(fd, ret);
	if (r < 0)
		close(fd);
	return r;
}

struct sym_root *sym_root_ref(struct sym_root *r)
{
	if (r)
		__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	return r;
}

void sym_root_unref(struct sym_root *r)
{
	if (!r || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	close(r->fd);
	free(r);
}

int sym_root_fd(const struct sym_root *r)
{
	return r ? r->fd : -EBADF;
}

unsigned sym_root_refs(const struct sym_root *r)
{
	return r ? __atomic_load_n(&r->refs, __ATOMIC_ACQUIRE) : 0;
}

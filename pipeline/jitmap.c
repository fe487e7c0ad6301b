// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "pipeline/jitmap.h"
#include "pipeline/proc.h"
#include "symbolize/symbolize.h"

#define COPY_CHUNK (256u * 1024)

struct jitmap *jitmap_ref(struct jitmap *m)
{
	if (m)
		m->refs++;
	return m;
}

void jitmap_unref(struct jitmap *m)
{
	if (!m || --m->refs > 0)
		return;
	perfmap_free(m->pm);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

const struct perfmap *jitmap_perfmap(struct jitmap *m)
{
	int r;

	if (!m || m->parsed)
		return m ? m->pm : NULL;
	m->parsed = true;
	r = lseek(m->fd, 0, SEEK_SET) < 0 ? -errno : perfmap_load_fd(m->fd, &m->pm);
	if (r < 0)
		log_debug("perf map copy: %s", strerror(-r));
	/* Parsed (or not parseable): the copy's bytes are not needed any more. */
	close(m->fd);
	m->fd = -1;
	return m->pm;
}

/*
 * The bytes of the map open at fd that perfmap_load_fd() would read (its last
 * PERFMAP_MAX_FILE_BYTES + 1, a byte before them to tell whether the first line is whole), into
 * a memfd. Returns the memfd, the bytes copied in *ret_bytes.
 */
static int copy_map(int fd, uint64_t size, uint64_t *ret_bytes)
{
	_cleanup_close_ int mfd = memfd_create("profd-perfmap", MFD_CLOEXEC);
	_cleanup_free_ char *buf = malloc(COPY_CHUNK);
	uint64_t want = MIN(size, (uint64_t)PERFMAP_MAX_FILE_BYTES + 1), done = 0;
	off_t pos = (off_t)(size - want);

	if (mfd < 0 || !buf)
		return mfd < 0 ? -errno : -ENOMEM;
	while (done < want) {
		ssize_t k = pread(fd, buf, (size_t)MIN((uint64_t)COPY_CHUNK, want - done), pos);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break; /* truncated meanwhile: what there was */
		for (ssize_t w = 0; w < k;) {
			ssize_t x = write(mfd, buf + w, (size_t)(k - w));

			if (x < 0 && errno == EINTR)
				continue;
			if (x < 0)
				return -errno;
			w += x;
		}
		done += (uint64_t)k;
		pos += k;
	}
	*ret_bytes = done;
	return TAKE_FD(mfd);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* NSpid (last field: the pid inside the process's own namespace) and the four uids. */
static int read_status(const char *proc_root, pid_t pid, uint32_t *ret_nspid, uint32_t uids[4])
{
	char path[96], buf[8192];
	_cleanup_close_ int fd = -1;
	size_t len = 0;
	bool have_uids = false;

	snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	while (len < sizeof(buf) - 1) {
		ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == ESRCH ? -ENOENT : -errno;
		if (k == 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';

	*ret_nspid = (uint32_t)pid; /* kernels before 4.1 have no NSpid: no namespaces */
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "NSpid:", 6)) {
			char *last = strrchr(line, '\t'), *end;
			unsigned long v;

			if (last) {
				errno = 0;
				v = strtoul(last + 1, &end, 10);
				if (!errno && end != last + 1 && !*end && v > 0 && v <= UINT32_MAX)
					*ret_nspid = (uint32_t)v;
			}
		} else if (!strncmp(line, "Uid:", 4)) {
			have_uids = sscanf(line + 4, "%" SCNu32 " %" SCNu32 " %" SCNu32 " %" SCNu32,
					   &uids[0], &uids[1], &uids[2], &uids[3]) == 4;
		}
	}
	return have_uids ? 0 : -EBADMSG;
}

/* The mount id of an fd; false when the kernel does not say (before Linux 5.8). */
static bool mount_id(int fd, uint64_t *ret)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return false;
	*ret = stx.stx_mnt_id;
	return true;
}

/* The process's /tmp, inside its root, as an O_PATH fd. */
static int open_tmp_dir(int rootfd)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, "tmp", &how, sizeof(how));

	/* Without openat2, a /tmp that is a symlink is not followed (it could lead anywhere). */
	if (fd < 0 && errno == ENOSYS)
		fd = openat(rootfd, "tmp", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int jitmap_open_live(const char *proc_root, pid_t pid, uint32_t *ret_uid)
{
	char path[96], name[64];
	_cleanup_close_ int rootfd = -1, tmpfd = -1, fd = -1;
	uint32_t nspid, uids[4];
	uint64_t mnt_dir, mnt_file;
	struct stat st;
	int r;

	r = read_status(proc_root, pid, &nspid, uids);
	if (r < 0)
		return r;
	/* One uid for everything, as profd_sample.uid: otherwise whose map would it be? */
	if (uids[1] != uids[0] || uids[2] != uids[0] || uids[3] != uids[0])
		return -EPERM;
	snprintf(path, sizeof(path), "%s/%d/root", proc_root, pid);
	rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return errno == EACCES || errno == ESRCH ? -ENOENT : -errno;
	tmpfd = open_tmp_dir(rootfd);
	if (tmpfd < 0)
		return tmpfd;
	/* tmpfd as the root: the map and whatever it links to stay below the process's /tmp. */
	snprintf(name, sizeof(name), "perf-%" PRIu32 ".map", nspid);
	fd = proc_open_in_root(tmpfd, name, 0, NULL);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* One link: not a hard link to someone else's file. The owner: the process's uid. */
	if (st.st_nlink != 1 || st.st_uid != uids[0]) {
		log_debug("perf map of pid %d: owner %u (process: %u), %u links: refused", pid,
			  (unsigned)st.st_uid, (unsigned)uids[0], (unsigned)st.st_nlink);
		return -EPERM;
	}
	/* On the mount of its /tmp: not a file bind-mounted over the map from elsewhere. */
	if (mount_id(tmpfd, &mnt_dir) && mount_id(fd, &mnt_file) && mnt_dir != mnt_file) {
		log_debug("perf map of pid %d: on mount %" PRIu64 ", its /tmp on %" PRIu64
			  ": refused",
			  pid, mnt_file, mnt_dir);
		return -EPERM;
	}
	*ret_uid = uids[0];
	return TAKE_FD(fd);
}

/* ---- the session's table ----------------------------------------------------------------- */

struct file_id {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
	uint32_t uid;
};

struct jit_entry {
	struct jit_entry *next;
	uint32_t pid;
	bool stale; /* a sample fell outside the copy since the file was last looked at */
	uint64_t checked_ns;
	bool have_id;
	struct file_id id; /* of the file last read (parsed or not) */
	struct jitmap *jm; /* NULL: none (yet) */
};

#define JIT_BUCKETS 256

struct jitmaps {
	const char *proc_root;
	struct jit_entry *buckets[JIT_BUCKETS];
	size_t n;
	uint64_t held_bytes;
	uint64_t gen_bytes, gen_ns; /* read and spent in this aggregate generation */
	struct jitmaps_stats st;
};

int jitmaps_new(const char *proc_root, struct jitmaps **ret)
{
	struct jitmaps *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->proc_root = proc_root ? proc_root : "/proc";
	*ret = t;
	return 0;
}

static void entry_free(struct jitmaps *t, struct jit_entry *e)
{
	if (e->jm)
		t->held_bytes -= e->jm->bytes;
	jitmap_unref(e->jm);
	free(e);
}

void jitmaps_free(struct jitmaps *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < JIT_BUCKETS; i++)
		while (t->buckets[i]) {
			struct jit_entry *e = t->buckets[i];

			t->buckets[i] = e->next;
			entry_free(t, e);
		}
	free(t);
}

static struct jit_entry **entry_slot(struct jitmaps *t, uint32_t pid)
{
	struct jit_entry **pe = &t->buckets[(pid * 2654435761u) % JIT_BUCKETS];

	while (*pe && (*pe)->pid != pid)
		pe = &(*pe)->next;
	return pe;
}

static bool over_budget(const struct jitmaps *t)
{
	return t->gen_bytes >= PROFILE_MAX_PERFMAP_BYTES || t->gen_ns >= PROFILE_PERFMAP_BUDGET_NS;
}

/*
 * Look at the process's map now and read it if it changed since the copy was made: true when
 * e->jm was replaced.
 */
static bool reload(struct jitmaps *t, struct jit_entry *e)
{
	_cleanup_close_ int fd = -1;
	struct jitmap *jm;
	struct file_id id;
	struct stat st;
	uint64_t size, t0, dt;
	uint32_t owner;
	int mfd;

	if (over_budget(t)) {
		t->st.over_budget++;
		return false;
	}
	fd = jitmap_open_live(t->proc_root, (pid_t)e->pid, &owner);
	if (fd < 0) {
		if (fd != -ENOENT && fd != -ENOTDIR)
			t->st.refused++;
		return false;
	}
	if (fstat(fd, &st) < 0)
		return false;
	memset(&id, 0, sizeof(id)); /* compared with memcmp */
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.size = (uint64_t)st.st_size;
	id.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
	id.uid = owner;
	e->stale = false;
	if (e->have_id && !memcmp(&id, &e->id, sizeof(id)))
		return false; /* unchanged since it was read: the address is simply not in it */
	size = MIN(id.size, (uint64_t)PERFMAP_MAX_FILE_BYTES + 1);
	if (t->gen_bytes + size > PROFILE_MAX_PERFMAP_BYTES ||
	    t->held_bytes - (e->jm ? e->jm->bytes : 0) + size > JITMAPS_MAX_HELD_BYTES) {
		t->st.over_budget++;
		return false;
	}
	t0 = mono_ns();
	mfd = copy_map(fd, id.size, &size);
	dt = mono_ns() - t0;
	t->gen_ns += dt;
	t->st.load_ns += dt;
	t->gen_bytes += size;
	t->st.bytes += size;
	e->have_id = true;
	e->id = id;
	if (mfd >= 0 && size == 0) {
		close(mfd); /* empty for now: looked at again once it changes */
		return false;
	}
	if (mfd < 0) {
		t->st.failed++;
		log_debug("perf map of pid %" PRIu32 ": %s", e->pid, strerror(-mfd));
		return false;
	}
	jm = calloc(1, sizeof(*jm));
	if (!jm) {
		close(mfd);
		return false;
	}
	*jm = (struct jitmap){ .refs = 1, .owner = owner, .bytes = size, .fd = mfd, .pm = NULL };
	if (e->jm)
		t->held_bytes -= e->jm->bytes;
	jitmap_unref(e->jm);
	e->jm = jm;
	t->held_bytes += jm->bytes;
	t->st.loads++;
	return true;
}

static void entry_remove(struct jitmaps *t, uint32_t pid);

/* A full table makes room by forgetting a process that has no map (JIT or not, it is rare). */
static bool evict_mapless(struct jitmaps *t)
{
	for (size_t i = 0; i < JIT_BUCKETS; i++)
		for (struct jit_entry *e = t->buckets[i]; e; e = e->next)
			if (!e->jm) {
				entry_remove(t, e->pid);
				return true;
			}
	return false;
}

struct jitmap *jitmaps_lookup(struct jitmaps *t, uint32_t pid, uint64_t addr)
{
	struct jit_entry **pe = entry_slot(t, pid), *e = *pe;
	uint64_t now;

	(void)addr; /* the copy is not parsed here: a change of the file is what counts */
	if (e)
		e->stale = true;
	now = mono_ns();
	if (e && now - e->checked_ns < JITMAP_REFRESH_MIN_NS)
		return e->jm;
	if (!e) {
		if (t->n >= JITMAPS_MAX_PROCS && !evict_mapless(t)) {
			t->st.over_budget++;
			return NULL;
		}
		pe = entry_slot(t, pid);
		e = calloc(1, sizeof(*e));
		if (!e)
			return NULL;
		e->pid = pid;
		*pe = e;
		t->n++;
	}
	e->checked_ns = now;
	(void)reload(t, e);
	return e->jm;
}

static void entry_remove(struct jitmaps *t, uint32_t pid)
{
	struct jit_entry **pe = entry_slot(t, pid), *e = *pe;

	if (!e)
		return;
	*pe = e->next;
	t->n--;
	entry_free(t, e);
}

struct jitmap *jitmaps_exit(struct jitmaps *t, uint32_t pid)
{
	struct jit_entry *e = *entry_slot(t, pid);
	struct jitmap *jm = NULL;

	if (!e)
		return NULL;
	if (e->stale && reload(t, e))
		jm = jitmap_ref(e->jm);
	entry_remove(t, pid);
	return jm;
}

void jitmaps_forget(struct jitmaps *t, uint32_t pid)
{
	entry_remove(t, pid);
}

void jitmaps_next_generation(struct jitmaps *t)
{
	t->gen_bytes = 0;
	t->gen_ns = 0;
}

const struct jitmaps_stats *jitmaps_stats(const struct jitmaps *t)
{
	return &t->st;
}

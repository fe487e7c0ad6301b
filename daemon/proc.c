// SPDX-License-Identifier: MIT
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "daemon/proc.h"
#include "symbolize/symbolize.h"

#define PROC_HASH_SIZE 4096
#define DSO_HASH_SIZE 1024

struct proc_table {
	char *proc_root;
	uint64_t sample_ns; /* CLOCK_MONOTONIC time of the sample being unwound, 0 if unknown */
	struct proc *procs[PROC_HASH_SIZE];
	size_t n_procs;
	struct dso *dsos[DSO_HASH_SIZE];
	size_t n_dsos;
	struct dso *vdso; /* our own vdso image; the kernel gives every process the same one */
	bool vdso_tried;
	proc_maps_observer_t observer;
	void *observer_userdata;
	proc_open_t open_fn; /* non-NULL: static mode, no /proc */
	void *open_userdata;
};

/* ---- dso --------------------------------------------------------------------------------- */

struct dso *dso_ref(struct dso *d)
{
	if (d)
		d->refs++;
	return d;
}

void dso_unref(struct dso *d)
{
	if (!d || --d->refs > 0)
		return;
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d);
}

static void dso_identify(struct dso *d)
{
	struct elf_ident id;

	if (d->fd >= 0 && sym_file_id_from_fd(d->fd, &d->file_id) < 0) {
		close(d->fd); /* no identity, nothing to key it by: as if it could not be opened */
		d->fd = -1;
	}
	if (d->fd < 0 || elf_identify_fd(d->fd, &id) < 0)
		return;
	d->is_elf = true;
	d->e_machine = id.e_machine;
	d->build_id_len = MIN(id.build_id_len, sizeof(d->build_id));
	memcpy(d->build_id, id.build_id, d->build_id_len);
	if (d->build_id_len > 0)
		build_id_to_hex(d->build_id, d->build_id_len, d->build_id_hex, sizeof(d->build_id_hex));
}

static int dso_new(const char *path, int fd, uint64_t dev, uint64_t ino, struct dso **ret)
{
	struct dso *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return -ENOMEM;
	}
	d->refs = 1;
	d->fd = fd;
	d->dev = dev;
	d->ino = ino;
	dso_identify(d);
	*ret = d;
	return 0;
}

static unsigned dso_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);

	return (unsigned)(h >> 32) % DSO_HASH_SIZE;
}

/* Drop cached dsos that nothing but the cache references any more. */
static void dso_cache_gc(struct proc_table *t)
{
	for (size_t i = 0; i < DSO_HASH_SIZE; i++) {
		struct dso **pp = &t->dsos[i];

		while (*pp) {
			struct dso *d = *pp;

			if (d->refs == 1) {
				*pp = d->hash_next;
				t->n_dsos--;
				dso_unref(d);
			} else {
				pp = &d->hash_next;
			}
		}
	}
}

/* ---- opening mapped files ------------------------------------------------------------------ */

static_assert(PROC_MAX_FILE_SIZE == SYM_MAX_FILE_SIZE, "the symbolizer refuses larger files");

/*
 * Turn an O_PATH fd into a read-only one, only for a regular file no larger than
 * PROC_MAX_FILE_SIZE. Nothing else is ever opened for reading: a FIFO would block the caller,
 * and opening a device can have side effects.
 */
static int reopen_regular(int pfd, uint64_t *ret_ino)
{
	char self[64];
	struct stat st;
	int fd;

	if (fstat(pfd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > PROC_MAX_FILE_SIZE)
		return -EFBIG;
	/* The magic link reopens the very inode pfd holds: no path is resolved again. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (ret_ino)
		*ret_ino = st.st_ino;
	return fd;
}

/*
 * Without openat2: one component at a time below rootfd, never following a symlink. The paths
 * in /proc/PID/maps are canonical (the kernel prints the dentry's path), so a symlink or ".."
 * on the way means the tree is not the one the maps line describes: refused (-ELOOP, -EXDEV,
 * the errors openat2 gives for RESOLVE_NO_SYMLINKS and RESOLVE_BENEATH) rather than followed,
 * possibly out of the root.
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

int proc_open_in_root(int rootfd, const char *path, unsigned flags, uint64_t *ret_ino)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int pfd = -1;

	if (rootfd < 0 || !path)
		return -EINVAL;
	if (!(flags & PROC_OPEN_NO_OPENAT2)) {
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
	return reopen_regular(pfd, ret_ino);
}

static int open_in_root(struct proc_table *t, pid_t pid, const char *path, uint64_t *ret_ino)
{
	char root[64];
	_cleanup_close_ int rootfd = -1;

	snprintf(root, sizeof(root), "%s/%d/root", t->proc_root, pid);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	return proc_open_in_root(rootfd, path, 0, ret_ino);
}

/*
 * Open the file behind a mapping. map_files gives the very file that is mapped (even when
 * deleted or replaced on disk); the root path is the fallback when map_files is not readable
 * (no CAP_CHECKPOINT_RESTORE), and never for a deleted file, whose path now names another one
 * or nothing. The fd must refer to the inode the maps line names, or it is the wrong file.
 */
static int open_mapped_file(struct proc_table *t, pid_t pid, const struct maps_entry *e)
{
	char mf[96];
	_cleanup_close_ int pfd = -1;
	uint64_t ino = 0;
	int fd;

	snprintf(mf, sizeof(mf), "%s/%d/map_files/%" PRIx64 "-%" PRIx64, t->proc_root, pid,
		 e->start, e->end);
	pfd = open(mf, O_PATH | O_CLOEXEC);
	if (pfd >= 0)
		fd = reopen_regular(pfd, &ino);
	else if (e->deleted)
		fd = -ENOENT;
	else
		fd = open_in_root(t, pid, e->path, &ino);
	if (fd >= 0 && ino != e->ino) {
		close(fd);
		fd = -ESTALE;
	}
	if (fd < 0)
		log_debug_errno(fd, "pid %d: %s%s not opened: %m", pid, e->path,
				e->deleted ? " (deleted)" : "");
	return fd;
}

static struct dso *dso_cache_get(struct proc_table *t, pid_t pid, const struct maps_entry *e)
{
	uint64_t dev = makedev(e->dev_major, e->dev_minor);
	unsigned h = dso_hash(dev, e->ino);
	struct dso *d;
	int fd;

	for (d = t->dsos[h]; d; d = d->hash_next)
		if (d->dev == dev && d->ino == e->ino)
			return dso_ref(d);
	if (t->n_dsos >= PROC_MAX_DSOS) {
		dso_cache_gc(t);
		if (t->n_dsos >= PROC_MAX_DSOS)
			return NULL;
	}
	fd = open_mapped_file(t, pid, e);
	if (dso_new(e->path, fd < 0 ? -1 : fd, dev, e->ino, &d) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	d->hash_next = t->dsos[h];
	t->dsos[h] = d;
	t->n_dsos++;
	return dso_ref(d);
}

/* The vdso has no file: copy our own (identical) image into a memfd so it reads like one. */
static struct dso *vdso_get(struct proc_table *t)
{
	unsigned long base;
	_cleanup_fclose_ FILE *f = NULL;
	char line[512];
	uint64_t start = 0, end = 0;
	int fd;

	if (t->vdso_tried)
		return dso_ref(t->vdso);
	t->vdso_tried = true;

	base = getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return NULL;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "[vdso]") && sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			break;
		start = end = 0;
	}
	if (start != base || end <= start || end - start > (16u << 20))
		return NULL;
	fd = memfd_create("profd-vdso", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (write(fd, (const void *)base, end - start) != (ssize_t)(end - start) ||
	    dso_new("[vdso]", fd, 0, 0, &t->vdso) < 0) {
		close(fd);
		return NULL;
	}
	return dso_ref(t->vdso);
}

/* ---- maps parsing ------------------------------------------------------------------------- */

static char *parse_hex(char *s, uint64_t *ret)
{
	uint64_t v = 0;
	int n = 0;

	for (; isxdigit((unsigned char)*s); s++, n++) {
		if (n >= 16)
			return NULL;
		v = v * 16 + (isdigit((unsigned char)*s) ? *s - '0' : (tolower(*s) - 'a' + 10));
	}
	if (n == 0)
		return NULL;
	*ret = v;
	return s;
}

int proc_maps_parse_line(char *line, struct maps_entry *ret)
{
	struct maps_entry e = {};
	uint64_t maj, min;
	char *s = line, *end;
	size_t len;

	if (!(s = parse_hex(s, &e.start)) || *s++ != '-' || !(s = parse_hex(s, &e.end)) ||
	    *s++ != ' ')
		return -EINVAL;
	if (e.end <= e.start)
		return -EINVAL;
	if (strlen(s) < 5 || s[4] != ' ')
		return -EINVAL;
	if (s[0] == 'r')
		e.prot |= PROT_READ;
	if (s[1] == 'w')
		e.prot |= PROT_WRITE;
	if (s[2] == 'x')
		e.prot |= PROT_EXEC;
	e.shared = s[3] == 's';
	s += 5;
	if (!(s = parse_hex(s, &e.pgoff)) || *s++ != ' ')
		return -EINVAL;
	if (!(s = parse_hex(s, &maj)) || *s++ != ':' || !(s = parse_hex(s, &min)) || *s++ != ' ')
		return -EINVAL;
	if (maj > UINT32_MAX || min > UINT32_MAX)
		return -EINVAL;
	e.dev_major = maj;
	e.dev_minor = min;
	e.ino = strtoull(s, &end, 10);
	if (end == s)
		return -EINVAL;
	s = end;
	while (*s == ' ')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	if (len > 0) {
		static const char deleted[] = " (deleted)";
		size_t dl = sizeof(deleted) - 1;

		if (len > dl && strcmp(s + len - dl, deleted) == 0) {
			e.deleted = true;
			s[len - dl] = '\0';
		}
		e.path = s;
	}
	*ret = e;
	return 0;
}

/* ---- processes ---------------------------------------------------------------------------- */

static void mappings_free(struct mapping *maps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dso_unref(maps[i].dso);
		free(maps[i].name);
	}
	free(maps);
}

static int proc_load_maps(struct proc_table *t, struct proc *p)
{
	char path[64];
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	struct mapping *maps = NULL;
	size_t n = 0, cap = 0, linecap = 0;
	ssize_t len;

	char exe[PATH_MAX] = "";
	ssize_t exe_len;

	snprintf(path, sizeof(path), "%s/%d/exe", t->proc_root, p->pid);
	exe_len = readlink(path, exe, sizeof(exe) - 1);
	if (exe_len > 0) {
		static const char deleted[] = " (deleted)";
		size_t dl = sizeof(deleted) - 1;

		exe[exe_len] = '\0';
		if ((size_t)exe_len > dl && strcmp(exe + exe_len - dl, deleted) == 0)
			exe[exe_len - dl] = '\0';
	}
	snprintf(path, sizeof(path), "%s/%d/maps", t->proc_root, p->pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;

	while ((len = getline(&line, &linecap, f)) >= 0) {
		struct maps_entry e;
		struct mapping *m;

		if (len > PROC_MAPS_LINE_MAX || proc_maps_parse_line(line, &e) < 0)
			continue;
		/* Only executable mappings hold code the unwinder or symbolizer needs. */
		if (!(e.prot & PROT_EXEC))
			continue;
		if (n >= PROC_MAX_MAPS)
			break;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct mapping *nm = reallocarray(maps, ncap, sizeof(*maps));

			if (!nm) {
				mappings_free(maps, n);
				return -ENOMEM;
			}
			maps = nm;
			cap = ncap;
		}
		m = &maps[n];
		*m = (struct mapping){ .start = e.start, .end = e.end, .pgoff = e.pgoff,
				       .prot = e.prot, .deleted = e.deleted };
		if (!e.path) {
			m->kind = MAPPING_ANON;
		} else if (e.path[0] == '/') {
			m->kind = MAPPING_FILE;
			m->dso = dso_cache_get(t, p->pid, &e);
			m->is_exe = exe[0] && strcmp(exe, e.path) == 0;
		} else if (strcmp(e.path, "[vdso]") == 0) {
			m->kind = MAPPING_VDSO;
			m->dso = vdso_get(t);
		} else if (strcmp(e.path, "[vsyscall]") == 0) {
			m->kind = MAPPING_VSYSCALL;
		} else {
			m->kind = MAPPING_SPECIAL;
		}
		if (e.path) {
			m->name = strdup(e.path);
			if (!m->name) {
				mappings_free(maps, n + 1);
				return -ENOMEM;
			}
		}
		n++;
	}
	/* /proc/PID/maps is sorted by address already; the lookup relies on it. */
	mappings_free(p->maps, p->n_maps);
	p->maps = maps;
	p->n_maps = n;
	p->refreshed_ns = mono_ns();
	p->n_refresh++;
	if (t->observer)
		t->observer(t->observer_userdata, p);
	return 0;
}

static unsigned proc_hash(pid_t pid)
{
	return ((uint32_t)pid * 2654435761u) % PROC_HASH_SIZE;
}

static struct proc *proc_lookup(struct proc_table *t, pid_t pid)
{
	for (struct proc *p = t->procs[proc_hash(pid)]; p; p = p->hash_next)
		if (p->pid == pid)
			return p;
	return NULL;
}

int proc_table_get(struct proc_table *t, pid_t pid, struct proc **ret)
{
	struct proc *p = proc_lookup(t, pid);
	unsigned h;
	int r;

	if (p) {
		if (!p->maps && !p->exited && mono_ns() - p->refreshed_ns > PROC_REFRESH_MIN_NS)
			proc_load_maps(t, p);
		*ret = p;
		return 0;
	}
	if (t->open_fn)
		return -ESRCH;
	if (t->n_procs >= PROC_MAX_PROCS)
		return -E2BIG;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	r = proc_load_maps(t, p);
	if (r < 0) {
		free(p);
		return r;
	}
	h = proc_hash(pid);
	p->hash_next = t->procs[h];
	t->procs[h] = p;
	t->n_procs++;
	*ret = p;
	return 0;
}

static const struct mapping *maps_bsearch(const struct proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n_maps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct mapping *m = &p->maps[mid];

		if (addr < m->start)
			hi = mid;
		else if (addr >= m->end)
			lo = mid + 1;
		else
			return m;
	}
	return NULL;
}

const struct mapping *proc_find_mapping(struct proc_table *t, struct proc *p, uint64_t addr)
{
	const struct mapping *m = maps_bsearch(p, addr);

	if (m || p->exited || t->open_fn)
		return m;
	/*
	 * Re-read at most every PROC_REFRESH_MIN_NS, unless the maps are older than the sample
	 * being unwound: then they cannot know about a mapping made just before it (a new
	 * process's libraries), and one re-read per such sample is worth it.
	 */
	if (mono_ns() - p->refreshed_ns < PROC_REFRESH_MIN_NS &&
	    (t->sample_ns == 0 || p->refreshed_ns >= t->sample_ns))
		return NULL;
	if (proc_load_maps(t, p) < 0)
		return NULL;
	return maps_bsearch(p, addr);
}

void proc_table_exec(struct proc_table *t, pid_t pid)
{
	struct proc *p = proc_lookup(t, pid);

	if (!p)
		return;
	mappings_free(p->maps, p->n_maps);
	p->maps = NULL;
	p->n_maps = 0;
	p->refreshed_ns = 0;
	/* Read the new image's maps now, while the process surely still exists. */
	if (!t->open_fn)
		proc_load_maps(t, p);
}

static void proc_free(struct proc *p)
{
	if (!p)
		return;
	mappings_free(p->maps, p->n_maps);
	free(p);
}

void proc_table_remove(struct proc_table *t, pid_t pid)
{
	struct proc **pp = &t->procs[proc_hash(pid)];

	for (; *pp; pp = &(*pp)->hash_next) {
		if ((*pp)->pid == pid) {
			struct proc *p = *pp;

			*pp = p->hash_next;
			t->n_procs--;
			proc_free(p);
			dso_cache_gc(t);
			return;
		}
	}
}

int proc_table_new(const char *proc_root, struct proc_table **ret)
{
	struct proc_table *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->proc_root = strdup(proc_root ? proc_root : "/proc");
	if (!t->proc_root) {
		free(t);
		return -ENOMEM;
	}
	*ret = t;
	return 0;
}

void proc_table_free(struct proc_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < PROC_HASH_SIZE; i++) {
		while (t->procs[i]) {
			struct proc *p = t->procs[i];

			t->procs[i] = p->hash_next;
			proc_free(p);
		}
	}
	for (size_t i = 0; i < DSO_HASH_SIZE; i++) {
		while (t->dsos[i]) {
			struct dso *d = t->dsos[i];

			t->dsos[i] = d->hash_next;
			dso_unref(d);
		}
	}
	dso_unref(t->vdso);
	free(t->proc_root);
	free(t);
}

void proc_table_set_observer(struct proc_table *t, proc_maps_observer_t fn, void *userdata)
{
	t->observer = fn;
	t->observer_userdata = userdata;
}

/* ---- static mode ---------------------------------------------------------------------------- */

int proc_table_set_static(struct proc_table *t, proc_open_t open_fn, void *userdata)
{
	if (!open_fn)
		return -EINVAL;
	if (t->n_procs > 0)
		return -EBUSY;
	t->open_fn = open_fn;
	t->open_userdata = userdata;
	return 0;
}

static uint64_t path_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Recorded files are told apart by path too: (dev, ino) may be unknown (0, 0). */
static struct dso *dso_cache_get_static(struct proc_table *t, const struct proc_static_map *m)
{
	unsigned h = dso_hash(m->dev, m->ino ^ path_hash(m->path));
	struct dso *d;
	int fd;

	for (d = t->dsos[h]; d; d = d->hash_next)
		if (d->dev == m->dev && d->ino == m->ino && strcmp(d->path, m->path) == 0)
			return dso_ref(d);
	if (t->n_dsos >= PROC_MAX_DSOS) {
		dso_cache_gc(t);
		if (t->n_dsos >= PROC_MAX_DSOS)
			return NULL;
	}
	fd = t->open_fn(t->open_userdata, m);
	if (dso_new(m->path, fd < 0 ? -1 : fd, m->dev, m->ino, &d) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (d->fd < 0 || !d->is_elf) {
		/* No file here: keep what the recording knew, so the profile still names it. */
		d->e_machine = m->e_machine;
		d->build_id_len = MIN(m->build_id_len, sizeof(d->build_id));
		if (m->build_id && d->build_id_len > 0) {
			memcpy(d->build_id, m->build_id, d->build_id_len);
			build_id_to_hex(d->build_id, d->build_id_len, d->build_id_hex,
					sizeof(d->build_id_hex));
		} else {
			d->build_id_len = 0;
		}
	}
	d->hash_next = t->dsos[h];
	t->dsos[h] = d;
	t->n_dsos++;
	return dso_ref(d);
}

static struct dso *vdso_get_static(struct proc_table *t, const struct proc_static_map *m)
{
	struct dso *d = vdso_get(t);

	if (d && m->build_id_len > 0 &&
	    (d->build_id_len != m->build_id_len || memcmp(d->build_id, m->build_id, m->build_id_len))) {
		dso_unref(d);
		return NULL; /* another kernel's vdso: better no file than the wrong one */
	}
	return d;
}

static int cmp_static_map(const void *a, const void *b)
{
	const struct proc_static_map *x = *(const struct proc_static_map *const *)a;
	const struct proc_static_map *y = *(const struct proc_static_map *const *)b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int proc_table_add_static(struct proc_table *t, pid_t pid, const struct proc_static_map *in,
			  size_t n_in)
{
	_cleanup_free_ const struct proc_static_map **order = NULL;
	struct mapping *maps = NULL;
	struct proc *p;
	size_t n = 0;

	if (!t->open_fn || (n_in > 0 && !in))
		return -EINVAL;
	if (n_in > PROC_MAX_MAPS)
		return -E2BIG;
	p = proc_lookup(t, pid);
	if (!p && t->n_procs >= PROC_MAX_PROCS)
		return -E2BIG;

	order = calloc(n_in ? n_in : 1, sizeof(*order));
	maps = calloc(n_in ? n_in : 1, sizeof(*maps));
	if (!order || !maps) {
		free(maps);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_in; i++)
		order[i] = &in[i];
	qsort(order, n_in, sizeof(*order), cmp_static_map);

	for (size_t i = 0; i < n_in; i++) {
		const struct proc_static_map *e = order[i];
		struct mapping *m = &maps[n];

		if (!(e->prot & PROT_EXEC) || e->end <= e->start)
			continue;
		if (n > 0 && e->start < maps[n - 1].end)
			continue;
		*m = (struct mapping){ .start = e->start, .end = e->end, .pgoff = e->pgoff,
				       .prot = e->prot, .deleted = e->deleted };
		if (!e->path) {
			m->kind = MAPPING_ANON;
		} else if (e->path[0] == '/') {
			m->kind = MAPPING_FILE;
			m->dso = dso_cache_get_static(t, e);
			m->is_exe = e->is_exe;
		} else if (strcmp(e->path, "[vdso]") == 0) {
			m->kind = MAPPING_VDSO;
			m->dso = vdso_get_static(t, e);
		} else if (strcmp(e->path, "[vsyscall]") == 0) {
			m->kind = MAPPING_VSYSCALL;
		} else {
			m->kind = MAPPING_SPECIAL;
		}
		if (e->path) {
			m->name = strdup(e->path);
			if (!m->name) {
				mappings_free(maps, n + 1);
				return -ENOMEM;
			}
		}
		n++;
	}

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			mappings_free(maps, n);
			return -ENOMEM;
		}
		p->pid = pid;
		p->hash_next = t->procs[proc_hash(pid)];
		t->procs[proc_hash(pid)] = p;
		t->n_procs++;
	}
	mappings_free(p->maps, p->n_maps);
	p->maps = maps;
	p->n_maps = n;
	p->exited = true; /* nothing to refresh from: lookups never re-read */
	p->refreshed_ns = mono_ns();
	p->n_refresh++;
	return 0;
}

void proc_table_set_sample_time(struct proc_table *t, uint64_t sample_ns)
{
	t->sample_ns = sample_ns;
}

size_t proc_table_n_procs(const struct proc_table *t)
{
	return t->n_procs;
}

size_t proc_table_n_dsos(const struct proc_table *t)
{
	return t->n_dsos;
}

// SPDX-License-Identifier: MIT
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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

#include "common/grow.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/safeopen.h"
#include "common/util.h"
#include "pipeline/cgroup.h"
#include "pipeline/proc.h"
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
	proc_sideband_map_hook_t map_hook;
	void *map_hook_userdata;
	proc_open_t open_fn; /* non-NULL: static mode, no /proc */
	void *open_userdata;
	struct sym_root *static_root; /* static mode: the root recorded paths are in, or NULL */
	struct root_entry *roots;     /* distinct process roots, one fd each (see proc.h) */
	size_t n_roots, cap_roots;
	/* The side-band stream (see proc_table_set_sideband()). */
	bool sideband, sideband_all;
	struct dso *dsos_bid[DSO_HASH_SIZE]; /* dsos with a build-id, by it */
	struct sb_item *sb_items; /* queued records: [sb_head, sb_n) not applied yet */
	size_t sb_head, sb_n, sb_cap;
	bool sb_sorted;
	uint8_t *sb_arena; /* the records' bytes */
	size_t sb_arena_len, sb_arena_cap;
	uint64_t sb_seq;
	size_t n_ended; /* generations ended, not freed yet */
	bool resync_due;
	struct proc_sideband_stats sb;
	struct cgroup_ids *cgroups; /* container ids, NULL until proc_table_enable_container_ids() */
};

_Static_assert(CGROUP_MAX_PIDS == PROC_MAX_PROCS, "one limit on processes remembered");

/* A process root: its mount namespace, mount and directory, and the fd kept for it. */
struct root_entry {
	uint64_t mntns, mnt_id, dev, ino;
	struct sym_root *root;
};

/* A process's root as proc_load_maps() needs it: looked up on the first new dso only. */
struct lazy_root {
	struct sym_root *root; /* a reference of our own: a gc meanwhile cannot free it */
	bool tried;
};

static void lazy_root_done(struct lazy_root *lr)
{
	sym_root_unref(lr->root);
}

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
	sym_root_unref(d->root);
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

static int dso_new(const char *path, int fd, struct sym_root *root, uint64_t dev, uint64_t ino,
		   struct dso **ret)
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
	d->root = sym_root_ref(root);
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

/* Drop roots that nothing but the table references any more (no dso, no sym_elf). */
static void roots_gc(struct proc_table *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n_roots; i++) {
		if (sym_root_refs(t->roots[i].root) == 1)
			sym_root_unref(t->roots[i].root);
		else
			t->roots[n++] = t->roots[i];
	}
	t->n_roots = n;
}

/*
 * The root of pid (borrowed; the table keeps it), shared with every process whose root is the
 * same directory on the same mount in the same mount namespace, or NULL when it cannot be
 * opened or PROC_MAX_ROOTS distinct roots are in use.
 */
static struct sym_root *root_get(struct proc_table *t, pid_t pid)
{
	char path[64];
	struct statx stx;
	struct stat ns;
	struct root_entry k = {};
	struct sym_root *root;
	int fd;

	snprintf(path, sizeof(path), "%s/%d/root", t->proc_root, pid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &stx) < 0) {
		close(fd);
		return NULL;
	}
	k.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	k.ino = stx.stx_ino;
	/* The mount id is unique on the host (Linux >= 5.8); the namespace for older ones. */
	k.mnt_id = stx.stx_mask & STATX_MNT_ID ? stx.stx_mnt_id : 0;
	snprintf(path, sizeof(path), "%s/%d/ns/mnt", t->proc_root, pid);
	if (stat(path, &ns) == 0)
		k.mntns = ns.st_ino;
	for (size_t i = 0; i < t->n_roots; i++) {
		struct root_entry *r = &t->roots[i];

		if (r->mntns == k.mntns && r->mnt_id == k.mnt_id && r->dev == k.dev &&
		    r->ino == k.ino) {
			close(fd);
			return r->root;
		}
	}
	if (t->n_roots >= PROC_MAX_ROOTS)
		roots_gc(t);
	/* Still full (or out of memory): the process gets no root. */
	(void)GROW_ARRAY(t->roots, t->cap_roots, t->n_roots + 1, PROC_MAX_ROOTS);
	if (t->n_roots == t->cap_roots || sym_root_new(fd, &root) < 0) {
		close(fd);
		return NULL;
	}
	k.root = root;
	t->roots[t->n_roots++] = k;
	return root;
}

static unsigned bid_hash(const uint8_t *id, size_t len)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ id[i]) * 1099511628211ull;
	return (unsigned)(h >> 32) % DSO_HASH_SIZE;
}

/* A dso with a build-id is also found by it (side-band MMAP2 records may carry only that). */
static void dso_bid_insert(struct proc_table *t, struct dso *d)
{
	unsigned h;

	if (d->build_id_len == 0 || d->in_bid_hash)
		return;
	h = bid_hash(d->build_id, d->build_id_len);
	d->bid_next = t->dsos_bid[h];
	t->dsos_bid[h] = d;
	d->in_bid_hash = true;
}

static void dso_bid_remove(struct proc_table *t, struct dso *d)
{
	struct dso **pp;

	if (!d->in_bid_hash)
		return;
	for (pp = &t->dsos_bid[bid_hash(d->build_id, d->build_id_len)]; *pp; pp = &(*pp)->bid_next)
		if (*pp == d) {
			*pp = d->bid_next;
			break;
		}
	d->in_bid_hash = false;
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
				dso_bid_remove(t, d);
				dso_unref(d);
			} else {
				pp = &d->hash_next;
			}
		}
	}	roots_gc(t);
}

/* ---- opening mapped files ------------------------------------------------------------------ */

static_assert(PROC_MAX_FILE_SIZE == SYM_MAX_FILE_SIZE, "the symbolizer refuses larger files");

static_assert(PROC_OPEN_NO_OPENAT2 == SAFE_OPEN_NO_OPENAT2, "one flag, two names");

static int reopen_regular(int pfd, uint64_t *ret_ino)
{
	struct stat st;
	int fd = safe_reopen_regular(pfd, PROC_MAX_FILE_SIZE, &st);

	if (fd >= 0 && ret_ino)
		*ret_ino = st.st_ino;
	return fd;
}

int proc_open_in_root(int rootfd, const char *path, unsigned flags, uint64_t *ret_ino)
{
	struct stat st;
	int fd = safe_open_in_root(rootfd, path, flags & PROC_OPEN_NO_OPENAT2, PROC_MAX_FILE_SIZE,
				   &st);

	if (fd >= 0 && ret_ino)
		*ret_ino = st.st_ino;
	return fd;
}

static int open_in_root(struct proc_table *t, pid_t pid, struct sym_root *root, const char *path,
			uint64_t *ret_ino)
{
	char rp[64];
	_cleanup_close_ int rootfd = -1;

	if (root)
		return proc_open_in_root(sym_root_fd(root), path, 0, ret_ino);
	snprintf(rp, sizeof(rp), "%s/%d/root", t->proc_root, pid);
	rootfd = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
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
static int open_mapped_file(struct proc_table *t, pid_t pid, struct sym_root *root,
			    const struct maps_entry *e)
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
		fd = open_in_root(t, pid, root, e->path, &ino);
	if (fd >= 0 && ino != e->ino) {
		close(fd);
		fd = -ESTALE;
	}
	if (fd < 0)
		log_debug_errno(fd, "pid %d: %s%s not opened: %m", pid, e->path,
				e->deleted ? " (deleted)" : "");
	return fd;
}

static struct dso *dso_cache_get(struct proc_table *t, pid_t pid, struct lazy_root *lr,
				 const struct maps_entry *e)
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
	if (!lr->tried) {
		lr->tried = true;
		lr->root = sym_root_ref(root_get(t, pid));
	}
	fd = open_mapped_file(t, pid, lr->root, e);
	if (dso_new(e->path, fd < 0 ? -1 : fd, lr->root, dev, e->ino, &d) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	d->hash_next = t->dsos[h];
	t->dsos[h] = d;
	t->n_dsos++;
	dso_bid_insert(t, d);
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
	    dso_new("[vdso]", fd, NULL, 0, 0, &t->vdso) < 0) {
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
	_cleanup_(lazy_root_done) struct lazy_root root = {};
	ssize_t len;
	int r;

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
		r = GROW_ARRAY(maps, cap, n + 1, PROC_MAX_MAPS);
		if (r < 0) {
			mappings_free(maps, n);
			return r;
		}
		m = &maps[n];
		*m = (struct mapping){ .start = e.start, .end = e.end, .pgoff = e.pgoff,
				       .prot = e.prot, .deleted = e.deleted };
		if (!e.path) {
			m->kind = MAPPING_ANON;
		} else if (e.path[0] == '/') {
			m->kind = MAPPING_FILE;
			m->dso = dso_cache_get(t, p->pid, &root, &e);
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
	p->cap_maps = n;
	p->dirty = false;
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
		if (!p->maps && !p->exited && !p->sideband &&
		    mono_ns() - p->refreshed_ns > PROC_REFRESH_MIN_NS)
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

	/* The side-band stream tells every new mapping: /proc is not read behind its back. */
	if (m || p->exited || t->open_fn || t->sideband)
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

	/* Runtimes move a process into its container's cgroup before exec. */
	cgroup_ids_forget(t->cgroups, (uint32_t)pid);
	if (!p || t->sideband)
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

/* A process and every older generation of it. */
static void proc_free_chain(struct proc *p)
{
	while (p) {
		struct proc *o = p->older;

		proc_free(p);
		p = o;
	}
}

void proc_table_remove(struct proc_table *t, pid_t pid)
{
	struct proc **pp = &t->procs[proc_hash(pid)];

	cgroup_ids_forget(t->cgroups, (uint32_t)pid);
	if (t->sideband)
		return;
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

int proc_table_enable_container_ids(struct proc_table *t)
{
	return t->cgroups ? 0 : cgroup_ids_new(t->proc_root, &t->cgroups);
}

struct cgroup_pid *proc_table_container(struct proc_table *t, uint32_t pid)
{
	if (!t->cgroups || pid == 0)
		return NULL;
	return cgroup_ids_get(t->cgroups, pid);
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
			proc_free_chain(p);
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
	cgroup_ids_free(t->cgroups);
	for (size_t i = 0; i < t->n_roots; i++)
		sym_root_unref(t->roots[i].root);
	free(t->roots);
	sym_root_unref(t->static_root);
	free(t->sb_items);
	free(t->sb_arena);
	free(t->proc_root);
	free(t);
}

void proc_table_set_sideband_map_hook(struct proc_table *t, proc_sideband_map_hook_t fn,
				      void *userdata)
{
	t->map_hook = fn;
	t->map_hook_userdata = userdata;
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

void proc_table_set_static_root(struct proc_table *t, struct sym_root *root)
{
	sym_root_unref(t->static_root);
	t->static_root = sym_root_ref(root);
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
	if (dso_new(m->path, fd < 0 ? -1 : fd, t->static_root, m->dev, m->ino, &d) < 0) {
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

/* ---- the kernel's side-band stream -------------------------------------------------------- */

/*
 * Records arrive per CPU, each CPU's in time order; they are queued, sorted by time (then by
 * arrival), and applied up to the time of the sample about to be resolved, so a FORK copies
 * what its parent had mapped by then, whichever CPU's ring told it.
 */
struct sb_item {
	uint64_t time, seq;
	size_t off;
	uint32_t size;
};

/* sample_id_all trailer of every record, for PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU */
struct sb_id {
	uint32_t pid, tid;
	uint64_t time;
	uint32_t cpu, res;
};

#define SB_HDR 8 /* struct perf_event_header: u32 type, u16 misc, u16 size */
#define SB_RECORD_MMAP2 10
#define SB_RECORD_COMM 3
#define SB_RECORD_EXIT 4
#define SB_RECORD_FORK 7
#define SB_RECORD_LOST 2
#define SB_MISC_COMM_EXEC (1u << 13)
#define SB_MISC_MMAP_BUILD_ID (1u << 14)

int proc_table_set_sideband(struct proc_table *t, bool all)
{
	if (t->open_fn)
		return -EINVAL;
	if (t->n_procs > 0)
		return -EBUSY;
	t->sideband = true;
	t->sideband_all = all;
	return 0;
}

bool proc_table_sideband_on(const struct proc_table *t)
{
	return t->sideband;
}

static bool sb_read_id(const uint8_t *rec, size_t size, size_t body, struct sb_id *ret)
{
	if (size < body + sizeof(*ret))
		return false;
	memcpy(ret, rec + size - sizeof(*ret), sizeof(*ret));
	return true;
}

static void sb_apply_older_half(struct proc_table *t);

int proc_table_sideband_push(struct proc_table *t, const void *rec, size_t size)
{
	const uint8_t *r = rec;
	uint32_t type;
	uint16_t hsize;
	struct sb_id id;
	struct sb_item *it;
	int err;

	if (!t->sideband)
		return 0;
	t->sb.records++;
	if (size < SB_HDR) {
		t->sb.malformed++;
		return 0;
	}
	memcpy(&type, r, 4);
	memcpy(&hsize, r + 6, 2);
	if (hsize != size) {
		t->sb.malformed++;
		return 0;
	}
	if (type != SB_RECORD_MMAP2 && type != SB_RECORD_COMM && type != SB_RECORD_EXIT &&
	    type != SB_RECORD_FORK && type != SB_RECORD_LOST)
		return 0;
	if (!sb_read_id(r, size, SB_HDR, &id)) {
		t->sb.malformed++;
		return 0;
	}
	if (t->sb_n - t->sb_head >= PROC_SIDEBAND_QUEUE_MAX)
		sb_apply_older_half(t);
	err = GROW_ARRAY(t->sb_items, t->sb_cap, t->sb_n + 1, GROW_NO_LIMIT);
	if (err < 0)
		return err;
	err = grow((void **)&t->sb_arena, &t->sb_arena_cap, t->sb_arena_len + size, 1,
		   GROW_NO_LIMIT);
	if (err < 0)
		return err;
	memcpy(t->sb_arena + t->sb_arena_len, r, size);
	it = &t->sb_items[t->sb_n++];
	*it = (struct sb_item){ .time = id.time, .seq = t->sb_seq++, .off = t->sb_arena_len,
				.size = (uint32_t)size };
	t->sb_arena_len += size;
	if (t->sb_n - t->sb_head > 1 && it[-1].time > it->time)
		t->sb_sorted = false;
	return 0;
}

static int cmp_sb_item(const void *a, const void *b)
{
	const struct sb_item *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Unlink and return the newest generation of pid, or NULL. */
static struct proc **proc_slot(struct proc_table *t, pid_t pid)
{
	struct proc **pp = &t->procs[proc_hash(pid)];

	for (; *pp; pp = &(*pp)->hash_next)
		if ((*pp)->pid == pid)
			return pp;
	return NULL;
}

/* The generation of p's pid live at time (p the newest); the oldest when none began by then. */
static struct proc *gen_at(struct proc *p, uint64_t time)
{
	if (time == 0)
		return p;
	for (; p; p = p->older)
		if (p->start_ns <= time || !p->older)
			return p;
	return NULL;
}

/* A new newest generation of pid, live from `start`; the one before it ends then. */
static struct proc *gen_new(struct proc_table *t, pid_t pid, uint64_t start)
{
	struct proc **pp = proc_slot(t, pid), *p;

	if (t->n_procs >= PROC_MAX_PROCS)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	p->start_ns = start;
	p->sideband = true;
	p->dirty = true;
	p->refreshed_ns = mono_ns();
	if (pp) {
		struct proc *old = *pp;

		p->hash_next = old->hash_next;
		old->hash_next = NULL;
		p->older = old;
		if (!old->end_ns) {
			old->end_ns = start ? start : 1;
			old->exited = true;
			t->n_ended++;
		}
		*pp = p;
	} else {
		unsigned h = proc_hash(pid);

		p->hash_next = t->procs[h];
		t->procs[h] = p;
	}
	t->n_procs++;
	return p;
}

static int maps_reserve(struct proc *p, size_t n)
{
	return GROW_ARRAY(p->maps, p->cap_maps, n, PROC_MAX_MAPS);
}

static void maps_put_sorted(struct proc *p, const struct mapping *m)
{
	size_t i;

	for (i = p->n_maps; i > 0 && p->maps[i - 1].start > m->start; i--)
		p->maps[i] = p->maps[i - 1];
	p->maps[i] = *m;
	p->n_maps++;
}

/*
 * Put m (owning its dso reference and name) into p, sorted; what it covers of older mappings
 * is cut away, as the kernel replaced it. Consumes m either way.
 */
static int maps_insert(struct proc *p, struct mapping *m)
{
	struct mapping tail = {};
	bool split = false;
	size_t w = 0;
	/* At most one older mapping is split in two: room for its tail and m. */
	int r = maps_reserve(p, p->n_maps + 2);

	if (r < 0) {
		dso_unref(m->dso);
		free(m->name);
		return r;
	}
	for (size_t i = 0; i < p->n_maps; i++) {
		struct mapping o = p->maps[i];

		if (o.end <= m->start || o.start >= m->end) {
			p->maps[w++] = o;
			continue;
		}
		o.user_tag = 0; /* the session's interned id names the old bounds */
		if (o.start < m->start && o.end > m->end) {
			tail = o;
			tail.pgoff += m->end - o.start;
			tail.start = m->end;
			tail.dso = dso_ref(o.dso);
			tail.name = o.name ? strdup(o.name) : NULL;
			split = true;
			o.end = m->start;
			p->maps[w++] = o;
		} else if (o.start < m->start) {
			o.end = m->start;
			p->maps[w++] = o;
		} else if (o.end > m->end) {
			o.pgoff += m->end - o.start;
			o.start = m->end;
			p->maps[w++] = o;
		} else {
			dso_unref(o.dso);
			free(o.name);
		}
	}
	p->n_maps = w;
	maps_put_sorted(p, m);
	if (split)
		maps_put_sorted(p, &tail);
	p->dirty = true;
	return 0;
}

/* Copy of src's mappings (dso references and names) into the empty generation dst. */
static int maps_copy(struct proc *dst, const struct proc *src)
{
	int r = maps_reserve(dst, src->n_maps);

	if (r < 0)
		return r;
	for (size_t i = 0; i < src->n_maps; i++) {
		struct mapping m = src->maps[i];

		m.dso = dso_ref(m.dso);
		m.name = m.name ? strdup(m.name) : NULL;
		m.user_tag = 0;
		if (src->maps[i].name && !m.name) {
			dso_unref(m.dso);
			return -ENOMEM;
		}
		dst->maps[dst->n_maps++] = m;
	}
	return 0;
}

/*
 * Open the file an MMAP2 record names: the very file through /proc/PID/map_files while the
 * process lives; else by path inside its root; else, for a process gone by now, by path from
 * profd's own root. Kept only if it is the mapped inode (ino, and dev from profd's root), or,
 * with a build-id record, the same build-id.
 */
static int sb_open_file(struct proc_table *t, pid_t pid, uint64_t start, uint64_t end,
			const char *path, bool deleted, uint64_t dev, uint64_t ino, bool by_bid,
			struct sym_root **ret_root)
{
	char mf[96];
	_cleanup_close_ int pfd = -1, rootfd = -1;
	uint64_t got = 0;
	struct stat st;
	int fd;

	snprintf(mf, sizeof(mf), "%s/%d/map_files/%" PRIx64 "-%" PRIx64, t->proc_root, pid, start,
		 end);
	*ret_root = NULL;
	pfd = open(mf, O_PATH | O_CLOEXEC);
	if (pfd >= 0) {
		fd = reopen_regular(pfd, &got);
		if (fd >= 0 && (by_bid || ino == 0 || got == ino)) {
			*ret_root = root_get(t, pid);
			return fd;
		}
		if (fd >= 0)
			close(fd);
	}
	if (deleted)
		return -ENOENT;
	fd = open_in_root(t, pid, NULL, path, &got);
	if (fd >= 0 && (by_bid || got == ino)) {
		*ret_root = root_get(t, pid);
		return fd;
	}
	if (fd >= 0)
		close(fd);
	/*
	 * Gone: the path, named in the process's root, looked up in profd's own, and kept only
	 * when it is the very inode mapped. No root for it: its debug files are looked up in
	 * the debug directories only, never next to it.
	 */
	rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	fd = proc_open_in_root(rootfd, path, 0, &got);
	if (fd < 0)
		return fd;
	if (!by_bid && (fstat(fd, &st) < 0 || got != ino || (uint64_t)st.st_dev != dev)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* The dso of a file an MMAP2 record names (a new reference), or NULL. */
static struct dso *sb_dso(struct proc_table *t, pid_t pid, uint64_t start, uint64_t end,
			  const char *path, bool deleted, bool by_bid, uint64_t dev, uint64_t ino,
			  const uint8_t *bid, size_t bid_len)
{
	struct sym_root *root = NULL;
	struct dso *d;
	unsigned h;
	int fd;

	if (by_bid) {
		/* No build-id read (the kernel could not, or the file has none): nothing to key or
		 * check by, so only the very file mapped will do. */
		if (bid_len == 0) {
			deleted = true;
			by_bid = false;
			ino = 0;
			goto open;
		}
	}
	if (by_bid) {
		for (d = t->dsos_bid[bid_hash(bid, bid_len)]; d; d = d->bid_next)
			if (d->build_id_len == bid_len && !memcmp(d->build_id, bid, bid_len))
				return dso_ref(d);
	} else {
		for (d = t->dsos[dso_hash(dev, ino)]; d; d = d->hash_next)
			if (d->dev == dev && d->ino == ino)
				return dso_ref(d);
	}
open:
	if (t->n_dsos >= PROC_MAX_DSOS) {
		dso_cache_gc(t);
		if (t->n_dsos >= PROC_MAX_DSOS)
			return NULL;
	}
	fd = sb_open_file(t, pid, start, end, path, deleted, dev, ino, by_bid, &root);
	if (fd < 0)
		log_debug_errno(fd, "pid %d: %s%s not opened: %m", pid, path,
				deleted ? " (deleted)" : "");
	if (by_bid && fd >= 0) {
		struct stat st;

		if (fstat(fd, &st) == 0) {
			dev = st.st_dev;
			ino = st.st_ino;
		}
	}
	if (dso_new(path, fd, root, dev, ino, &d) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (by_bid && (d->build_id_len != bid_len || memcmp(d->build_id, bid, bid_len))) {
		/* Not the file that is mapped (replaced since): keep only what the record says. */
		if (d->fd >= 0)
			close(d->fd);
		d->fd = -1;
		d->is_elf = false;
		d->build_id_len = MIN(bid_len, sizeof(d->build_id));
		memcpy(d->build_id, bid, d->build_id_len);
		build_id_to_hex(d->build_id, d->build_id_len, d->build_id_hex,
				sizeof(d->build_id_hex));
	}
	if (d->fd < 0)
		t->sb.unopened++;
	h = dso_hash(d->dev, d->ino);
	d->hash_next = t->dsos[h];
	t->dsos[h] = d;
	t->n_dsos++;
	dso_bid_insert(t, d);
	return dso_ref(d);
}

/* The generation of pid live at time, read from /proc when the table does not know pid. */
static struct proc *sb_proc_at(struct proc_table *t, pid_t pid, uint64_t time, bool load)
{
	struct proc **pp = proc_slot(t, pid), *p;

	if (pp)
		return gen_at(*pp, time);
	if (!load || !t->sideband_all || proc_table_get(t, pid, &p) < 0)
		return NULL;
	return p;
}

static void sb_mmap2(struct proc_table *t, const uint8_t *r, size_t size, uint16_t misc,
		     const struct sb_id *id)
{
	struct {
		uint32_t pid, tid;
		uint64_t addr, len, pgoff;
		union {
			struct {
				uint32_t maj, min;
				uint64_t ino, ino_generation;
			};
			struct {
				uint8_t build_id_size, res1;
				uint16_t res2;
				uint8_t build_id[20];
			};
		};
		uint32_t prot, flags;
	} b;
	char path[PATH_MAX];
	const char *name = (const char *)r + SB_HDR + sizeof(b);
	size_t name_max = size - SB_HDR - sizeof(b) - sizeof(struct sb_id), len;
	bool by_bid = misc & SB_MISC_MMAP_BUILD_ID, deleted = false;
	struct mapping m = {};
	struct proc *p;

	if (size < SB_HDR + sizeof(b) + sizeof(struct sb_id)) {
		t->sb.malformed++;
		return;
	}
	memcpy(&b, r + SB_HDR, sizeof(b));
	len = strnlen(name, name_max);
	if (len == name_max || len >= sizeof(path) || b.len == 0 || b.addr + b.len < b.addr ||
	    (by_bid && b.build_id_size > sizeof(b.build_id))) {
		t->sb.malformed++;
		return;
	}
	if (!(b.prot & PROT_EXEC))
		return;
	memcpy(path, name, len + 1);
	p = sb_proc_at(t, (pid_t)b.pid, id->time, true);
	if (!p)
		return;
	/* A process read from /proc after this mapping was made has it already. */
	if (!p->sideband && p->refreshed_ns >= id->time)
		return;
	if (len > 10 && !strcmp(path + len - 10, " (deleted)")) {
		deleted = true;
		path[len - 10] = '\0';
	}
	m = (struct mapping){ .start = b.addr, .end = b.addr + b.len, .pgoff = b.pgoff,
			      .prot = b.prot & (PROT_READ | PROT_WRITE | PROT_EXEC),
			      .deleted = deleted };
	if (path[0] == '/' && strncmp(path, "//anon", 6) != 0) {
		m.kind = MAPPING_FILE;
		m.dso = sb_dso(t, (pid_t)b.pid, m.start, m.end, path, deleted, by_bid,
			       by_bid ? 0 : makedev(b.maj, b.min), by_bid ? 0 : b.ino,
			       b.build_id, by_bid ? b.build_id_size : 0);
		if (p->from_exec) {
			/* The kernel maps the executable first, then its interpreter. */
			m.is_exe = true;
			p->from_exec = false;
		}
	} else if (!strcmp(path, "[vdso]")) {
		m.kind = MAPPING_VDSO;
		m.dso = vdso_get(t);
	} else if (!strcmp(path, "[vsyscall]")) {
		m.kind = MAPPING_VSYSCALL;
	} else if (path[0] == '[') {
		m.kind = MAPPING_SPECIAL;
	} else {
		m.kind = MAPPING_ANON;
	}
	if (m.kind != MAPPING_ANON) {
		m.name = strdup(path);
		if (!m.name) {
			dso_unref(m.dso);
			return;
		}
	}
	if (maps_insert(p, &m) != 0)
		return;
	t->sb.mmaps++;
	/* A live process's new binary: what was learnt from its mappings is looked at again. */
	if (t->map_hook && m.kind == MAPPING_FILE && !p->end_ns) {
		p->n_refresh++;
		t->map_hook(t->map_hook_userdata, p, path);
	}
}

static void sb_fork(struct proc_table *t, const uint8_t *r, size_t size, uint16_t misc,
		    const struct sb_id *id)
{
	struct { uint32_t pid, ppid, tid, ptid; uint64_t time; } b;
	struct proc *parent, *child;

	(void)misc;
	if (size < SB_HDR + sizeof(b) + sizeof(*id)) {
		t->sb.malformed++;
		return;
	}
	memcpy(&b, r + SB_HDR, sizeof(b));
	if (b.pid == b.ppid)
		return; /* a new thread */
	parent = sb_proc_at(t, (pid_t)b.ppid, id->time, true);
	if (!parent)
		return;
	t->sb.forks++;
	child = gen_new(t, (pid_t)b.pid, id->time);
	if (!child)
		return;
	(void)maps_copy(child, parent);
}

static void sb_comm(struct proc_table *t, const uint8_t *r, size_t size, uint16_t misc,
		    const struct sb_id *id)
{
	uint32_t pid;
	struct proc *p;

	if (!(misc & SB_MISC_COMM_EXEC))
		return; /* a thread renamed itself */
	if (size < SB_HDR + 8 + sizeof(*id)) {
		t->sb.malformed++;
		return;
	}
	memcpy(&pid, r + SB_HDR, sizeof(pid));
	if (!proc_slot(t, (pid_t)pid) && !t->sideband_all)
		return;
	t->sb.execs++;
	p = gen_new(t, (pid_t)pid, id->time);
	if (p)
		p->from_exec = true;
}

static void sb_exit(struct proc_table *t, const uint8_t *r, size_t size, uint16_t misc,
		    const struct sb_id *id)
{
	struct { uint32_t pid, ppid, tid, ptid; uint64_t time; } b;
	struct proc **pp;

	(void)misc;
	if (size < SB_HDR + sizeof(b) + sizeof(*id)) {
		t->sb.malformed++;
		return;
	}
	memcpy(&b, r + SB_HDR, sizeof(b));
	/* The process ends with its leader (threads that outlive it are rare and still resolve
	 * against its last generation until it is freed). */
	if (b.pid != b.tid || !(pp = proc_slot(t, (pid_t)b.pid)))
		return;
	t->sb.exits++;
	if (!(*pp)->end_ns) {
		(*pp)->end_ns = id->time ? id->time : 1;
		(*pp)->exited = true;
		t->n_ended++;
	}
}

static void sb_apply(struct proc_table *t, const struct sb_item *it)
{
	const uint8_t *r = t->sb_arena + it->off;
	uint32_t type;
	uint16_t misc;
	struct sb_id id;

	memcpy(&type, r, 4);
	memcpy(&misc, r + 4, 2);
	sb_read_id(r, it->size, SB_HDR, &id);
	switch (type) {
	case SB_RECORD_MMAP2:
		sb_mmap2(t, r, it->size, misc, &id);
		break;
	case SB_RECORD_FORK:
		sb_fork(t, r, it->size, misc, &id);
		break;
	case SB_RECORD_COMM:
		sb_comm(t, r, it->size, misc, &id);
		break;
	case SB_RECORD_EXIT:
		sb_exit(t, r, it->size, misc, &id);
		break;
	case SB_RECORD_LOST: {
		uint64_t lost[2];

		if (it->size < SB_HDR + sizeof(lost) + sizeof(id)) {
			t->sb.malformed++;
			break;
		}
		memcpy(lost, r + SB_HDR, sizeof(lost));
		t->sb.lost += lost[1];
		t->resync_due = true;
		break;
	}
	}
}

/* After lost records: every live process's mappings as /proc has them now. */
static void sb_resync(struct proc_table *t)
{
	t->resync_due = false;
	t->sb.resyncs++;
	for (size_t i = 0; i < PROC_HASH_SIZE; i++)
		for (struct proc *p = t->procs[i]; p; p = p->hash_next)
			if (!p->end_ns && proc_load_maps(t, p) == 0)
				p->sideband = false;
}

/* Apply the queued records up to `until` (all of them for UINT64_MAX). */
static void sb_apply_until(struct proc_table *t, uint64_t until)
{
	if (t->sb_head == t->sb_n)
		return;
	if (!t->sb_sorted) {
		qsort(t->sb_items + t->sb_head, t->sb_n - t->sb_head, sizeof(*t->sb_items),
		      cmp_sb_item);
		t->sb_sorted = true;
	}
	while (t->sb_head < t->sb_n && t->sb_items[t->sb_head].time <= until)
		sb_apply(t, &t->sb_items[t->sb_head++]);
	if (t->resync_due)
		sb_resync(t);
	if (t->sb_head == t->sb_n) {
		t->sb_head = t->sb_n = 0;
		t->sb_arena_len = 0;
	} else if (t->sb_head > 4096 && t->sb_head * 2 > t->sb_n) {
		/* Keep the arena from growing: move what is left to the front. */
		size_t base = t->sb_items[t->sb_head].off, end = t->sb_arena_len;

		for (size_t i = t->sb_head; i < t->sb_n; i++)
			base = MIN(base, t->sb_items[i].off);
		memmove(t->sb_arena, t->sb_arena + base, end - base);
		t->sb_arena_len = end - base;
		memmove(t->sb_items, t->sb_items + t->sb_head,
			(t->sb_n - t->sb_head) * sizeof(*t->sb_items));
		t->sb_n -= t->sb_head;
		t->sb_head = 0;
		for (size_t i = 0; i < t->sb_n; i++)
			t->sb_items[i].off -= base;
	}
}

/* Free the generations that ended before `before`: no sample can need them any more. */
static void sb_expire(struct proc_table *t, uint64_t before)
{
	bool freed = false;

	if (t->n_ended == 0)
		return;
	for (size_t i = 0; i < PROC_HASH_SIZE; i++) {
		struct proc **pp = &t->procs[i];

		while (*pp) {
			struct proc *p = *pp, **op;

			if (p->end_ns && p->end_ns < before) {
				/* The newest ended: so did every older one. */
				*pp = p->hash_next;
				for (struct proc *g = p; g; g = g->older) {
					t->n_procs--;
					t->n_ended--;
				}
				proc_free_chain(p);
				freed = true;
				continue;
			}
			for (op = &p->older; *op; op = &(*op)->older)
				if ((*op)->end_ns < before) {
					for (struct proc *g = *op; g; g = g->older) {
						t->n_procs--;
						t->n_ended--;
					}
					proc_free_chain(*op);
					*op = NULL;
					freed = true;
					break;
				}
			pp = &p->hash_next;
		}
	}
	if (freed)
		dso_cache_gc(t);
}

/* The queue is full (the reader fell far behind the stream): apply its older half now. */
static void sb_apply_older_half(struct proc_table *t)
{
	size_t n = t->sb_n - t->sb_head;

	if (n == 0)
		return;
	if (!t->sb_sorted) {
		qsort(t->sb_items + t->sb_head, n, sizeof(*t->sb_items), cmp_sb_item);
		t->sb_sorted = true;
	}
	sb_apply_until(t, t->sb_items[t->sb_head + n / 2].time);
}

void proc_table_sideband_tick(struct proc_table *t, uint64_t handled_ns)
{
	/* 0: no sample handled yet (before the capture's first poll): nothing is due. */
	if (!t->sideband || handled_ns == 0)
		return;
	sb_apply_until(t, handled_ns);
	if (handled_ns > PROC_SIDEBAND_GRACE_NS)
		sb_expire(t, handled_ns - PROC_SIDEBAND_GRACE_NS);
}

void proc_table_sideband_flush(struct proc_table *t)
{
	if (t->sideband)
		sb_apply_until(t, UINT64_MAX);
}

int proc_table_get_at(struct proc_table *t, pid_t pid, uint64_t time_ns, struct proc **ret)
{
	struct proc **pp, *p;

	proc_table_set_sample_time(t, time_ns);
	if (!t->sideband)
		return proc_table_get(t, pid, ret);
	sb_apply_until(t, time_ns ? time_ns : UINT64_MAX);
	pp = proc_slot(t, pid);
	if (!pp)
		return proc_table_get(t, pid, ret);
	p = gen_at(*pp, time_ns);
	if (p->dirty) {
		/* New mappings: what was learnt from the old ones (an interpreter) is looked at again. */
		p->n_refresh++;
		if (t->observer)
			t->observer(t->observer_userdata, p);
		p->dirty = false;
	}
	*ret = p;
	return 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

int proc_table_snapshot(struct proc_table *t)
{
	_cleanup_(closedirp) DIR *d = opendir(t->proc_root);
	struct dirent *de;
	pid_t self = getpid();

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct proc *p;
		long v;

		if (!all_digits(de->d_name))
			continue;
		v = strtol(de->d_name, NULL, 10);
		if (v <= 0 || v > INT_MAX || v == self)
			continue;
		if (proc_table_get(t, (pid_t)v, &p) == -E2BIG)
			return -E2BIG;
	}
	return 0;
}

void proc_table_sideband_stats(const struct proc_table *t, struct proc_sideband_stats *ret)
{
	*ret = t->sb;
	ret->generations = t->n_procs;
}

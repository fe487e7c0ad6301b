/* SPDX-License-Identifier: MIT */
/*
 * Process table: pid → mappings (from /proc/PID/maps), and the cache of binaries ("dsos")
 * those mappings point at, shared by every process that maps the same file.
 *
 * Files are opened once, when a process's maps are first read, through
 * /proc/PID/map_files/START-END (the exact file mapped, even if deleted or replaced since)
 * or else, for files not deleted, through /proc/PID/root with RESOLVE_IN_ROOT (containers;
 * symlinks inside the container cannot lead outside its root; see proc_open_in_root()), and
 * kept only if the inode is the one the maps line names. Only regular files up to
 * PROC_MAX_FILE_SIZE are ever opened for reading. The open fd is kept with the dso, so
 * binaries can still be read after the process exits, when the profile is written.
 *
 * Limits (documented, enforced): PROC_MAX_PROCS processes, PROC_MAX_MAPS mappings per process,
 * PROC_MAX_DSOS cached binaries (-E2BIG / entries skipped beyond them).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "symbolize/symbolize.h"

#define PROC_MAX_PROCS 65536
#define PROC_MAX_MAPS 65536
#define PROC_MAX_DSOS 8192
#define PROC_MAPS_LINE_MAX 8192
#define PROC_MAX_FILE_SIZE (4ull << 30) /* = SYM_MAX_FILE_SIZE: larger binaries are not opened */

enum mapping_kind {
	MAPPING_ANON = 0, /* no file: heap, anonymous, JIT */
	MAPPING_FILE,
	MAPPING_VDSO,
	MAPPING_VSYSCALL,
	MAPPING_SPECIAL, /* [stack], [heap], [vvar], ... */
};

/* One binary. Reference-counted: mappings and profile aggregates hold references. */
struct dso {
	unsigned refs;
	uint64_t dev, ino;
	char *path;        /* name in the target's mount namespace */
	int fd;            /* read-only fd on the file (or a memfd copy of the vdso), -1 if none */
	/*
	 * fstat() of fd (all zero when fd < 0): the file actually opened, which the symbol and
	 * unwind caches key it by (with its build-id), so a file with another's build-id never
	 * serves the processes that map the other. dev/ino above are the maps line's.
	 */
	struct sym_file_id file_id;
	uint16_t e_machine;
	bool is_elf;
	size_t build_id_len;
	uint8_t build_id[64];
	char build_id_hex[129]; /* "" when none */
	/* Cache linkage (owned by the proc table). */
	struct dso *hash_next;
};

struct dso *dso_ref(struct dso *d);
void dso_unref(struct dso *d);

struct mapping {
	uint64_t start, end, pgoff;
	uint32_t prot; /* PROT_READ | PROT_WRITE | PROT_EXEC */
	enum mapping_kind kind;
	struct dso *dso; /* reference, NULL for anonymous/special */
	char *name;      /* path or [vdso] etc.; NULL for anonymous */
	bool deleted;
	bool is_exe; /* the process's main executable (/proc/PID/exe) */
	/* Free for the user of the table: the session caches the interned mapping id here. */
	uint64_t user_tag;
};

struct proc {
	pid_t pid;
	struct mapping *maps; /* sorted by start */
	size_t n_maps;
	bool exited;
	uint64_t refreshed_ns; /* CLOCK_MONOTONIC of the last maps read */
	unsigned n_refresh;
	struct proc *hash_next;
};

/* One parsed line of /proc/PID/maps. `path` points into the line buffer. */
struct maps_entry {
	uint64_t start, end, pgoff, ino;
	unsigned dev_major, dev_minor;
	uint32_t prot;
	bool shared;
	const char *path; /* NULL for anonymous mappings */
	bool deleted;     /* path ended with " (deleted)" (stripped from path) */
};

/* Parse one line (modified in place: path is NUL-terminated). 0, or -EINVAL for junk. */
int proc_maps_parse_line(char *line, struct maps_entry *ret);

/*
 * Open `path` (as /proc/PID/maps names it) below the directory `rootfd` as if rootfd were "/"
 * (a process's /proc/PID/root), for reading. Symlinks, absolute or made of "..", resolve inside
 * the root (openat2 RESOLVE_IN_ROOT); magic links (/proc/N/root, /proc/N/fd/M) are refused.
 * Where openat2 is unavailable (ENOSYS: Linux < 5.6, or a seccomp filter), the path is walked
 * one component at a time and any symlink (-ELOOP) or ".." (-EXDEV) on it is refused, never
 * followed. Only a regular file is opened for reading, so a FIFO cannot block and a device is
 * never opened: -EISDIR (directory), -EINVAL (FIFO, socket, device), -EFBIG (larger than
 * PROC_MAX_FILE_SIZE), -ELOOP (symlink loop or refused symlink), or the -errno of the
 * lookup. flags: PROC_OPEN_NO_OPENAT2 takes the fallback path even when openat2 exists
 * (tests). Returns a read-only O_CLOEXEC fd and its inode number in *ret_ino (may be NULL).
 */
#define PROC_OPEN_NO_OPENAT2 (1u << 0)
int proc_open_in_root(int rootfd, const char *path, unsigned flags, uint64_t *ret_ino);

struct proc_table;

/* `root_prefix` is "/proc" normally; tests may point it elsewhere. */
int proc_table_new(const char *proc_root, struct proc_table **ret);
void proc_table_free(struct proc_table *t);

/* Find or load a process. -ESRCH when it does not exist (any more). */
int proc_table_get(struct proc_table *t, pid_t pid, struct proc **ret);

/*
 * The mapping holding addr, or NULL. On a miss, re-reads the maps once (at most every
 * PROC_REFRESH_MIN_NS per process) so newly dlopen()ed code is found.
 */
#define PROC_REFRESH_MIN_NS (50ull * 1000 * 1000)
const struct mapping *proc_find_mapping(struct proc_table *t, struct proc *p, uint64_t addr);

/*
 * The CLOCK_MONOTONIC time of the sample about to be unwound (0: unknown). A miss in maps read
 * before that time re-reads them even within PROC_REFRESH_MIN_NS.
 */
void proc_table_set_sample_time(struct proc_table *t, uint64_t sample_ns);

/* exec: the old mappings are gone; the next lookup re-reads them. */
void proc_table_exec(struct proc_table *t, pid_t pid);
/* exit: forget the process (dsos stay alive while referenced elsewhere). */
void proc_table_remove(struct proc_table *t, pid_t pid);

/*
 * Observer: called after every successful read of a process's mappings from /proc (first
 * sight, exec, refresh after a lookup miss), e.g. to save them in a raw capture. The process
 * and its mappings are valid during the call only. fn NULL removes it.
 */
typedef void (*proc_maps_observer_t)(void *userdata, const struct proc *p);
void proc_table_set_observer(struct proc_table *t, proc_maps_observer_t fn, void *userdata);

/* ---- processes known from a recording instead of /proc ------------------------------------ */

/* One mapping as recorded (raw capture, perf.data); nothing here is kept past the call. */
struct proc_static_map {
	uint64_t start, end, pgoff;
	uint32_t prot;
	uint64_t dev, ino;        /* the file's identity where it was recorded; 0, 0: unknown */
	const char *path;         /* NULL: anonymous; "[vdso]", "[stack]", ...: special */
	const uint8_t *build_id;  /* recorded GNU build-id, NULL/0: unknown */
	size_t build_id_len;
	uint16_t e_machine;       /* recorded EM_*, 0: unknown */
	bool is_exe, deleted;
};

/*
 * Open the file of a recorded mapping (e.g. under a sysroot, checked against the build-id):
 * return a read-only fd, which the table then owns, or -errno. Called only for paths starting
 * with '/', once per file (see proc_table_add_static()).
 */
typedef int (*proc_open_t)(void *userdata, const struct proc_static_map *m);

/*
 * Switch an empty table to static mode: /proc is never read. A process exists once
 * proc_table_add_static() added it (proc_table_get() of any other pid is -ESRCH), a lookup miss
 * does not refresh, and exec empties its mappings until they are added again. -EBUSY when the
 * table already holds processes, -EINVAL for a NULL open_fn.
 */
int proc_table_set_static(struct proc_table *t, proc_open_t open_fn, void *userdata);

/*
 * Create pid, or replace all its mappings, from `maps` (at most PROC_MAX_MAPS, any order). As
 * with /proc, only executable mappings are kept; of overlapping ones the first by address wins.
 * Files are shared like /proc-read binaries: one dso per (dev, ino, path), opened through
 * open_fn on first use. A mapping whose file cannot be opened keeps its recorded build-id and
 * e_machine (pprof mappings still carry them). [vdso] uses this machine's vdso when the
 * recorded build-id matches it or none was recorded. -EINVAL (not static), -E2BIG, -ENOMEM.
 */
int proc_table_add_static(struct proc_table *t, pid_t pid, const struct proc_static_map *maps,
			  size_t n);

size_t proc_table_n_procs(const struct proc_table *t);
size_t proc_table_n_dsos(const struct proc_table *t);

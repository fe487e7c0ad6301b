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
 * Each dso also keeps the root its path is named in (struct sym_root, symbolize.h), for the
 * symbolizer's debug-file search next to the binary: one O_PATH fd per distinct root (a
 * process's /proc/PID/root, told apart by mount namespace, mount id and directory), shared by
 * reference by every dso from it; a root no dso or sym_elf references any more is closed when
 * dsos are collected. Static tables (recordings) use the root given to
 * proc_table_set_static_root(), or none.
 *
 * With the kernel's side-band stream (proc_table_set_sideband()), a process is a chain of
 * generations, one per (pid, exec): FORK starts one with a copy of its parent's mappings, an
 * exec (COMM with the exec flag) starts the next, MMAP2 adds mappings, EXIT ends the last; a
 * sample resolves against the generation live at its timestamp (proc_table_get_at()), and an
 * ended generation is freed only once every sample before its end was handled
 * (proc_table_sideband_tick()). A binary named by MMAP2 is opened when the record is applied,
 * so a process that exits right after still unwinds and symbolizes: through map_files or the
 * process's root while it lives, else by path from profd's own root, kept only when it is the
 * mapped file (same device and inode; the side-band asks for no build-id records, see
 * capture.c sb_open()).
 *
 * Limits (documented, enforced): PROC_MAX_PROCS processes (generations, with the side-band),
 * PROC_MAX_MAPS mappings per process, PROC_MAX_DSOS cached binaries (-E2BIG / entries skipped
 * beyond them), PROC_SIDEBAND_QUEUE_MAX side-band records waiting for their time,
 * PROC_MAX_ROOTS distinct roots (binaries of processes in further roots get none: no debug
 * file next to them is searched).
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
#define PROC_MAX_ROOTS 1024
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
	struct sym_root *root; /* the root `path` is named in (reference), NULL: unknown */
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
	/* Cache linkage (owned by the proc table): by (dev, ino), and by build-id. */
	struct dso *hash_next;
	struct dso *bid_next;
	bool in_bid_hash;
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

/* One process, or with the side-band stream one generation of it (pid, exec). */
struct proc {
	pid_t pid;
	struct mapping *maps; /* sorted by start, never overlapping */
	size_t n_maps;
	bool exited; /* ended (exit, or exec for an older generation): never re-read */
	uint64_t refreshed_ns; /* CLOCK_MONOTONIC of the last maps read */
	unsigned n_refresh;
	/* Side-band generations (CLOCK_MONOTONIC): live over [start_ns, end_ns). start_ns 0: since
	 * before the table knew it (read from /proc); end_ns 0: not ended. */
	uint64_t start_ns, end_ns;
	bool sideband;   /* mappings built from the side-band stream, not read from /proc */
	bool from_exec;  /* started by an exec: its first file mapping is the executable */
	bool dirty;      /* mappings changed since the observer last saw them */
	size_t cap_maps;
	struct proc *older; /* the previous generation of the same pid, or NULL */
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
 * (a process's /proc/PID/root), for reading: safe_open_in_root() (common/safeopen.h, where the
 * rules are) with the cap PROC_MAX_FILE_SIZE. flags: PROC_OPEN_NO_OPENAT2 takes the
 * component walk even when openat2 exists (tests). Returns a read-only O_CLOEXEC fd and its
 * inode number in *ret_ino (may be NULL), or safe_open_in_root()'s -errno.
 */
#define PROC_OPEN_NO_OPENAT2 (1u << 0)
int proc_open_in_root(int rootfd, const char *path, unsigned flags, uint64_t *ret_ino);

struct proc_table;

/* `proc_root` is "/proc" normally; tests may point it elsewhere. */
int proc_table_new(const char *proc_root, struct proc_table **ret);
void proc_table_free(struct proc_table *t);

/*
 * Container ids (pipeline/cgroup.h): once enabled, proc_table_container() reads a process's
 * PROC_ROOT/PID/cgroup at its first call for the pid and remembers what it found until the
 * pid's exec (proc_table_exec()) or exit (proc_table_remove()), with or without the side-band.
 * 0 or -ENOMEM.
 */
struct cgroup_pid;
int proc_table_enable_container_ids(struct proc_table *t);
/* The container entry of pid; NULL when container ids are off, for pid 0, or without memory. */
struct cgroup_pid *proc_table_container(struct proc_table *t, uint32_t pid);

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

/*
 * The generation of pid live at time_ns (CLOCK_MONOTONIC; 0: the newest), after applying every
 * queued side-band record up to time_ns. Without the side-band, or for a pid the table does not
 * know, the same as proc_table_set_sample_time() + proc_table_get().
 */
int proc_table_get_at(struct proc_table *t, pid_t pid, uint64_t time_ns, struct proc **ret);

/*
 * exec: the old mappings are gone; the next lookup re-reads them. No-op with the side-band,
 * except that the pid's container id is read again.
 */
void proc_table_exec(struct proc_table *t, pid_t pid);
/*
 * exit: forget the process (dsos stay alive while referenced elsewhere) and its container id.
 * Its mappings stay with the side-band, whose EXIT record ends the process's last generation
 * instead.
 */
void proc_table_remove(struct proc_table *t, pid_t pid);

/* ---- the kernel's side-band stream ---------------------------------------------------------- */

/*
 * Take the process table's changes from the kernel's side-band records (perf_event_open with
 * mmap2, comm, comm_exec, task and sample_id_all of PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
 * PERF_SAMPLE_CPU, clock CLOCK_MONOTONIC; with or without build_id) instead of re-reading /proc
 * at exec, exit and lookup misses. all: every process on the host (a FORK of a process the
 * table does not know yet reads the parent from /proc); otherwise only processes in the table
 * and what they fork. Call on an empty table, before anything of the stream is pushed.
 */
int proc_table_set_sideband(struct proc_table *t, bool all);
bool proc_table_sideband_on(const struct proc_table *t);

/*
 * Queue one side-band record (struct perf_event_header first, `size` bytes; copied). Records
 * are applied in time order when a lookup needs them (proc_table_get_at()) or when their time
 * has passed (proc_table_sideband_tick()). Malformed records are counted and dropped; records
 * of types the table has no use for are ignored. PERF_RECORD_LOST is counted and followed by
 * a resync: every live process is read again from /proc. 0 or -ENOMEM.
 */
#define PROC_SIDEBAND_QUEUE_MAX 65536
int proc_table_sideband_push(struct proc_table *t, const void *rec, size_t size);

/*
 * Every sample taken before `handled_ns` (CLOCK_MONOTONIC) has been handled: apply the records
 * up to then, and free generations that ended more than PROC_SIDEBAND_GRACE_NS before it.
 * handled_ns 0 (no sample handled yet) does nothing.
 */
#define PROC_SIDEBAND_GRACE_NS (250ull * 1000 * 1000)
void proc_table_sideband_tick(struct proc_table *t, uint64_t handled_ns);
/* Apply every queued record (the end of a recording). */
void proc_table_sideband_flush(struct proc_table *t);

/*
 * Hook: called when a side-band MMAP2 record, as it is applied, added an executable file
 * mapping to a live process's newest generation (an exec's binaries, a dlopen()), `path` as
 * the record names it; e.g. to detect an interpreter before the process's first sample is
 * handled. p->n_refresh was bumped (what was learnt of the older mappings is stale). The
 * generation stays valid until proc_table_sideband_tick() frees it; the hook must not call
 * back into the side-band functions. fn NULL removes it.
 */
typedef void (*proc_sideband_map_hook_t)(void *userdata, struct proc *p, const char *path);
void proc_table_set_sideband_map_hook(struct proc_table *t, proc_sideband_map_hook_t fn,
				      void *userdata);

/* Read every process in /proc now (the snapshot of what runs when the side-band starts). */
int proc_table_snapshot(struct proc_table *t);

struct proc_sideband_stats {
	uint64_t records;   /* side-band records pushed */
	uint64_t mmaps;     /* executable mappings added */
	uint64_t forks, execs, exits;
	uint64_t lost;      /* records the kernel could not write (PERF_RECORD_LOST) */
	uint64_t resyncs;   /* /proc re-reads of every live process after a loss */
	uint64_t malformed; /* records too short or inconsistent: dropped */
	uint64_t unopened;  /* mapped files that could not be opened (kept without a file) */
	uint64_t generations; /* generations in the table now */
};
void proc_table_sideband_stats(const struct proc_table *t, struct proc_sideband_stats *ret);

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
 * The root the recorded paths of a static table are named in, given to every dso opened after
 * this call (the table takes a reference; NULL: unknown, the default). E.g. the --sysroot the
 * user named; never a directory the recording chose.
 */
struct sym_root;
void proc_table_set_static_root(struct proc_table *t, struct sym_root *root);

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

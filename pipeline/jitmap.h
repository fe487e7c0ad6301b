/* SPDX-License-Identifier: MIT */
/*
 * JIT perf maps of live processes: which file is opened, when it is trusted, and the copies
 * kept for profiles.
 *
 * A process's perf map is /tmp/perf-NSPID.map inside its own root (NSPID: its pid in its own
 * pid namespace). A JIT writes it; profd runs as root and serves the names it holds to whoever
 * may see the process's samples, so the file is trusted only as far as its owner is:
 *   - it is opened below /proc/PID/root with proc_open_in_root() (openat2 RESOLVE_IN_ROOT |
 *     RESOLVE_NO_MAGICLINKS, O_PATH first: only a regular file is ever opened for reading, never
 *     a FIFO, socket or device), the directory /tmp first and the map inside it;
 *   - it must be a regular file with one link (not a hard link to someone else's file), on the
 *     mount of that /tmp (a file bind-mounted over the map is refused; where the kernel cannot
 *     tell mount ids, before Linux 5.8, the owner rule below still holds);
 *   - its owner must be the process's uid, read from /proc/PID/status at the same time, where
 *     the real, effective, saved and fs uids are all that one uid (the rule that makes a sample
 *     visible to that uid, profd_sample.uid). A process whose uids differ (set-uid) gets no
 *     names from a perf map; root's maps serve root's processes only.
 * Such a map is read only while its process lives: a struct jitmap is a copy of its bytes (in a
 * memfd), taken when a sample of the process first lands in anonymous executable memory, and
 * kept (reference-counted) by the aggregates whose samples it names; it is parsed when a profile
 * first needs it (jitmap_perfmap()), not on the sampling path, where a large map would stall
 * the reading of samples. Nothing is read once the process is gone, so a pid reused by another
 * process lends nothing to the old one's samples (and an aggregate takes a copy only for
 * samples whose uid is its owner, or samples only privileged callers see).
 *
 * Limits: one copy per process, looked at again at most every JITMAP_REFRESH_MIN_NS (when a
 * sample lands in anonymous executable memory) and copied again only when the file changed
 * (size, mtime, inode, owner); at most JITMAPS_MAX_PROCS
 * processes (when full, one without a map is forgotten to make room) and JITMAPS_MAX_HELD_BYTES
 * of map text held by the table at once; per aggregate
 * generation (a profile: all of `profd record`, one daemon interval) at most
 * PROFILE_MAX_PERFMAP_BYTES copied and PROFILE_PERFMAP_BUDGET_NS spent copying (profile.h);
 * PERFMAP_MAX_FILE_BYTES per map (symbolize.h). Past a limit, frames keep "[anon] 0x..." names.
 *
 * Not thread-safe: the session's thread owns the table and the copies' reference counts.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Per profile (one aggregate and the copies it keeps): at most PROFILE_MAX_PERFMAPS perf maps,
 * PROFILE_MAX_PERFMAP_BYTES of map text copied, PROFILE_PERFMAP_BUDGET_NS spent copying them
 * while sampling (and again parsing them when the profile is written: output/profile.h).
 */
#define PROFILE_MAX_PERFMAPS 64
#define PROFILE_MAX_PERFMAP_BYTES (256ull << 20)
#define PROFILE_PERFMAP_BUDGET_NS (1000ull * 1000 * 1000)

#define JITMAP_REFRESH_MIN_NS (500ull * 1000 * 1000)
#define JITMAPS_MAX_PROCS 256
#define JITMAPS_MAX_HELD_BYTES (256ull << 20)

struct perfmap;

/* A parsed perf map of one process, as it was when it was read. */
struct jitmap {
	unsigned refs;
	uint32_t owner;	    /* the file's owner = the process's uid */
	uint64_t bytes;	    /* bytes of the file copied (at most PERFMAP_MAX_FILE_BYTES + 1) */
	int fd;		    /* the copy (memfd) until it is parsed, then -1 */
	bool parsed;
	struct perfmap *pm; /* owned; NULL until parsed, or when it did not parse */
};

struct jitmap *jitmap_ref(struct jitmap *m);
void jitmap_unref(struct jitmap *m); /* NULL-safe */
/* The parsed map (parsed on the first call, the copy then dropped); NULL when it has none. */
const struct perfmap *jitmap_perfmap(struct jitmap *m);

/*
 * Open the perf map of the live process `pid` (under `proc_root`, "/proc" normally) by the rules
 * above, for reading: a read-only fd, its owner's uid in *ret_uid. -ENOENT (none, or the process
 * is gone), -EPERM (owner, links, mount or the process's uids refused), -EINVAL (not a regular
 * file), -EFBIG (larger than PROC_MAX_FILE_SIZE), or another -errno of the lookup.
 */
int jitmap_open_live(const char *proc_root, pid_t pid, uint32_t *ret_uid);

struct jitmaps_stats {
	uint64_t loads;	      /* copies made */
	uint64_t refused;     /* maps found but refused (owner, links, mount, type) */
	uint64_t failed;      /* maps that did not parse */
	uint64_t over_budget; /* loads not tried: a limit above */
	uint64_t bytes;	      /* read in all */
	uint64_t load_ns;     /* time spent loading, in all */
};

struct jitmaps;

int jitmaps_new(const char *proc_root, struct jitmaps **ret);
void jitmaps_free(struct jitmaps *t); /* NULL-safe */

/*
 * A sample of `pid` has a frame at `addr` in anonymous executable memory: its current copy
 * (borrowed: valid until the next call on the table; take a reference to keep it), copying it
 * first, or again, as the rules and limits allow. NULL: none.
 */
struct jitmap *jitmaps_lookup(struct jitmaps *t, uint32_t pid, uint64_t addr);

/*
 * The process exits: a last reload when a sample fell outside its copy since it was read and
 * the file can still be read (the process may be past the point where /proc shows its root),
 * then it is forgotten. Returns the new copy, a reference the caller drops with
 * jitmap_unref(), or NULL when nothing new was read.
 */
struct jitmap *jitmaps_exit(struct jitmaps *t, uint32_t pid);
/* exec: the old program's map means nothing now. */
void jitmaps_forget(struct jitmaps *t, uint32_t pid);
/* A new aggregate (profile) starts: the per-profile byte and time budgets start over. */
void jitmaps_next_generation(struct jitmaps *t);
const struct jitmaps_stats *jitmaps_stats(const struct jitmaps *t);

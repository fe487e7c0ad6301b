/* SPDX-License-Identifier: MIT */
/*
 * A profiling session: turns ring-buffer records into aggregated stacks. Owns the process
 * table, the aggregate and the unwinder's scratch space; shared by `profd record`, the daemon
 * and `profd convert`. Not thread-safe: one consumer thread calls everything below, and every
 * hook fires on that thread, from inside the call that caused it.
 *
 * A sample's path, one stage per owner (session.c's handle_sample() reads top to bottom):
 *   1. its labels and kernel frames (the record);
 *   2. the process: its mappings at the sample's time, its container id and its CPython state
 *      (pipeline/proc.h, pipeline/cgroup.h, pipeline/python/python.h);
 *   3. the native unwind of the user stack copy (pipeline/unwind/unwind.h);
 *   4. interpreter frames merged: each CPython eval frame replaced by the Python frames it ran;
 *   5. aggregation into the session's aggregate and every tap (pipeline/aggregate.h).
 * What the walks learn flows back into the BPF program through the hooks (struct
 * session_hooks): the command turns each into a capture_set_*() call (sources/capture.h).
 *
 * Call order:
 *   session_new(cfg)                       the hooks are fixed here
 *   session_watch_pid(pid)...              optional: targets known up front
 *   session_handle_record(record)...       each ring-buffer record, in order; or
 *   session_handle_sample(sample)...       samples read elsewhere (perf.data)
 *   session_take_aggregate()               daemon intervals: hand over the aggregate, go on
 *   session_tap_add() / _remove()          on-demand profiles, any time between records
 *   session_set_python(), session_reset_stack_sizes()   after the command rebuilt its capture
 *   session_aggregate(), session_stats()   at the end (record, convert)
 *   session_free()
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/profd.h"
#include "pipeline/aggregate.h"
#include "pipeline/proc.h"
#include "pipeline/unwind/unwind.h"

#define SESSION_COPY_BUCKET 256
#define SESSION_COPY_BUCKETS (PROFD_STACK_BYTES_MAX / SESSION_COPY_BUCKET + 1)

struct session_stats {
	uint64_t records;
	uint64_t samples;       /* CPU samples */
	uint64_t off_cpu_waits; /* off-CPU waits (PROFD_REC_OFFCPU records) ... */
	uint64_t off_cpu_ns;    /* ... and their total length */
	uint64_t bad_records;  /* wrong version/size: counted, skipped */
	uint64_t no_process;   /* sample from a pid whose maps could not be read */
	uint64_t user_stacks;  /* samples with a user context */
	uint64_t complete;     /* of user_stacks: unwound to the root */
	uint64_t stops[_UNWIND_STOP_MAX];
	uint64_t frames;       /* user frames unwound, total */
	uint64_t execs, exits, forks;
	/* CPython (see pipeline/python/python.h) */
	uint64_t py_samples;     /* samples of CPython processes whose chain BPF walked */
	uint64_t py_frames;      /* Python frames placed in stacks */
	/* Python frames whose interpreter frames lie past where the native walk stopped: put at
	 * the outer end of the stack */
	uint64_t py_outer_frames;
	/* Python frames with no interpreter frame to stand in for, in a native stack that reached
	 * its root: dropped */
	uint64_t py_unplaced;
	uint64_t py_skipped;     /* Python frames walked but not kept (a marker stands for them) */
	uint64_t py_cut_calls;   /* interpreter calls past the end of a cut walk (marked) */
	/* interpreter frames of CPython processes with no Python frame to give (the sample came
	 * before the BPF side knew the process, or its chain ended early): marked */
	uint64_t py_raw_eval;
	uint64_t py_bad_code;    /* code objects that could not be read (frame named "[python]") */
	uint64_t py_errors;      /* samples whose chain could not be read or was cut */
	/* processes described to the BPF side when the side-band mapped their interpreter, before
	 * any sample of theirs was handled */
	uint64_t py_early;
	uint64_t py_unsupported; /* samples of processes whose interpreter profd cannot read */
	/* code objects read from their process: cache misses that grew the cache (not counted once
	 * it is full and a miss replaces an entry) */
	uint64_t py_code_reads;
	uint64_t py_code_read_ns; /* time those reads took, in total */
	uint64_t py_code_records;     /* code objects the BPF side copied when they ran */
	uint64_t py_code_records_bad; /* ... that were no code object */
	/* user stack bytes copied per record (samples and waits with a user context) */
	uint64_t stack_copies, stack_copy_bytes;
	uint64_t stack_copy_hist[SESSION_COPY_BUCKETS]; /* [i]: (i-1)*BUCKET < bytes <= i*BUCKET */
	uint64_t stack_need_bytes; /* what the walks read of those copies (unwind stack_used) */
	/* what copies to the stack's end (at most cfg.stack_cap) would have been: the same
	 * samples' ustack_len + stack_above, where stack_above is known */
	uint64_t stack_full_bytes;
	uint64_t record_bytes;     /* ring-buffer bytes of the samples and waits, in total */
	uint64_t stack_cut; /* walks that ran out of a copy cut at its process's learnt size */
};

/* Copy size at quantile q (0..1) of stack_copies, rounded up to SESSION_COPY_BUCKET; 0 if none. */
uint64_t session_stack_copy_quantile(const struct session_stats *st, double q);

struct profd_py_proc;

/*
 * The feedback loop into the BPF program. Each hook fires on the session's thread, from inside
 * session_handle_record() / session_handle_sample() / session_watch_pid(), and must not call
 * back into the session. Any hook may be NULL. What the command does with each:
 */
struct session_hooks {
	/*
	 * A process turned out to run a supported CPython (again after an exec): the command
	 * hands `bpf` (where its frame chain is) to capture_set_python(), so the BPF program walks
	 * its Python frames from then on. Fires as soon as the side-band stream maps the
	 * interpreter into the process (its exec, a libpython loaded), else at the process's
	 * first sample (or session_watch_pid()); a forked child inherits its parent's
	 * description in the BPF program itself (profd_fork), without a call. Not with
	 * cfg.no_python.
	 */
	void (*on_python)(void *userdata, uint32_t pid, const struct profd_py_proc *bpf);
	/*
	 * Adaptive stack copy (pipeline/stacksize.h): the session learns from every walk how much
	 * of each process's stacks lies above its outermost frames and reports a changed gap
	 * here; the command hands it to capture_set_stack_gap() (the BPF stack_gaps map). NULL
	 * turns sizing off (fixed copies). A forked child starts with its parent's gap (the BPF
	 * program copies it at fork, the sizer at the FORK task event), without a call; an exec
	 * starts without one.
	 */
	void (*on_stack_size)(void *userdata, uint32_t pid, uint32_t gap);
	void *userdata; /* passed to each hook */
};

struct session_config {
	size_t max_depth; /* user frames; default UNWIND_MAX_DEPTH_DEFAULT */
	/* Label stacks with the container id found in /proc/PID/cgroup (read once per process). */
	bool container_ids;
	/*
	 * Read the JIT perf maps of live processes whose samples land in anonymous executable
	 * memory and keep copies with the aggregates (pipeline/jitmap.h), for profiles built with
	 * PROFILE_PERFMAPS_LIVE. Off: no perf map is ever read (convert).
	 */
	bool perf_maps;
	size_t unwind_cache_bytes; /* CFI tables; default UNWIND_CACHE_DEFAULT_BYTES */
	/* Don't read CPython frames (the BPF side is told separately). */
	bool no_python;
	struct session_hooks hooks;
	uint32_t stack_cap; /* the copy cap (--stack-bytes), for stats.stack_full_bytes */
};

struct session;

int session_new(const struct session_config *cfg, struct session **ret);
void session_free(struct session *s);

/* Handle one ring-buffer record. Malformed records are counted, never fatal: returns 0. */
int session_handle_record(struct session *s, const void *data, size_t size);

/*
 * Handle one sample whose user stack (rec->ustack_len bytes) lies at `ustack` and its kernel
 * IPs (rec->kstack_len) at `kstack` instead of in the record, so a reader that has them
 * elsewhere (a perf.data event) need not copy them. rec->hdr.size is not used; no Python
 * frames. Counted like session_handle_record(); returns 0.
 */
struct profd_sample;
int session_handle_sample(struct session *s, const struct profd_sample *rec, const void *ustack,
			  const uint64_t *kstack);

/* Make sure a process's maps are loaded now (e.g. right after it was chosen as a target). */
int session_watch_pid(struct session *s, uint32_t pid);

/* Forget every learnt stack gap (a new capture starts without them). No-op without sizing. */
int session_reset_stack_sizes(struct session *s);

/*
 * Turn Python frames on or off from the next sample on (the daemon's reload: the capture was
 * rebuilt with or without the BPF frame walk). Off forgets every process's interpreter state;
 * on starts detecting interpreters again, each announced through hooks.on_python at its next
 * sample. 0 or -ENOMEM (then Python stays off).
 */
int session_set_python(struct session *s, bool on);

const struct session_stats *session_stats(const struct session *s);
struct aggregate *session_aggregate(struct session *s);
/*
 * Hand the current aggregate to the caller and start a new one (daemon intervals); the per-profile
 * perf map budgets start over.
 */
int session_take_aggregate(struct session *s, struct aggregate **ret);
struct proc_table *session_procs(struct session *s);

/*
 * Taps: extra aggregates fed with every following sample that passes the tap's filter, besides
 * the session's own, e.g. for on-demand profiles that overlap interval boundaries. The filter is
 * how the daemon's access control restricts what a caller sees: nothing a caller may not see
 * ever enters its tap's aggregate. The tap's aggregate stays owned by the caller and must
 * outlive the tap. At most SESSION_MAX_TAPS at once (-EBUSY beyond).
 */
#define SESSION_MAX_TAPS 16
struct session_tap_filter {
	uint32_t pid; /* only this process; 0: every process */
	bool by_uid;  /* only samples whose profd_sample.uid is `uid` (never PROFD_UID_NONE ones) */
	uint32_t uid;
	bool no_kernel; /* leave kernel frames out (the user part of each stack stays) */
};
struct session_tap;
int session_tap_add(struct session *s, struct aggregate *a, const struct session_tap_filter *f,
		    struct session_tap **ret);
void session_tap_remove(struct session *s, struct session_tap *t);

struct unwind_cache_stats;
void session_unwind_stats(const struct session *s, struct unwind_cache_stats *ret);

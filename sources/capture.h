/* SPDX-License-Identifier: MIT */
/*
 * Capture: the BPF skeleton's lifecycle (open → configure → load → attach), the cpu-clock
 * perf events the program runs on (one per online CPU, or with cfg.per_task one per thread of
 * the targets, inherited by the threads they create), the side-band events (one per online
 * CPU), the target-pid filter, and the ring buffer. The session's hooks (pipeline/session.h,
 * struct session_hooks) reach the BPF program through capture_set_python() and
 * capture_set_stack_gap().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct capture_config {
	bool all;              /* whole host (excluding profd itself) */
	unsigned freq;         /* Hz per CPU */
	unsigned stack_bytes;  /* user stack bytes per sample, <= PROFD_STACK_BYTES_MAX */
	size_t ringbuf_bytes;  /* power of two, >= page size */
	bool follow_forks;     /* children of targets become targets */
	bool no_python;        /* don't walk CPython frame chains */
	/*
	 * Off-CPU waits: a target thread that blocked (not preempted) for off_cpu_min_ns or more
	 * is recorded when it leaves the system call it waited in (PROFD_REC_OFFCPU), at most
	 * off_cpu_budget per second per CPU (0: CAPTURE_OFF_CPU_BUDGET_DEFAULT); further ones
	 * are counted.
	 */
	bool off_cpu;
	uint64_t off_cpu_min_ns;
	uint64_t off_cpu_budget;
	/*
	 * Sample with per-task events (not cfg.all): one cpu-clock event on each thread of the
	 * processes added before capture_start(), inherited by the threads and processes they
	 * create. Only those tasks take sampling interrupts; with per-CPU events every task on
	 * every CPU does, and the BPF program filters afterwards. When the kernel refuses a BPF
	 * program on an inherited event, capture_start() falls back to per-CPU events and says so.
	 */
	bool per_task;
	/* Stack gaps per process from capture_set_stack_gap() (else copy to the VMA's end). */
	bool stack_sizing;
	/*
	 * The kernel's side-band stream (NULL: none): one PERF_COUNT_SW_DUMMY event per online CPU
	 * with mmap2, comm (exec flagged), task (fork, exit) records of every process, each with
	 * sample_id_all (PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU) on CLOCK_MONOTONIC
	 * (the clock of the samples' time_ns), MMAP2 records with device and inode (never the
	 * build-id form: a build-id names any copy, which a user can forge), read through a
	 * CAPTURE_SIDEBAND_PAGES-page ring per CPU. Enabled in capture_new(), before sampling starts: a snapshot of /proc taken
	 * after it misses nothing. Every record is handed to `sideband` (header first; valid
	 * during the call only) before any sample taken after it is handed to the handler, and
	 * at every capture_poll(). A ring that overflowed hands on a PERF_RECORD_LOST record.
	 */
	int (*sideband)(void *userdata, const void *rec, size_t size);
	void *sideband_userdata;
};
#define CAPTURE_SIDEBAND_PAGES 64
#define CAPTURE_OFF_CPU_MIN_DEFAULT_NS 1000000ull
#define CAPTURE_OFF_CPU_BUDGET_DEFAULT 2000

#define CAPTURE_RINGBUF_DEFAULT (32u << 20)
#define CAPTURE_RINGBUF_MIN_AUTO (2u << 20)
#define CAPTURE_RINGBUF_MIN_FIXED (4u << 20)
#define CAPTURE_TYPICAL_COPY 4096 /* user stack bytes an adaptive sample copies, typically */

/*
 * A ring buffer size for sampling at freq Hz on every online CPU, a power of two up to
 * CAPTURE_RINGBUF_DEFAULT. As small as is safe, because the size is what a sample costs the
 * sampled task: the BPF program writes each record into ring memory that was last touched a
 * whole ring ago, and cold writes dominate its run time (on the bench machine, 3.5 KiB samples:
 * 2.0 µs each into a 1 MiB ring, 3.7 µs into 4 MiB, 8.3 µs into 32 MiB; BENCHMARKS.md).
 * `seconds`: how long the reader may be away (it is woken when the ring is a quarter full).
 * adaptive: samples copy CAPTURE_TYPICAL_COPY or so (at least CAPTURE_RINGBUF_MIN_AUTO);
 * otherwise up to stack_bytes each (at least CAPTURE_RINGBUF_MIN_FIXED). The pages end up
 * resident (twice: the data pages are mapped back to back).
 */
size_t capture_ringbuf_size(unsigned freq, unsigned stack_bytes, bool adaptive, double seconds);

/* Called for every record; return < 0 to stop consuming. */
typedef int (*capture_handler_t)(void *userdata, const void *data, size_t size);

struct capture;

/*
 * Checks privileges first: returns -EPERM with *ret_missing naming the capability that is
 * missing (e.g. "CAP_BPF") when the process lacks CAP_BPF/CAP_PERFMON (or CAP_SYS_ADMIN).
 */
int capture_check_privileges(const char **ret_missing);

/*
 * Load and attach the BPF program with cfg's settings and open the side-band (sampling starts
 * with capture_start()). Logs why it failed (the program did not load and what kernel profd
 * needs, or which CPU's side-band event would not open) and returns -errno: the caller adds
 * nothing.
 */
int capture_new(const struct capture_config *cfg, capture_handler_t handler, void *userdata,
		struct capture **ret);
void capture_free(struct capture *c);

/* Add a process to the filter (no-op with cfg.all). -E2BIG when the map is full. */
int capture_add_pid(struct capture *c, pid_t pid);

/*
 * Tell the BPF program that process `pid` runs CPython and where its frame chain is (no-op
 * with cfg.no_python, or c NULL: nothing samples yet). The entry goes when the process execs
 * or exits. -E2BIG when PROFD_MAX_PY_PROCS processes are known already.
 */
struct profd_py_proc;
int capture_set_python(struct capture *c, pid_t pid, const struct profd_py_proc *py);

/*
 * Samples of process `pid` copy their user stack from sp up to `gap` bytes below the end of
 * the stack's VMA from now on (still at most cfg.stack_bytes; see pipeline/stacksize.h). No-op
 * without cfg.stack_sizing. The entry goes when the process execs or exits.
 */
int capture_set_stack_gap(struct capture *c, pid_t pid, uint32_t gap);

/*
 * Attach the perf events: sampling starts now. With cfg.per_task, every thread of every
 * process added so far gets its event (threads created meanwhile included).
 */
int capture_start(struct capture *c);

/* What capture_start() set up, for messages: events opened and whether they are per task. */
struct capture_info {
	bool per_task;
	size_t events;  /* perf events profd opened (inherited ones not counted) */
	size_t threads; /* per task: threads that had one when sampling started */
};
void capture_get_info(const struct capture *c, struct capture_info *ret);

/*
 * Wait up to timeout_ms, then consume what the ring buffer holds. The BPF side wakes the
 * reader only when the ring is a quarter full, so records usually arrive in batches, one per
 * timeout: callers poll with a timeout (≤ 100 ms keeps a 32 MiB ring far from full).
 * Returns records consumed or -errno (-EINTR is 0). A call handles records for at most
 * CAPTURE_POLL_BUDGET_NS after its timeout, then returns what it consumed so far (the rest
 * stays in the ring for the next call): a reader slower than the producer still gets back to
 * its other work.
 */
#define CAPTURE_POLL_BUDGET_NS (200ull * 1000 * 1000)
/*
 * With the side-band stream, an exec wakes the reader at once (the BPF program forces the
 * wakeup), and for CAPTURE_EXEC_FOLLOW_NS after it the timeout is at most
 * CAPTURE_EXEC_POLL_MS: the next capture_handled_ns() passes the exec soon, so the process
 * table applies the new image's mappings (and the session describes its interpreter to the
 * BPF program) within milliseconds, not a whole timeout later.
 */
#define CAPTURE_EXEC_FOLLOW_NS (30ull * 1000 * 1000)
#define CAPTURE_EXEC_POLL_MS 5
int capture_poll(struct capture *c, int timeout_ms);

/*
 * CLOCK_MONOTONIC time before which every sample has been handed to the handler: the start of
 * the last capture_poll() that emptied the ring buffer (0: none yet).
 */
uint64_t capture_handled_ns(const struct capture *c);

/*
 * Stop sampling (close the perf events; task events go on). What the ring buffer holds stays
 * for capture_poll(): draining it then ends, however slow the reader is.
 */
void capture_stop(struct capture *c);

/*
 * Samples, task events and off-CPU waits the BPF side could not put in the ring buffer,
 * summed over CPUs.
 */
uint64_t capture_lost(struct capture *c);
/* Off-CPU waits not recorded because their CPU had used its budget for that second. */
uint64_t capture_off_cpu_over_budget(struct capture *c);

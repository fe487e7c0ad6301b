// SPDX-License-Identifier: MIT
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dirent.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/profd.h"
#include "common/log.h"
#include "common/grow.h"
#include "common/macro.h"
#include "common/util.h"
#include "sources/capture.h"
#include "profd.skel.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct capture {
	struct capture_config cfg;
	struct profd_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	size_t n_links, cap_links;
	pid_t *pids; /* processes added (per-task events are opened on their threads) */
	size_t n_pids, cap_pids;
	struct capture_info info;
	capture_handler_t handler;
	void *userdata;
	int n_cpus;
	/* One capture_poll() call: records handled, and when it must give the caller back. */
	uint64_t polled, deadline_ns;
	bool over_budget;
	uint64_t handled_ns; /* see capture_handled_ns() */
	/* Side-band rings, one per online CPU; everything written before sb_drained_ns is read. */
	struct sb_ring *sb;
	size_t n_sb;
	uint64_t sb_drained_ns;
	uint8_t *sb_buf; /* a record that wraps around its ring, made whole */
	uint64_t exec_follow_until; /* polls are short until then (CLOCK_MONOTONIC): an exec */
};

struct sb_ring {
	int fd;
	void *base; /* the metadata page, then the data pages */
	size_t len, data_size;
};

static bool cap_has(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

int capture_check_privileges(const char **ret_missing)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	if (cap_has(d, CAP_SYS_ADMIN))
		return 0;
	if (!cap_has(d, CAP_BPF)) {
		*ret_missing = "CAP_BPF";
		return -EPERM;
	}
	if (!cap_has(d, CAP_PERFMON)) {
		*ret_missing = "CAP_PERFMON";
		return -EPERM;
	}
	return 0;
}

/* Hand on every side-band record written so far. */
static void sb_drain(struct capture *c)
{
	long page = sysconf(_SC_PAGESIZE);

	c->sb_drained_ns = mono_ns();
	for (size_t i = 0; i < c->n_sb; i++) {
		struct sb_ring *r = &c->sb[i];
		struct perf_event_mmap_page *mp = r->base;
		const uint8_t *data = (const uint8_t *)r->base + page;
		uint64_t head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
		uint64_t tail = mp->data_tail;

		while (tail < head) {
			struct perf_event_header h;
			size_t off = tail % r->data_size;
			const void *rec;

			/* Records are 8-byte aligned and sized: a header never wraps. */
			memcpy(&h, data + off, sizeof(h));
			if (h.size < sizeof(h) || h.size > head - tail) {
				tail = head; /* cannot be: give up on what is there */
				break;
			}
			if (off + h.size <= r->data_size) {
				rec = data + off;
			} else {
				size_t first = r->data_size - off;

				memcpy(c->sb_buf, data + off, first);
				memcpy(c->sb_buf + first, data, h.size - first);
				rec = c->sb_buf;
			}
			(void)c->cfg.sideband(c->cfg.sideband_userdata, rec, h.size);
			tail += h.size;
		}
		__atomic_store_n(&mp->data_tail, tail, __ATOMIC_RELEASE);
	}
}

static int ringbuf_cb(void *ctx, void *data, size_t size)
{
	struct capture *c = ctx;
	int r;

	/*
	 * Samples and task events carry their time right after the header: the side-band records
	 * before that time must reach the process table first. Everything written before the last
	 * drain began has been read, so a drain per poll is usually all it takes.
	 */
	if (c->n_sb && size >= sizeof(struct profd_rec_hdr) + sizeof(uint64_t)) {
		uint64_t t;

		memcpy(&t, (const uint8_t *)data + sizeof(struct profd_rec_hdr), sizeof(t));
		if (t >= c->sb_drained_ns)
			sb_drain(c);
	}
	r = c->handler(c->userdata, data, size);

	if (r < 0)
		return r;
	if (c->n_sb && size >= sizeof(struct profd_rec_hdr) &&
	    ((const struct profd_rec_hdr *)data)->type == PROFD_REC_EXEC)
		c->exec_follow_until = mono_ns() + CAPTURE_EXEC_FOLLOW_NS;
	/*
	 * libbpf reads on while the producer keeps writing: a reader slower than the samples
	 * arrive (a starved daemon, a burst of new binaries) would never return to its intervals,
	 * signals and HTTP requests. A negative return stops it with this record consumed.
	 */
	if ((++c->polled & 63) == 0 && mono_ns() >= c->deadline_ns) {
		c->over_budget = true;
		return -EAGAIN;
	}
	return 0;
}

static int sb_open(struct capture *c);
static void sb_close(struct capture *c);

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_get_max_level() < LOG_LEVEL_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && log_get_max_level() < LOG_LEVEL_INFO)
		return 0;
	return vfprintf(stderr, fmt, ap);
}


/* Open, size and load the BPF program (its read-only settings from cfg), and attach it. */
static int load_program(struct capture *c, const struct capture_config *cfg, size_t rb)
{
	int r;

	libbpf_set_print(libbpf_print);
	c->skel = profd_bpf__open();
	if (!c->skel)
		return -errno ?: -EINVAL;
	c->skel->rodata->filter_pids = !cfg->all;
	c->skel->rodata->self_tgid = getpid();
	c->skel->rodata->stack_bytes = cfg->stack_bytes;
	c->skel->rodata->follow_forks = cfg->follow_forks;
	c->skel->rodata->python_frames = !cfg->no_python;
	c->skel->rodata->off_cpu_min_ns = cfg->off_cpu_min_ns;
	c->skel->rodata->off_cpu_budget = cfg->off_cpu_budget ? cfg->off_cpu_budget
							      : CAPTURE_OFF_CPU_BUDGET_DEFAULT;
	c->skel->rodata->stack_sizing = cfg->stack_sizing;
	c->skel->rodata->task_events = cfg->per_task && !cfg->all;
	/* Without --off-cpu, nothing runs at context switches. */
	bpf_program__set_autoload(c->skel->progs.profd_switch_out, cfg->off_cpu);
	bpf_program__set_autoload(c->skel->progs.profd_sys_exit, cfg->off_cpu);
	r = bpf_map__set_max_entries(c->skel->maps.events, rb);
	if (r < 0)
		return r;
	c->n_cpus = libbpf_num_possible_cpus();
	if (c->n_cpus <= 0)
		return c->n_cpus ?: -EINVAL;
	c->skel->rodata->n_cpus = c->n_cpus;
	r = bpf_map__set_max_entries(c->skel->maps.scratch, 2 * c->n_cpus);
	if (r < 0)
		return r;
	r = profd_bpf__load(c->skel);
	if (r < 0)
		return r;
	/* Task events first, so no exec/exit between here and the first sample is missed. */
	r = profd_bpf__attach(c->skel);
	if (r < 0)
		return r;
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), ringbuf_cb, c, NULL);
	if (!c->rb)
		return -errno ?: -ENOMEM;
	return 0;
}

int capture_new(const struct capture_config *cfg, capture_handler_t handler, void *userdata,
		struct capture **ret)
{
	struct capture *c;
	size_t rb = cfg->ringbuf_bytes ? cfg->ringbuf_bytes : CAPTURE_RINGBUF_DEFAULT;
	int r;

	if (cfg->stack_bytes > PROFD_STACK_BYTES_MAX || cfg->freq == 0 || (rb & (rb - 1)) ||
	    rb < 4096)
		return log_error_errno(-EINVAL, "Invalid capture settings (stack copy %u bytes, "
						"%u Hz, ring buffer %zu bytes).",
				       (unsigned)cfg->stack_bytes, (unsigned)cfg->freq, rb);

	c = calloc(1, sizeof(*c));
	if (!c)
		return log_error_errno(-ENOMEM, "Out of memory.");
	c->cfg = *cfg;
	c->handler = handler;
	c->userdata = userdata;

	r = load_program(c, cfg, rb);
	if (r < 0) {
		log_error_errno(r, "Failed to load the BPF program: %m. profd needs a kernel with "
				   "BTF (/sys/kernel/btf/vmlinux), BPF ring buffers and "
				   "bpf_find_vma (Linux 5.17 or later).");
		goto fail;
	}
	if (cfg->sideband) {
		r = sb_open(c); /* says which CPU's event failed */
		if (r < 0)
			goto fail;
	}
	*ret = c;
	return 0;
fail:
	capture_free(c);
	return r;
}

static bool cpu_online(int cpu);

static int sb_open_cpu(struct capture *c, int cpu)
{
	long page = sysconf(_SC_PAGESIZE);
	struct perf_event_attr a = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_DUMMY,
		.size = sizeof(a),
		.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU,
		.sample_id_all = 1,
		.mmap = 1,
		.mmap2 = 1,
		.comm = 1,
		.comm_exec = 1,
		.task = 1,
		.use_clockid = 1,
		.clockid = CLOCK_MONOTONIC,
		/* Nobody waits on these fds: wake nobody until the ring is half full. */
		.watermark = 1,
		.wakeup_watermark = (uint32_t)(CAPTURE_SIDEBAND_PAGES * page / 2),
	};
	struct sb_ring *r = &c->sb[c->n_sb];
	int fd = syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0)
		return -errno;
	r->len = (size_t)(CAPTURE_SIDEBAND_PAGES + 1) * page;
	r->data_size = (size_t)CAPTURE_SIDEBAND_PAGES * page;
	r->base = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED) {
		int e = -errno;

		close(fd);
		return e;
	}
	r->fd = fd;
	c->n_sb++;
	return 0;
}

/*
 * One side-band event and ring per online CPU, enabled as they open. MMAP2 records carry device
 * and inode, never the build-id (Linux >= 5.12 offers either): device and inode name the very
 * file mapped, while a build-id names any copy, and any user can write a file with another
 * binary's build-id (a cache keyed by it would let that file name and unwind other users'
 * processes).
 */
static int sb_open(struct capture *c)
{
	c->sb = calloc(c->n_cpus, sizeof(*c->sb));
	c->sb_buf = malloc(1u << 16); /* perf_event_header.size is 16 bits */
	if (!c->sb || !c->sb_buf)
		return log_error_errno(-ENOMEM, "Out of memory.");
	for (int cpu = 0; cpu < c->n_cpus; cpu++) {
		int r;

		if (!cpu_online(cpu))
			continue;
		r = sb_open_cpu(c, cpu);
		if (r == -ENODEV)
			continue;
		if (r < 0)
			return log_error_errno(r, "Failed to open the side-band event of CPU %d "
						  "(mmap, comm and task records): %m", cpu);
	}
	return 0;
}

static void sb_close(struct capture *c)
{
	for (size_t i = 0; i < c->n_sb; i++) {
		munmap(c->sb[i].base, c->sb[i].len);
		close(c->sb[i].fd);
	}
	c->n_sb = 0;
	free(c->sb);
	c->sb = NULL;
	free(c->sb_buf);
	c->sb_buf = NULL;
}

static bool cpu_online(int cpu)
{
	char path[64], v = '1';
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	f = fopen(path, "re");
	if (!f)
		return true; /* cpu0 often has no "online" file: it cannot go offline */
	if (fread(&v, 1, 1, f) != 1)
		return true;
	return v == '1';
}

static int add_link(struct capture *c, struct bpf_link *link)
{
	int r = GROW_ARRAY(c->links, c->cap_links, c->n_links + 1, GROW_NO_LIMIT);

	if (r < 0)
		return r;
	c->links[c->n_links++] = link;
	return 0;
}

static void destroy_links(struct capture *c)
{
	/* A perf event link owns its perf fd: destroying it closes the event. */
	for (size_t i = 0; i < c->n_links; i++)
		bpf_link__destroy(c->links[i]);
	c->n_links = 0;
}

/* Open an event (cpu -1: on thread `tid`; else on CPU `cpu`, any task) with the program on it. */
static int open_event(struct capture *c, const struct perf_event_attr *attr, pid_t tid, int cpu)
{
	struct bpf_link *link;
	int fd, r;

	fd = syscall(SYS_perf_event_open, attr, tid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return -errno;
	link = bpf_program__attach_perf_event(c->skel->progs.profd_sample, fd);
	if (!link) {
		r = -errno ?: -EINVAL;
		close(fd);
		return r;
	}
	/* The link owns the perf fd from here on and closes it when destroyed. */
	r = add_link(c, link);
	if (r < 0) {
		bpf_link__destroy(link);
		return r;
	}
	c->info.events++;
	return 0;
}

static int start_per_cpu(struct capture *c, struct perf_event_attr *attr)
{
	attr->inherit = 0;
	for (int cpu = 0; cpu < c->n_cpus; cpu++) {
		int r;

		if (!cpu_online(cpu))
			continue;
		r = open_event(c, attr, -1, cpu);
		if (r == -ENODEV)
			continue;
		if (r < 0)
			return log_error_errno(r, "Failed to sample CPU %d (cpu-clock perf event with "
						  "the BPF program): %m", cpu);
	}
	if (c->n_links == 0)
		return log_error_errno(-ENODEV, "No online CPU could be sampled");
	return 0;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/*
 * One pass over the threads of process `pid`: open an event on each that has none. Returns
 * events opened or -errno (a thread or process that ended meanwhile is no error).
 */
static int task_events_pass(struct capture *c, const struct perf_event_attr *attr, pid_t pid)
{
	char path[64];
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int opened = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0; /* gone: it will not be sampled, and its EXIT ends the recording */
	while ((de = readdir(d))) {
		__u32 tid;
		__u8 one = 1;
		char *end;
		long v;
		int r;

		errno = 0;
		v = strtol(de->d_name, &end, 10);
		if (errno || *end || v <= 0 || v > INT_MAX)
			continue;
		tid = (__u32)v;
		/* Opened by us already, or inherited from its creator's event. */
		if (bpf_map__lookup_elem(c->skel->maps.task_event_tids, &tid, sizeof(tid), &one,
					 sizeof(one), 0) == 0)
			continue;
		r = open_event(c, attr, (pid_t)tid, -1);
		if (r == -ESRCH)
			continue;
		if (r < 0)
			return r;
		/*
		 * Marked once its program is attached: a thread it creates from now on inherits the
		 * event and the program, and the fork hook marks it in turn.
		 */
		(void)bpf_map__update_elem(c->skel->maps.task_event_tids, &tid, sizeof(tid), &one,
					   sizeof(one), BPF_ANY);
		opened++;
	}
	return opened;
}

/*
 * Per-task events on every thread of the targets, inherited (inherit = 1) by what they
 * create. Threads created while this runs either inherit from a thread that has its event
 * already (the fork hook marks them) or show up in the next pass, which opens theirs; a pass
 * that opens nothing ends it. A thread created in the microseconds between its creator's
 * attach and mark gets two events (samples twice as often); none is left without one.
 */
static int start_per_task(struct capture *c, struct perf_event_attr *attr)
{
	int opened = 0, r = 0;

	attr->inherit = 1;
	c->skel->bss->marking_task_events = true;
	for (int pass = 0; pass < 64; pass++) {
		int n = 0;

		for (size_t i = 0; i < c->n_pids; i++) {
			r = task_events_pass(c, attr, c->pids[i]);
			if (r < 0)
				goto out;
			n += r;
		}
		opened += n;
		if (n == 0)
			break;
	}
	r = 0;
out:
	c->skel->bss->marking_task_events = false;
	c->info.threads = opened;
	return r;
}

int capture_start(struct capture *c)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.sample_freq = c->cfg.freq,
		.freq = 1,
	};
	int r;

	c->info = (struct capture_info){};
	if (!c->cfg.per_task || c->cfg.all)
		return start_per_cpu(c, &attr);

	c->info.per_task = true;
	r = start_per_task(c, &attr);
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -EMFILE || r == -ENFILE) {
		/* Older kernels refuse BPF programs on inherited events; huge thread counts run
		 * out of file descriptors (two per thread). */
		log_warning_errno(r, "Cannot sample the targets with per-task events (%m); sampling "
				     "every CPU instead, which interrupts unrelated processes too.");
		destroy_links(c);
		c->info = (struct capture_info){};
		return start_per_cpu(c, &attr);
	}
	if (r < 0)
		return log_error_errno(r, "Failed to open per-task cpu-clock events on the targets' "
					  "threads: %m");
	return 0;
}

void capture_get_info(const struct capture *c, struct capture_info *ret)
{
	*ret = c->info;
}

void capture_stop(struct capture *c)
{
	if (!c)
		return;
	/* Closing an event also ends the events its threads inherited from it. */
	destroy_links(c);
}

void capture_free(struct capture *c)
{
	if (!c)
		return;
	destroy_links(c);
	free(c->links);
	free(c->pids);
	sb_close(c);
	ring_buffer__free(c->rb);
	profd_bpf__destroy(c->skel);
	free(c);
}

int capture_add_pid(struct capture *c, pid_t pid)
{
	__u32 key = pid;
	__u8 one = 1;

	if (c->cfg.all)
		return 0;
	if (bpf_map__update_elem(c->skel->maps.targets, &key, sizeof(key), &one, sizeof(one),
				 BPF_ANY) < 0)
		return errno == E2BIG || errno == ENOSPC ? -E2BIG : -errno;
	if (GROW_ARRAY(c->pids, c->cap_pids, c->n_pids + 1, GROW_NO_LIMIT) < 0)
		return -ENOMEM;
	c->pids[c->n_pids++] = pid;
	return 0;
}

int capture_set_stack_gap(struct capture *c, pid_t pid, uint32_t gap)
{
	__u32 key = pid, val = gap;

	if (!c || !c->cfg.stack_sizing)
		return 0;
	if (bpf_map__update_elem(c->skel->maps.stack_gaps, &key, sizeof(key), &val, sizeof(val),
				 BPF_ANY) < 0)
		return -errno;
	return 0;
}

int capture_set_python(struct capture *c, pid_t pid, const struct profd_py_proc *py)
{
	__u32 key = pid;

	if (!c || c->cfg.no_python)
		return 0;
	if (bpf_map__update_elem(c->skel->maps.py_procs, &key, sizeof(key), py, sizeof(*py),
				 BPF_ANY) < 0)
		return errno == E2BIG || errno == ENOSPC ? -E2BIG : -errno;
	return 0;
}

size_t capture_ringbuf_size(unsigned freq, unsigned stack_bytes, bool adaptive, double seconds)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t per = sizeof(struct profd_sample) + 8 +
		       (adaptive ? MIN(stack_bytes, (unsigned)CAPTURE_TYPICAL_COPY) : stack_bytes);
	uint64_t want = (uint64_t)((double)freq * (cpus > 0 ? (double)cpus : 1) * (double)per *
				   seconds);
	size_t size = adaptive ? CAPTURE_RINGBUF_MIN_AUTO : CAPTURE_RINGBUF_MIN_FIXED;

	while (size < want && size < CAPTURE_RINGBUF_DEFAULT)
		size <<= 1;
	return size;
}

int capture_poll(struct capture *c, int timeout_ms)
{
	uint64_t start = mono_ns();
	int r;

	c->polled = 0;
	c->over_budget = false;
	if (start < c->exec_follow_until && timeout_ms > CAPTURE_EXEC_POLL_MS)
		timeout_ms = CAPTURE_EXEC_POLL_MS;
	c->deadline_ns = mono_ns() + (uint64_t)timeout_ms * 1000000 + CAPTURE_POLL_BUDGET_NS;
	r = ring_buffer__poll(c->rb, timeout_ms);
	/*
	 * The BPF program wakes us only when the ring is a quarter full (see submit_flags())
	 * or at an exec, so a poll that timed out still has records to drain.
	 */
	if (!c->over_budget && (r == 0 || r == -EINTR))
		r = ring_buffer__consume(c->rb);
	if (c->n_sb)
		sb_drain(c);
	if (c->over_budget)
		return (int)MIN(c->polled, (uint64_t)INT_MAX);
	if (r >= 0 || r == -EINTR)
		c->handled_ns = start;
	return r == -EINTR ? 0 : r;
}

uint64_t capture_handled_ns(const struct capture *c)
{
	return c->handled_ns;
}

/* The `lost` counters first..last (enum profd_lost), summed over CPUs. */
static uint64_t lost_sum(struct capture *c, __u32 first, __u32 last)
{
	uint64_t total = 0;
	_cleanup_free_ uint64_t *vals = calloc(c->n_cpus, sizeof(*vals));

	if (!vals)
		return 0;
	for (__u32 key = first; key <= last; key++) {
		if (bpf_map__lookup_elem(c->skel->maps.lost, &key, sizeof(key), vals,
					 c->n_cpus * sizeof(*vals), 0) < 0)
			continue;
		for (int i = 0; i < c->n_cpus; i++)
			total += vals[i];
	}
	return total;
}

uint64_t capture_lost(struct capture *c)
{
	return lost_sum(c, PROFD_LOST_SAMPLES, PROFD_LOST_OFFCPU);
}

uint64_t capture_off_cpu_over_budget(struct capture *c)
{
	return lost_sum(c, PROFD_LOST_OFFCPU_BUDGET, PROFD_LOST_OFFCPU_BUDGET);
}


// SPDX-License-Identifier: MIT
/*
 * Seeds for fuzz-raw: raw captures written by profd's own writer (sources/raw.c) the way
 * `profd record --raw` writes them, about this very process: a PROCESS record of its real
 * executable mappings (read by the process table from /proc/self), RING records holding samples
 * of its real stack (registers and stack bytes captured at a few depths, frame pointers on),
 * task events, the KSYMS record of the kernel frames, and END. Then damaged copies of it.
 * Built by the Makefile against the fuzz library, run by gen-seeds.sh:
 *
 *   seed-raw DIR   →  DIR/capture, DIR/cut-mid-record, DIR/bad-crc, DIR/no-end, DIR/header-only
 *
 * Each seed is framed for fuzz-raw (fuzz-common.h): a flag byte, then the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpf/profd.h"
#include "pipeline/aggregate.h"
#include "pipeline/proc.h"
#include "sources/raw.h"
#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-common.h"

#define STACK_COPY 1024
#define KBASE 0xffffffff81000000ull

static struct raw_writer *w;
static uint32_t self;

static __attribute__((noreturn)) void die(const char *what, int r)
{
	fprintf(stderr, "seed-raw: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(1);
}

/* Our own stack bytes, red zones and all: not through the sanitizer's eyes. */
__attribute__((no_sanitize("address"), noinline)) static void copy_stack(uint8_t *dst,
									 uintptr_t src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = ((volatile const uint8_t *)src)[i];
}

/* A sample record of the caller's stack, as the BPF program writes one. */
__attribute__((noinline)) static void sample_here(uint16_t flags, uint32_t n_kstack)
{
	static uint8_t rec[sizeof(struct profd_sample) + STACK_COPY + PROFD_MAX_KSTACK * 8];
	uint64_t kstack[PROFD_MAX_KSTACK];
	size_t kbytes;
	struct profd_sample *s = (struct profd_sample *)rec;
	uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
	struct timespec ts;
	int r;

	memset(rec, 0, sizeof(rec));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->hdr = (struct profd_rec_hdr){PROFD_REC_SAMPLE, PROFD_RECORD_VERSION, sizeof(rec)};
	s->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	s->pid = self;
	s->tid = self;
	s->cpu = 0;
	s->e_machine = raw_host_e_machine();
	s->flags = flags;
	memcpy(s->comm, "seed-raw", 9);
	memcpy(s->pcomm, "seed-raw", 9);
	s->regs[0] = (uint64_t)(uintptr_t)&sample_here + 4;
	s->regs[1] = fp;
	s->regs[2] = fp;
	s->regs[3] = (uint64_t)(uintptr_t)__builtin_return_address(0);
	s->kstack_len = n_kstack < PROFD_MAX_KSTACK ? n_kstack : PROFD_MAX_KSTACK;
	kbytes = s->kstack_len * sizeof(uint64_t);
	for (uint32_t i = 0; i < s->kstack_len; i++)
		kstack[i] = KBASE + 0x1000 * (i % 4) + 0x10 * i + 5;
	s->stack_above = PROFD_STACK_ABOVE_UNKNOWN;
	if (!(flags & PROFD_SAMPLE_KERNEL_THREAD)) {
		s->ustack_len = STACK_COPY;
		copy_stack((uint8_t *)(s + 1), fp, STACK_COPY);
	}
	/* The kernel IPs last, right after the stack bytes. */
	memcpy(rec + sizeof(*s) + s->ustack_len, kstack, kbytes);
	s->hdr.size = (uint32_t)(sizeof(*s) + s->ustack_len + kbytes);
	r = raw_writer_add(w, RAW_REC_RING, rec, s->hdr.size);
	if (r < 0)
		die("writing a sample", r);
}

__attribute__((noinline)) static int depth3(int n)
{
	sample_here(PROFD_SAMPLE_USER_MODE, 0);
	return n + 1;
}

__attribute__((noinline)) static int depth2(int n)
{
	sample_here(0, 3); /* in a system call: kernel frames, then the user stack */
	return depth3(n) * 2;
}

__attribute__((noinline)) static int depth1(int n)
{
	return depth2(n) + 1;
}

static void task(uint16_t type, uint32_t pid, uint32_t ppid)
{
	struct profd_task_event e = {
	    .hdr = {type, PROFD_RECORD_VERSION, sizeof(e)}, .time_ns = 1, .pid = pid, .ppid = ppid};
	int r;

	memcpy(e.comm, "seed-raw", 9);
	r = raw_writer_add(w, RAW_REC_RING, &e, sizeof(e));
	if (r < 0)
		die("writing a task event", r);
}

static void add_process(struct proc_table *t)
{
	struct proc *p;
	int r = proc_table_get(t, (pid_t)self, &p);

	if (r < 0)
		die("reading our own maps", r);
	r = raw_writer_add_process(w, p, "seed-raw");
	if (r < 0)
		die("writing a PROCESS record", r);
}

/* The KSYMS record for the kernel frames written above, from a small kallsyms text. */
static void add_ksyms(const char *dir)
{
	struct agg_stack *st = calloc(1, sizeof(*st) + 4 * sizeof(struct agg_frame));
	struct aggregate *a = NULL;
	struct kallsyms *ks = NULL;
	char path[4096];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/.kallsyms", dir);
	f = fopen(path, "w");
	if (!f || !st)
		die("kallsyms text", errno);
	fprintf(f,
		"%016llx T entry_SYSCALL_64\n%016llx T do_syscall_64\n"
		"%016llx t ksys_read\n%016llx T vfs_read\n%016llx t ext4_file_read_iter\t[ext4]\n",
		KBASE, KBASE + 0x1000, KBASE + 0x2000, KBASE + 0x3000, KBASE + 0x100000);
	fclose(f);
	r = kallsyms_load(path, &ks);
	unlink(path);
	if (r < 0)
		die("kallsyms_load", r);
	if (aggregate_new(&a) < 0)
		die("aggregate_new", -ENOMEM);
	st->pid = st->tid = self;
	st->n_frames = 4;
	for (int i = 0; i < 4; i++)
		st->frames[i] = (struct agg_frame){.addr = KBASE + 0x1000 * i + 0x10 * i + 5,
						   .map_id = AGG_MAP_KERNEL,
						   .kind = AGG_FRAME_KERNEL, .is_return = i != 0};
	if (aggregate_add(a, st, 1) < 0)
		die("aggregate_add", -ENOMEM);
	r = raw_writer_add_ksyms(w, a, ks);
	if (r < 0)
		die("writing the KSYMS record", r);
	aggregate_free(a);
	kallsyms_free(ks);
	free(st);
}

static uint8_t *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0)
		die(path, errno);
	b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
		die(path, EIO);
	fclose(f);
	*ret_len = (size_t)n;
	return b;
}

/* A seed: fuzz-raw's flag byte, then the file. */
static void spit(const char *dir, const char *name, uint8_t flags, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&flags, 1, 1, f) != 1 || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die(path, errno);
}

int main(int argc, char **argv)
{
	struct raw_header h = {
	    .record_version = PROFD_RECORD_VERSION,
	    .e_machine = raw_host_e_machine(),
	    .freq_hz = 99,
	    .stack_bytes = STACK_COPY,
	};
	struct raw_end end = {.records = 8, .samples = 5, .lost = 1, .duration_ns = 1000000};
	struct proc_table *t;
	struct timespec ts;
	char path[4096];
	uint8_t *b;
	size_t n;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: seed-raw DIR\n");
		return 2;
	}
	self = (uint32_t)getpid();
	clock_gettime(CLOCK_REALTIME, &ts);
	h.time_ns = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	h.mono_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	snprintf(path, sizeof(path), "%s/.capture", argv[1]);
	r = raw_writer_new(path, &h, &w);
	if (r < 0)
		die(path, r);
	r = proc_table_new("/proc", &t);
	if (r < 0)
		die("proc_table_new", r);

	/* In the order the recorder writes them: a process's mappings before its samples. */
	add_process(t);
	task(PROFD_REC_FORK, self, 1);
	(void)depth1(1);
	sample_here(PROFD_SAMPLE_KERNEL_THREAD, 5);
	task(PROFD_REC_EXEC, self, 0);
	add_process(t); /* after an exec, the new image's mappings */
	(void)depth3(2);
	task(PROFD_REC_EXIT, self + 1, 0);
	add_ksyms(argv[1]);
	r = raw_writer_add_end(w, &end);
	if (r >= 0)
		r = raw_writer_commit(w);
	if (r < 0)
		die("writing the capture", r);
	raw_writer_free(w);
	proc_table_free(t);

	/* Damaged copies: what the reader must report, with the records before the damage kept. */
	b = slurp(path, &n);
	unlink(path);
	spit(argv[1], "capture", 0, b, n);
	spit(argv[1], "cut-mid-record", 0, b, n - 7);
	spit(argv[1], "no-end", 0, b, n - (RAW_RECORD_HEADER_SIZE + 32));
	spit(argv[1], "header-only", 0, b, RAW_HEADER_SIZE);
	b[n / 2] ^= 0x5a;
	spit(argv[1], "bad-crc", FUZZ_RAW_KEEP_CRC, b, n);
	free(b);
	return 0;
}

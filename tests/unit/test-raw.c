// SPDX-License-Identifier: MIT
/* Raw capture format: round trip, damage found at the right offset, hostile lengths; static procs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bpf/profd.h"
#include "common/macro.h"
#include "pipeline/aggregate.h"
#include "pipeline/proc.h"
#include "sources/raw.h"
#include "symbolize/symbolize.h"

static char dir[] = "/tmp/profd-test-raw-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

TestSuite(raw, .init = setup, .fini = teardown);

static char *path_in(const char *name)
{
	char *p;

	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static const struct raw_header hdr = {
    .record_version = PROFD_RECORD_VERSION,
    .e_machine = PROFD_EM_X86_64,
    .freq_hz = 99,
    .stack_bytes = 32768,
    .time_ns = 1700000000123456789ll,
    .mono_ns = 4242,
};

/* A sample record with `stack` bytes of a recognizable pattern. */
static void *make_sample(uint32_t pid, size_t stack, size_t *ret_len)
{
	size_t len = sizeof(struct profd_sample) + stack;
	struct profd_sample *s = calloc(1, len);

	cr_assert_not_null(s);
	s->hdr = (struct profd_rec_hdr){PROFD_REC_SAMPLE, PROFD_RECORD_VERSION, (uint32_t)len};
	s->pid = s->tid = pid;
	s->e_machine = PROFD_EM_X86_64;
	s->regs[0] = 0x401000 + pid;
	s->regs[1] = 0x7ffc0000;
	s->ustack_len = (uint32_t)stack;
	strcpy(s->comm, "worker");
	for (size_t i = 0; i < stack; i++)
		((uint8_t *)(s + 1))[i] = (uint8_t)(i * 7 + pid);
	*ret_len = len;
	return s;
}

struct written {
	uint64_t offsets[8]; /* file offset of each record written, in order */
	size_t n;
};

/*
 * RING sample, PROCESS, RING sample, RING exec, KSYMS, END. Returns the record offsets.
 */
static void write_capture(const char *path, struct written *w)
{
	struct raw_writer *rw;
	struct dso d = {.refs = 1,
			.dev = 0x801,
			.ino = 77,
			.e_machine = 62,
			.build_id_len = 20,
			.path = "/usr/bin/app"};
	struct mapping maps[] = {
	    {.start = 0x400000,
	     .end = 0x402000,
	     .pgoff = 0x1000,
	     .prot = PROT_READ | PROT_EXEC,
	     .kind = MAPPING_FILE,
	     .dso = &d,
	     .name = "/usr/bin/app",
	     .is_exe = true},
	    {.start = 0x7f0000000000,
	     .end = 0x7f0000001000,
	     .prot = PROT_READ | PROT_EXEC,
	     .kind = MAPPING_ANON},
	    {.start = 0x7fff00000000,
	     .end = 0x7fff00002000,
	     .prot = PROT_READ | PROT_EXEC,
	     .kind = MAPPING_VDSO,
	     .name = "[vdso]",
	     .deleted = true},
	};
	struct proc p = {.pid = 1234, .maps = maps, .n_maps = 3};
	struct profd_task_event exec = {.hdr = {PROFD_REC_EXEC, PROFD_RECORD_VERSION, sizeof(exec)},
					.pid = 1234};
	struct aggregate *a;
	struct kallsyms *ks;
	char *ksp = path_in("kallsyms");
	FILE *f = fopen(ksp, "w");
	struct {
		struct agg_stack s;
		struct agg_frame fr[3];
	} st = {};
	size_t len;
	void *rec;

	for (int i = 0; i < 20; i++)
		d.build_id[i] = (uint8_t)(0xa0 + i);
	cr_assert_not_null(f);
	fprintf(f, "ffffffff81000000 T _stext\nffffffff81001000 T do_work\n"
		   "ffffffff81002000 t helper\t[mod]\nffffffff81003000 T unused\n");
	fclose(f);
	cr_assert_eq(kallsyms_load(ksp, &ks), 0);
	cr_assert_eq(aggregate_new(&a), 0);
	st.s.pid = 1234;
	st.s.n_frames = 3;
	st.s.frames[0] = (struct agg_frame){ .addr = 0xffffffff81001010,
					     .map_id = AGG_MAP_KERNEL,
					     .kind = AGG_FRAME_KERNEL };
	st.s.frames[1] = (struct agg_frame){ .addr = 0xffffffff81002001,
					     .map_id = AGG_MAP_KERNEL,
					     .kind = AGG_FRAME_KERNEL,
					     .is_return = 1 };
	st.s.frames[2] = (struct agg_frame){ .addr = 0x401000, .map_id = AGG_MAP_NONE };
	cr_assert_eq(aggregate_add(a, &st.s, 1), 0);

	cr_assert_eq(raw_writer_new(path, &hdr, &rw), 0);
	w->n = 0;
#define MARK() (w->offsets[w->n++] = raw_writer_bytes(rw))
	MARK();
	rec = make_sample(1234, 100, &len);
	cr_assert_eq(raw_writer_add(rw, RAW_REC_RING, rec, len), 0);
	free(rec);
	MARK();
	cr_assert_eq(raw_writer_add_process(rw, &p, "app"), 0);
	MARK();
	rec = make_sample(1234, 4000, &len);
	cr_assert_eq(raw_writer_add(rw, RAW_REC_RING, rec, len), 0);
	free(rec);
	MARK();
	cr_assert_eq(raw_writer_add(rw, RAW_REC_RING, &exec, sizeof(exec)), 0);
	MARK();
	cr_assert_eq(raw_writer_add_ksyms(rw, a, ks), 0);
	MARK();
	cr_assert_eq(raw_writer_add_end(rw, &(struct raw_end){3, 2, 5, 999}), 0);
#undef MARK
	cr_assert_eq(raw_writer_error(rw), 0);
	cr_assert_eq(raw_writer_commit(rw), 0);
	raw_writer_free(rw);
	aggregate_free(a);
	kallsyms_free(ks);
	free(ksp);
}

Test(raw, round_trip)
{
	char *path = path_in("cap.raw");
	struct written w;
	struct raw_reader *r;
	struct raw_record rec;
	const struct raw_header *h;
	uint32_t types[8];
	size_t n = 0;
	int ret;

	write_capture(path, &w);
	cr_assert_eq(raw_reader_open(path, &r), 0);
	h = raw_reader_header(r);
	cr_assert_eq(h->version, RAW_VERSION);
	cr_assert_eq(h->record_version, PROFD_RECORD_VERSION);
	cr_assert_eq(h->e_machine, PROFD_EM_X86_64);
	cr_assert_eq(h->freq_hz, 99);
	cr_assert_eq(h->stack_bytes, 32768);
	cr_assert_eq(h->time_ns, hdr.time_ns);
	cr_assert_eq(h->mono_ns, 4242);

	while ((ret = raw_reader_next(r, &rec)) > 0) {
		cr_assert_lt(n, 8);
		cr_assert_eq(rec.offset, w.offsets[n], "record %zu at %lu, written at %lu", n,
			     (unsigned long)rec.offset, (unsigned long)w.offsets[n]);
		cr_assert_eq((uintptr_t)rec.data % 8, 0);
		types[n++] = rec.type;
		if (rec.type == RAW_REC_RING && n == 3) {
			const struct profd_sample *s = rec.data;
			const uint8_t *stack = (const uint8_t *)(s + 1);

			cr_assert_eq(rec.len, sizeof(*s) + 4000);
			cr_assert_eq(s->ustack_len, 4000);
			cr_assert_str_eq(s->comm, "worker");
			for (size_t i = 0; i < 4000; i++)
				cr_assert_eq(stack[i], (uint8_t)(i * 7 + 1234));
		} else if (rec.type == RAW_REC_PROCESS) {
			struct raw_process p;

			cr_assert_eq(raw_parse_process(rec.data, rec.len, &p), 0);
			cr_assert_eq(p.pid, 1234);
			cr_assert_str_eq(p.comm, "app");
			cr_assert_eq(p.n_maps, 3);
			cr_assert_str_eq(p.maps[0].path, "/usr/bin/app");
			cr_assert_eq(p.maps[0].start, 0x400000);
			cr_assert_eq(p.maps[0].end, 0x402000);
			cr_assert_eq(p.maps[0].pgoff, 0x1000);
			cr_assert_eq(p.maps[0].dev, 0x801);
			cr_assert_eq(p.maps[0].ino, 77);
			cr_assert_eq(p.maps[0].e_machine, 62);
			cr_assert_eq(p.maps[0].prot, PROT_READ | PROT_EXEC);
			cr_assert(p.maps[0].is_exe);
			cr_assert_eq(p.maps[0].build_id_len, 20);
			cr_assert_eq(p.maps[0].build_id[19], 0xa0 + 19);
			cr_assert_null(p.maps[1].path);
			cr_assert_eq(p.maps[1].build_id_len, 0);
			cr_assert_str_eq(p.maps[2].path, "[vdso]");
			cr_assert(p.maps[2].deleted);
			cr_assert_not(p.maps[2].is_exe);
			raw_process_done(&p);
		} else if (rec.type == RAW_REC_KSYMS) {
			struct raw_ksym *syms;
			size_t k;

			cr_assert_eq(raw_parse_ksyms(rec.data, rec.len, &syms, &k), 0);
			/* Only the symbols frames hit; the return address looked up at addr - 1. */
			cr_assert_eq(k, 2);
			cr_assert_eq(syms[0].addr, 0xffffffff81001000ull);
			cr_assert_str_eq(syms[0].name, "do_work");
			cr_assert_eq(syms[1].addr, 0xffffffff81002000ull);
			cr_assert_str_eq(syms[1].name, "helper [mod]");
			free(syms);
		} else if (rec.type == RAW_REC_END) {
			struct raw_end e;

			cr_assert_eq(raw_parse_end(rec.data, rec.len, &e), 0);
			cr_assert_eq(e.records, 3);
			cr_assert_eq(e.samples, 2);
			cr_assert_eq(e.lost, 5);
			cr_assert_eq(e.duration_ns, 999);
		}
	}
	cr_assert_eq(ret, 0, "clean end expected: %s", raw_reader_error(r));
	cr_assert_eq(n, 6);
	cr_assert_eq(types[0], RAW_REC_RING);
	cr_assert_eq(types[1], RAW_REC_PROCESS);
	cr_assert_eq(types[3], RAW_REC_RING);
	cr_assert_eq(types[4], RAW_REC_KSYMS);
	cr_assert_eq(types[5], RAW_REC_END);
	raw_reader_free(r);
	free(path);
}

static uint8_t *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc(n);
	cr_assert_eq(fread(b, 1, n, f), (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
	return b;
}

static void spit(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* Read all records; returns the final status and how many records came before it. */
static int read_all(const char *path, size_t *ret_n, uint64_t *ret_err_off, char *msg, size_t msz)
{
	struct raw_reader *r;
	struct raw_record rec;
	int ret;

	*ret_n = 0;
	ret = raw_reader_open(path, &r);
	if (ret < 0) {
		if (r && ret == -EBADMSG) {
			snprintf(msg, msz, "%s", raw_reader_error(r));
			raw_reader_free(r);
		}
		return ret;
	}
	while ((ret = raw_reader_next(r, &rec)) > 0)
		(*ret_n)++;
	*ret_err_off = raw_reader_error_offset(r);
	snprintf(msg, msz, "%s", raw_reader_error(r));
	/* Errors are sticky. */
	if (ret < 0)
		cr_assert_eq(raw_reader_next(r, &rec), ret);
	raw_reader_free(r);
	return ret;
}

Test(raw, crc_corruption_found_at_its_record)
{
	char *path = path_in("cap.raw"), *bad = path_in("bad.raw"), msg[256], want[64];
	struct written w;
	uint8_t *b;
	size_t len, n;
	uint64_t off;

	write_capture(path, &w);
	b = slurp(path, &len);
	/* One bit in the middle of the third record's payload (the 4000-byte stack). */
	b[w.offsets[2] + RAW_RECORD_HEADER_SIZE + 2000] ^= 0x10;
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert_eq(n, 2, "the two records before the damage are kept");
	cr_assert_eq(off, w.offsets[2]);
	snprintf(want, sizeof(want), "byte offset %lu", (unsigned long)w.offsets[2]);
	cr_assert(strstr(msg, want) && strstr(msg, "CRC"), "message: %s", msg);

	/* A flipped stored CRC is found the same way. */
	b[w.offsets[2] + RAW_RECORD_HEADER_SIZE + 2000] ^= 0x10;
	b[w.offsets[1] + 8] ^= 1;
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert_eq(n, 1);
	cr_assert_eq(off, w.offsets[1]);

	/* Header damage: its CRC covers every field. */
	b[w.offsets[1] + 8] ^= 1;
	b[16] ^= 1; /* freq_hz */
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert(strstr(msg, "header"), "%s", msg);
	free(b);
	free(path);
	free(bad);
}

Test(raw, truncation_keeps_earlier_records)
{
	char *path = path_in("cap.raw"), *cut = path_in("cut.raw"), msg[256];
	struct written w;
	uint8_t *b;
	size_t len, n;
	uint64_t off;

	write_capture(path, &w);
	b = slurp(path, &len);
	/* Every cut inside the records: earlier records are kept, the cut one is named. */
	for (size_t at = w.offsets[0] + 1; at < len; at += 37) {
		size_t whole = 0;
		bool boundary = false;

		for (size_t i = 0; i < 6; i++) {
			uint64_t end = i + 1 < 6 ? w.offsets[i + 1] : len;

			if (end <= at)
				whole = i + 1;
			boundary |= end == at;
		}
		spit(cut, b, at);
		int ret = read_all(cut, &n, &off, msg, sizeof(msg));

		cr_assert_eq(n, whole, "cut at %zu: %zu records, expected %zu", at, n, whole);
		if (boundary) {
			cr_assert_eq(ret, 0);
		} else {
			cr_assert_eq(ret, -EBADMSG, "cut at %zu", at);
			cr_assert_eq(off, w.offsets[whole], "cut at %zu", at);
			cr_assert(strstr(msg, "truncated"), "%s", msg);
		}
	}
	/* A header cut short. */
	spit(cut, b, 40);
	cr_assert_eq(read_all(cut, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert(strstr(msg, "truncated header"), "%s", msg);
	free(b);
	free(path);
	free(cut);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

Test(raw, absurd_lengths_rejected)
{
	char *path = path_in("cap.raw"), *bad = path_in("bad.raw"), msg[256];
	struct written w;
	uint8_t *b;
	size_t len, n;
	uint64_t off;

	write_capture(path, &w);
	b = slurp(path, &len);
	/* 4 GiB and 60 MiB claimed by the second record: refused without allocating them. */
	put32(b + w.offsets[1] + 4, 0xffffffffu);
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert_eq(n, 1);
	cr_assert_eq(off, w.offsets[1]);
	cr_assert(strstr(msg, "over the limit"), "%s", msg);
	put32(b + w.offsets[1] + 4, 60u << 20);
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert(strstr(msg, "truncated"), "%s", msg);
	/* Type 0 (a zeroed region) is damage. */
	memset(b + w.offsets[1], 0, 12);
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EBADMSG);
	cr_assert_eq(off, w.offsets[1]);
	free(b);

	/* Not a capture; a later version. */
	spit(bad, "PERFILE2xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 64);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -ENOEXEC);
	b = slurp(path, &len);
	b[8] = 2;
	spit(bad, b, len);
	cr_assert_eq(read_all(bad, &n, &off, msg, sizeof(msg)), -EPROTONOSUPPORT);
	free(b);
	free(path);
	free(bad);
}

Test(raw, hostile_payloads)
{
	uint8_t p[24 + 52 + 8] = {};
	struct raw_process proc;
	struct raw_ksym *syms;
	struct raw_end e;
	size_t n;

	/* PROCESS: one entry with an 8-byte path. */
	put32(p, 7);
	put32(p + 4, 1);
	memcpy(p + 24, &(uint64_t){0x1000}, 8);
	memcpy(p + 32, &(uint64_t){0x2000}, 8);
	p[24 + 48] = 8;
	memcpy(p + 24 + 52, "/bin/abc", 8);
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), 0);
	cr_assert_str_eq(proc.maps[0].path, "/bin/abc");
	raw_process_done(&proc);
	/* Counts and lengths that do not fit the payload. */
	put32(p + 4, 0x7fffffff);
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), -EBADMSG);
	put32(p + 4, 1);
	p[24 + 48] = 9;
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), -EBADMSG);
	p[24 + 48] = 7; /* leaves a stray byte */
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), -EBADMSG);
	p[24 + 48] = 8;
	p[24 + 50] = 200; /* build-id too long */
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), -EBADMSG);
	p[24 + 50] = 0;
	p[24 + 52 + 3] = '\0'; /* NUL inside a path */
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), -EBADMSG);
	p[24 + 52 + 3] = 'x';
	memcpy(p + 32, &(uint64_t){0x1000}, 8); /* end == start */
	cr_assert_eq(raw_parse_process(p, sizeof(p), &proc), -EBADMSG);
	cr_assert_eq(raw_parse_process(p, 10, &proc), -EBADMSG);

	/* KSYMS: names that would forge kallsyms lines are refused. */
	uint8_t k[8 + 10 + 6] = {};
	put32(k, 1);
	memcpy(k + 8, &(uint64_t){0xffffffff81000000ull}, 8);
	k[16] = 6;
	memcpy(k + 18, "a_func", 6);
	cr_assert_eq(raw_parse_ksyms(k, sizeof(k), &syms, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(syms[0].name, "a_func");
	free(syms);
	memcpy(k + 18, "a\nfunc", 6);
	cr_assert_eq(raw_parse_ksyms(k, sizeof(k), &syms, &n), -EBADMSG);
	memcpy(k + 18, "a func", 6);
	cr_assert_eq(raw_parse_ksyms(k, sizeof(k), &syms, &n), -EBADMSG);
	memcpy(k + 18, "a [md]", 6);
	cr_assert_eq(raw_parse_ksyms(k, sizeof(k), &syms, &n), 0);
	free(syms);
	put32(k, 100000);
	cr_assert_eq(raw_parse_ksyms(k, sizeof(k), &syms, &n), -EBADMSG);
	cr_assert_eq(raw_parse_end(k, 8, &e), -EBADMSG);
}

Test(raw, uncommitted_writer_leaves_nothing)
{
	char *path = path_in("never.raw"), cmd[256];
	struct raw_writer *w;
	struct stat st;

	cr_assert_eq(raw_writer_new(path, &hdr, &w), 0);
	cr_assert_eq(raw_writer_add(w, RAW_REC_END, "12345678", 8), 0);
	raw_writer_free(w);
	cr_assert_neq(stat(path, &st), 0);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", dir);
	cr_assert_eq(system(cmd), 0, "a temporary file was left in %s", dir);
	cr_assert_eq(raw_writer_new("/nonexistent-dir/x.raw", &hdr, &w), -ENOENT);
	free(path);
}

/* ---- the process table fed from recorded mappings ---------------------------------------------
 */

struct open_log {
	int calls;
	char last[256];
};

static int open_self(void *userdata, const struct proc_static_map *m)
{
	struct open_log *l = userdata;

	l->calls++;
	snprintf(l->last, sizeof(l->last), "%s", m->path);
	/* Whatever the recorded path, hand out our own binary. */
	return open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
}

static int open_none(void *userdata, const struct proc_static_map *m)
{
	return -ENOENT;
}

Test(raw, static_process_table)
{
	struct proc_table *t;
	struct open_log log = {};
	struct proc *p;
	const struct mapping *m;
	uint8_t bid[4] = {1, 2, 3, 4};
	struct proc_static_map maps[] = {
	    /* Unsorted, a non-executable one, an overlapping one. */
	    {.start = 0x7000,
	     .end = 0x8000,
	     .prot = PROT_READ | PROT_EXEC,
	     .path = "/lib/b.so",
	     .dev = 1,
	     .ino = 2},
	    {.start = 0x1000,
	     .end = 0x3000,
	     .prot = PROT_READ | PROT_EXEC,
	     .path = "/bin/a",
	     .dev = 1,
	     .ino = 1,
	     .is_exe = true},
	    {.start = 0x3000,
	     .end = 0x4000,
	     .prot = PROT_READ,
	     .path = "/bin/a",
	     .dev = 1,
	     .ino = 1},
	    {.start = 0x2000, .end = 0x5000, .prot = PROT_EXEC, .path = "/bin/overlap"},
	    {.start = 0x9000, .end = 0xa000, .prot = PROT_READ | PROT_EXEC},
	};

	cr_assert_eq(proc_table_new(NULL, &t), 0);
	cr_assert_eq(proc_table_add_static(t, 10, maps, 1), -EINVAL, "not static yet");
	cr_assert_eq(proc_table_set_static(t, open_self, &log), 0);
	cr_assert_eq(proc_table_get(t, getpid(), &p), -ESRCH, "/proc must not be read");
	cr_assert_eq(proc_table_add_static(t, 10, maps, ARRAY_SIZE(maps)), 0);
	cr_assert_eq(proc_table_get(t, 10, &p), 0);
	cr_assert_eq(p->n_maps, 3);
	cr_assert_eq(p->maps[0].start, 0x1000);
	cr_assert(p->maps[0].is_exe);
	cr_assert_eq(p->maps[1].start, 0x7000);
	cr_assert_eq(p->maps[2].kind, MAPPING_ANON);
	cr_assert_eq(log.calls, 2);
	cr_assert(p->maps[0].dso && p->maps[0].dso->fd >= 0 && p->maps[0].dso->is_elf);
	cr_assert_null(proc_find_mapping(t, p, 0x6000));
	m = proc_find_mapping(t, p, 0x7800);
	cr_assert_not_null(m);
	cr_assert_str_eq(m->name, "/lib/b.so");

	/* A second process mapping the same file shares it: no new open. */
	cr_assert_eq(proc_table_add_static(t, 11, maps, 2), 0);
	cr_assert_eq(log.calls, 2);
	cr_assert_eq(proc_table_n_procs(t), 2);

	/* exec empties the mappings and reads nothing. */
	proc_table_exec(t, 10);
	cr_assert_eq(proc_table_get(t, 10, &p), 0);
	cr_assert_eq(p->n_maps, 0);
	proc_table_remove(t, 10);
	cr_assert_eq(proc_table_get(t, 10, &p), -ESRCH);
	proc_table_free(t);

	/* A file that cannot be found keeps the recorded build-id for the profile. */
	cr_assert_eq(proc_table_new(NULL, &t), 0);
	cr_assert_eq(proc_table_set_static(t, open_none, NULL), 0);
	maps[0].build_id = bid;
	maps[0].build_id_len = sizeof(bid);
	maps[0].e_machine = 62;
	cr_assert_eq(proc_table_add_static(t, 12, maps, 1), 0);
	cr_assert_eq(proc_table_get(t, 12, &p), 0);
	cr_assert_eq(p->maps[0].dso->fd, -1);
	cr_assert_str_eq(p->maps[0].dso->build_id_hex, "01020304");
	cr_assert_eq(p->maps[0].dso->e_machine, 62);
	proc_table_free(t);

	/* Only an empty table can switch. */
	cr_assert_eq(proc_table_new(NULL, &t), 0);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	cr_assert_eq(proc_table_set_static(t, open_none, NULL), -EBUSY);
	proc_table_free(t);
}

static void count_maps(void *userdata, const struct proc *p)
{
	(*(int *)userdata)++;
}

Test(raw, observer_sees_maps_reads)
{
	struct proc_table *t;
	struct proc *p;
	int n = 0;

	cr_assert_eq(proc_table_new(NULL, &t), 0);
	proc_table_set_observer(t, count_maps, &n);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(proc_table_get(t, getpid(), &p), 0);
	cr_assert_eq(n, 1, "a known process is not read again");
	proc_table_exec(t, getpid());
	cr_assert_eq(n, 2);
	proc_table_free(t);
}

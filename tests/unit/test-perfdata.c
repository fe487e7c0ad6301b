// SPDX-License-Identifier: MIT
/*
 * perf.data reader on a real recording: `perf record -e cpu-clock --call-graph dwarf` of the
 * frame-pointer-free C++ workload, checked against what perf itself reports; then the same file
 * truncated and corrupted. Skips when perf is missing or may not sample.
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

#include "sources/perfdata.h"

static char dir[] = "/tmp/profd-test-perfdata-XXXXXX";
static char data_path[256];
static char workload[512];

static void setup(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char cmd[1024];
	struct stat st;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(workload, sizeof(workload), "%s/workloads/cxx_nofp", build);
	snprintf(data_path, sizeof(data_path), "%s/perf.data", dir);
	if (system("perf --version >/dev/null 2>&1") != 0)
		cr_skip_test("perf is not installed");
	cr_assert_eq(stat(workload, &st), 0, "%s missing: run 'make test-bins'", workload);
	snprintf(cmd, sizeof(cmd),
		 "perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -o %s -- %s 1 "
		 ">/dev/null 2>&1",
		 data_path, workload);
	if (system(cmd) != 0 || stat(data_path, &st) != 0)
		cr_skip_test("perf record cannot sample here (perf_event_paranoid?)");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

TestSuite(perfdata, .init = setup, .fini = teardown, .timeout = 60);

/* A number perf prints: the first integer after `key` in the command's output. */
static long perf_number(const char *cmd, const char *key)
{
	FILE *f = popen(cmd, "r");
	char line[1024];
	long v = -1;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, key);

		if (p && v < 0)
			v = strtol(p + strlen(key), NULL, 10);
	}
	pclose(f);
	return v;
}

struct tally {
	uint64_t samples, with_stack, pc_mapped, mmaps, exe_mmaps, comms, last_time;
	bool ordered;
	uint64_t exe_start, exe_end; /* the workload's executable mapping */
	char comm[32];
};

static int count(void *userdata, const struct perfdata_event *ev)
{
	struct tally *t = userdata;

	if (ev->time) {
		if (ev->time < t->last_time)
			t->ordered = false;
		t->last_time = ev->time;
	}
	switch (ev->type) {
	case PERFDATA_EV_SAMPLE:
		t->samples++;
		if (ev->sample.has_user_regs && ev->sample.stack_len > 0 && ev->sample.regs.sp)
			t->with_stack++;
		if (ev->sample.regs.pc >= t->exe_start && ev->sample.regs.pc < t->exe_end)
			t->pc_mapped++;
		break;
	case PERFDATA_EV_MMAP:
		t->mmaps++;
		if (strstr(ev->mmap.path, "cxx_nofp") && (ev->mmap.prot & PROT_EXEC)) {
			t->exe_mmaps++;
			t->exe_start = ev->mmap.start;
			t->exe_end = ev->mmap.start + ev->mmap.len;
		}
		break;
	case PERFDATA_EV_COMM:
		t->comms++;
		snprintf(t->comm, sizeof(t->comm), "%s", ev->comm.comm);
		break;
	default:
		break;
	}
	return 0;
}

Test(perfdata, real_recording_matches_perf)
{
	struct perfdata *pd;
	const struct perfdata_info *info;
	struct tally t = {.ordered = true};
	const uint8_t *bid;
	char cmd[512];
	long perf_samples, script_samples;

	cr_assert_eq(perfdata_open(data_path, &pd), 0);
	info = perfdata_info(pd);
	cr_assert(info->arch_known);
	cr_assert_eq(info->e_machine, 62 /* EM_X86_64 */);
	cr_assert(info->freq);
	cr_assert_eq(info->sample_freq_or_period, 999);
	cr_assert(info->sample_type & (1u << 12), "REGS_USER");
	cr_assert(info->sample_type & (1u << 13), "STACK_USER");
	cr_assert_eq(info->sample_stack_user, 16384);
	cr_assert_eq(info->sample_regs_user & 0x1c0, 0x1c0, "IP, SP and BP are recorded");
	cr_assert_gt(perfdata_build_id(pd, "/usr/lib/x86_64-linux-gnu/libc.so.6", &bid) +
			 perfdata_build_id(pd, "/lib/x86_64-linux-gnu/libc.so.6", &bid),
		     0, "HEADER_BUILD_ID has libc");

	cr_assert_eq(perfdata_read(pd, count, &t), 0, "%s", perfdata_error(pd));
	snprintf(cmd, sizeof(cmd), "perf report --stats -i %s 2>/dev/null", data_path);
	perf_samples = perf_number(cmd, "SAMPLE events:");
	snprintf(cmd, sizeof(cmd), "perf script -F pid -i %s 2>/dev/null | wc -l", data_path);
	script_samples = perf_number(cmd, "");
	cr_assert_gt(t.samples, 200, "1 s at 999 Hz: %lu samples", (unsigned long)t.samples);
	cr_assert_eq((long)t.samples, perf_samples, "perf report --stats: %ld", perf_samples);
	cr_assert_eq((long)t.samples, script_samples, "perf script: %ld", script_samples);
	cr_assert_eq(perfdata_stats(pd)->samples, t.samples);
	cr_assert_eq(perfdata_stats(pd)->malformed, 0);
	cr_assert(t.ordered, "events are delivered in time order");
	cr_assert_geq(t.exe_mmaps, 1);
	cr_assert_str_eq(t.comm, "cxx_nofp");
	/*
	 * Every sample carries user regs and stack, but for the few perf takes while the process
	 * exits, after its memory is gone (no user context left: perf records ABI_NONE).
	 */
	cr_assert_geq(t.with_stack + 3, t.samples, "samples with user regs and stack: %lu of %lu",
		      (unsigned long)t.with_stack, (unsigned long)t.samples);
	/* Most samples are in the workload's own code (sort, hash map). */
	cr_assert_gt(t.pc_mapped * 2, t.samples, "pc in the executable: %lu of %lu",
		     (unsigned long)t.pc_mapped, (unsigned long)t.samples);
	perfdata_free(pd);
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
	cr_assert_not_null(b);
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

struct stack_check {
	const uint8_t *file;
	size_t size;
	uint64_t samples, checked;
};

/*
 * The reader reads a sample's fields and only the stack bytes the kernel copied (dyn_size):
 * what it hands out must be exactly the file's bytes, as long as the file says.
 */
static int check_stack(void *userdata, const struct perfdata_event *ev)
{
	struct stack_check *c = userdata;
	const uint8_t *e = c->file + ev->offset, *at;
	uint16_t esize;
	uint64_t size, dyn;

	if (ev->type != PERFDATA_EV_SAMPLE)
		return 0;
	c->samples++;
	cr_assert_leq(ev->offset + 8, c->size);
	memcpy(&esize, e + 6, 2);
	cr_assert_leq(ev->offset + esize, c->size);
	if (!ev->sample.stack_len)
		return 0;
	at = memmem(e, esize, ev->sample.stack, ev->sample.stack_len);
	cr_assert_not_null(at, "sample at %lu: stack bytes not in its event",
			   (unsigned long)ev->offset);
	/* PERF_SAMPLE_STACK_USER: u64 size, data[size], u64 dyn_size. */
	memcpy(&size, at - 8, 8);
	cr_assert_leq((size_t)(at - e) + size + 8, esize);
	memcpy(&dyn, at + size, 8);
	cr_assert_eq(ev->sample.stack_len, dyn < size ? dyn : size, "at %lu",
		     (unsigned long)ev->offset);
	c->checked++;
	return 0;
}

Test(perfdata, stack_bytes_are_the_files)
{
	struct stack_check c = {};
	struct perfdata *pd;
	uint8_t *file;

	file = slurp(data_path, &c.size);
	c.file = file;
	cr_assert_eq(perfdata_open(data_path, &pd), 0);
	cr_assert_eq(perfdata_read(pd, check_stack, &c), 0, "%s", perfdata_error(pd));
	cr_assert_gt(c.samples, 200);
	/* As in real_recording_matches_perf: perf may take a few samples without a user stack. */
	cr_assert_geq(c.checked + 3, c.samples, "samples with their stack: %lu of %lu",
		      (unsigned long)c.checked, (unsigned long)c.samples);
	perfdata_free(pd);
	free(file);
}

Test(perfdata, truncated_file_keeps_samples_before_the_cut)
{
	struct perfdata *pd;
	struct tally full = {.ordered = true}, part = {.ordered = true};
	char cut[300], want[64];
	uint64_t data_off, data_size;
	uint8_t *b;
	size_t len, at;

	cr_assert_eq(perfdata_open(data_path, &pd), 0);
	cr_assert_eq(perfdata_read(pd, count, &full), 0);
	data_off = perfdata_info(pd)->data_offset;
	data_size = perfdata_info(pd)->data_size;
	perfdata_free(pd);

	b = slurp(data_path, &len);
	snprintf(cut, sizeof(cut), "%s/cut.data", dir);
	/* Cut in the middle of the data section, most likely inside a (16 KiB-stack) sample. */
	at = data_off + data_size / 2 + 5;
	spit(cut, b, at);
	cr_assert_eq(perfdata_open(cut, &pd), 0);
	cr_assert_eq(perfdata_read(pd, count, &part), -EBADMSG);
	cr_assert_gt(part.samples, full.samples / 4, "%lu of %lu kept", (unsigned long)part.samples,
		     (unsigned long)full.samples);
	cr_assert_lt(part.samples, full.samples);
	cr_assert_leq(perfdata_error_offset(pd), at);
	cr_assert_geq(perfdata_error_offset(pd), data_off);
	snprintf(want, sizeof(want), "byte offset %lu", (unsigned long)perfdata_error_offset(pd));
	cr_assert(strstr(perfdata_error(pd), want) && strstr(perfdata_error(pd), "truncated"), "%s",
		  perfdata_error(pd));
	perfdata_free(pd);

	/* Cut inside the file header and the attributes: refused, offset named, no crash. */
	for (at = 0; at < data_off + 64; at += 7) {
		int r;

		spit(cut, b, at);
		pd = NULL;
		r = perfdata_open(cut, &pd);
		if (r == 0) {
			struct tally t = {};

			r = perfdata_read(pd, count, &t);
			cr_assert_eq(t.samples, 0);
		}
		cr_assert_lt(r, 0, "cut at %zu accepted", at);
		perfdata_free(pd);
	}
	free(b);
}

Test(perfdata, corrupt_event_size_is_damage)
{
	struct perfdata *pd;
	struct tally t = {.ordered = true};
	uint64_t data_off, off;
	char bad[300];
	uint8_t *b;
	size_t len;
	int events = 0;

	b = slurp(data_path, &len);
	cr_assert_eq(perfdata_open(data_path, &pd), 0);
	data_off = perfdata_info(pd)->data_offset;
	perfdata_free(pd);
	/* Walk 20 events in, then zero that event's size. */
	for (off = data_off; events < 20; events++) {
		uint16_t size;

		memcpy(&size, b + off + 6, 2);
		off += size;
	}
	memset(b + off + 6, 0, 2);
	snprintf(bad, sizeof(bad), "%s/bad.data", dir);
	spit(bad, b, len);
	cr_assert_eq(perfdata_open(bad, &pd), 0);
	cr_assert_eq(perfdata_read(pd, count, &t), -EBADMSG);
	cr_assert_eq(perfdata_error_offset(pd), off);
	cr_assert_eq(perfdata_stats(pd)->events, 20);
	perfdata_free(pd);

	/* Garbage inside events (sane sizes): parsed with bounds, never trusted. */
	free(b);
	b = slurp(data_path, &len);
	srand(1);
	for (int round = 0; round < 20; round++) {
		uint8_t *m = malloc(len);

		memcpy(m, b, len);
		for (int i = 0; i < 200; i++) {
			size_t at = data_off + (size_t)rand() % (len - data_off);

			m[at] = (uint8_t)rand();
		}
		spit(bad, m, len);
		free(m);
		pd = NULL;
		if (perfdata_open(bad, &pd) == 0) {
			struct tally x = {};

			(void)perfdata_read(pd, count, &x);
		}
		perfdata_free(pd);
	}
	free(b);
}

Test(perfdata, not_perf_data)
{
	struct perfdata *pd = NULL;
	char p[300];

	snprintf(p, sizeof(p), "%s/junk", dir);
	spit(p, "PROFDRAW but not really anything at all, just text..........", 60);
	cr_assert_eq(perfdata_open(p, &pd), -ENOEXEC);
	/* Pipe mode: magic then a 16-byte header. */
	spit(p, "PERFILE2\x10\0\0\0\0\0\0\0", 16);
	cr_assert_eq(perfdata_open(p, &pd), -EOPNOTSUPP);
}

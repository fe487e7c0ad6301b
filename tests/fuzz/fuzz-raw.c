// SPDX-License-Identifier: MIT
/*
 * Raw captures (`profd record --raw`, docs/raw-format.md) read the way `profd convert` reads
 * them: raw_reader_open() and raw_reader_next() over the whole file, each record's payload
 * through its parser (raw_parse_process(), raw_parse_ksyms(), raw_parse_end()), PROCESS
 * mappings into a static process table, RING records into a session (unwinder, aggregate), the
 * KSYMS list turned into a kallsyms as convert does. The input is a flag byte and the file
 * (fuzz-common.h); CRCs are made to match unless the flag says to keep them.
 *
 * No binary is opened (the table's open callback finds nothing), so recorded files keep their
 * recorded build-ids and unwinding falls back to frame pointers, as for a capture converted
 * without its binaries; [vdso] still maps this machine's. One session for the whole run (its
 * table reads /proc/self/maps once, for the vdso); the processes an input added are removed and
 * its aggregate freed after it.
 *
 * Checked besides memory safety: the reader's promises (records inside the file, back to back,
 * 8-byte aligned, within RAW_MAX_RECORD_BYTES; damage reported once with a message and an
 * offset inside the file, and again on every later call), the parsers' (counts and lengths
 * within the documented limits, symbols sorted, strings terminated), and the aggregate's.
 */
#include <errno.h>
#include <inttypes.h>
#include <zlib.h>

#include "bpf/profd.h"
#include "sources/raw.h"
#include "pipeline/session.h"
#include "symbolize/symbolize.h"
#include "tests/fuzz/fuzz-aggregate.h"
#include "tests/fuzz/fuzz-common.h"

#define MAX_PIDS 4096 /* processes one input may add (more are counted, not added) */

static struct session *session;
static struct proc_table *procs;
static uint32_t pids[MAX_PIDS];
static size_t n_pids;
static int ksyms_fd = -1;

static int open_nothing(void *userdata, const struct proc_static_map *m)
{
	return -ENOENT;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (session_new(&(struct session_config){.max_depth = 128}, &session) < 0)
		abort();
	procs = session_procs(session);
	if (proc_table_set_static(procs, open_nothing, NULL) < 0)
		abort();
	ksyms_fd = memfd_create("profd-fuzz-ksyms", MFD_CLOEXEC);
	if (ksyms_fd < 0)
		abort();
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Make the header CRC and the CRC of every record the lengths frame match (docs/raw-format.md). */
static void fix_crcs(uint8_t *b, size_t size)
{
	size_t hsize, off;

	if (size < RAW_HEADER_SIZE || memcmp(b, RAW_MAGIC, RAW_MAGIC_LEN))
		return;
	hsize = (size_t)b[10] | (size_t)b[11] << 8;
	if (hsize < RAW_HEADER_SIZE || hsize > RAW_MAX_HEADER_SIZE || hsize % 4 || hsize > size)
		return;
	put_le32(b + hsize - 4, (uint32_t)crc32(0, b, (uInt)(hsize - 4)));
	for (off = hsize; size - off >= RAW_RECORD_HEADER_SIZE;) {
		uint32_t len = le32(b + off + 4);

		if (len > size - off - RAW_RECORD_HEADER_SIZE)
			break;
		put_le32(b + off + 8, (uint32_t)crc32(0, b + off + RAW_RECORD_HEADER_SIZE, len));
		off += RAW_RECORD_HEADER_SIZE + len;
	}
}

static void check_process(const struct raw_process *p)
{
	FUZZ_CHECK(p->n_maps <= PROC_MAX_MAPS);
	FUZZ_CHECK(p->n_maps == 0 || p->maps);
	FUZZ_CHECK(strlen(p->comm) <= 16);
	for (size_t i = 0; i < p->n_maps; i++) {
		const struct proc_static_map *m = &p->maps[i];

		FUZZ_CHECK(m->end > m->start);
		FUZZ_CHECK(m->build_id_len <= RAW_MAX_BUILD_ID);
		FUZZ_CHECK((m->build_id_len == 0) == (m->build_id == NULL));
		if (m->path)
			FUZZ_CHECK(strlen(m->path) >= 1 && strlen(m->path) <= RAW_MAX_PATH);
	}
}

static void do_process(const struct raw_record *rec)
{
	struct raw_process p;
	int r = raw_parse_process(rec->data, rec->len, &p);

	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(p.maps == NULL && p.n_maps == 0);
		return;
	}
	check_process(&p);
	if (n_pids < MAX_PIDS) {
		r = proc_table_add_static(procs, (pid_t)p.pid, p.maps, p.n_maps);
		FUZZ_CHECK(r == 0 || r == -ENOMEM);
		if (r == 0)
			pids[n_pids++] = p.pid;
	}
	raw_process_done(&p);
	FUZZ_CHECK(p.maps == NULL && p.n_maps == 0);
}

/* As convert does with the capture's symbol list: kallsyms text, loaded and looked up. */
static void do_ksyms(const struct raw_record *rec)
{
	struct raw_ksym *syms = NULL;
	struct kallsyms *ks = NULL;
	char path[64];
	size_t n = 1;
	FILE *f;
	int r = raw_parse_ksyms(rec->data, rec->len, &syms, &n);

	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
		FUZZ_CHECK(syms == NULL && n == 0);
		return;
	}
	FUZZ_CHECK(n <= RAW_MAX_KSYMS);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(syms[i].name);

		FUZZ_CHECK(len >= 1 && len <= RAW_MAX_KSYM_NAME);
		FUZZ_CHECK(!strchr(syms[i].name, '\n') && !strchr(syms[i].name, '\t'));
		FUZZ_CHECK(i == 0 || syms[i - 1].addr <= syms[i].addr);
	}
	if (n == 0 || ftruncate(ksyms_fd, 0) < 0) {
		free(syms);
		return;
	}
	f = fdopen(dup(ksyms_fd), "w");
	if (!f)
		abort();
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%016" PRIx64 " t %s\n", syms[i].addr, syms[i].name);
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ksyms_fd);
	if (kallsyms_load(path, &ks) == 0) {
		for (size_t i = 0; i < n && i < 64; i++) {
			const char *name;
			uint64_t start;

			if (kallsyms_lookup(ks, syms[i].addr, &name, &start) == 0)
				FUZZ_CHECK(name && start <= syms[i].addr);
		}
		kallsyms_free(ks);
	}
	free(syms);
}

static void do_end(const struct raw_record *rec)
{
	struct raw_end e;
	int r = raw_parse_end(rec->data, rec->len, &e);

	FUZZ_CHECK(r == (rec->len >= 32 ? 0 : -EBADMSG));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct session_stats *st = session_stats(session);
	struct raw_reader *rr = NULL;
	struct raw_record rec;
	struct aggregate *agg;
	uint64_t next = 0;
	char path[64];
	uint8_t flags;
	int fd, r;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	if (!(flags & FUZZ_RAW_KEEP_CRC)) {
		uint8_t *b = malloc(size ? size : 1);

		if (!b)
			abort();
		memcpy(b, data, size);
		fix_crcs(b, size);
		fd = fuzz_memfd(b, size);
		free(b);
	} else {
		fd = fuzz_memfd(data, size);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = raw_reader_open(path, &rr);
	if (r == -EBADMSG) {
		FUZZ_CHECK(rr && raw_reader_error(rr)[0]);
		FUZZ_CHECK(raw_reader_error_offset(rr) <= size);
		raw_reader_free(rr);
		return 0;
	}
	if (r < 0) {
		FUZZ_CHECK(r == -ENOEXEC || r == -EPROTONOSUPPORT || r == -ENOMEM);
		return 0;
	}
	FUZZ_CHECK(raw_reader_header(rr)->version >= 1 &&
		   raw_reader_header(rr)->version <= RAW_VERSION);
	FUZZ_CHECK(raw_reader_error(rr)[0] == '\0');

	while ((r = raw_reader_next(rr, &rec)) > 0) {
		/* Back to back from the end of the header, inside the file, aligned. */
		FUZZ_CHECK(next == 0 ? rec.offset >= RAW_HEADER_SIZE : rec.offset == next);
		FUZZ_CHECK(rec.type != 0 && rec.len <= RAW_MAX_RECORD_BYTES);
		FUZZ_CHECK(rec.offset + RAW_RECORD_HEADER_SIZE + rec.len <= size);
		FUZZ_CHECK(rec.data && (uintptr_t)rec.data % 8 == 0);
		next = rec.offset + RAW_RECORD_HEADER_SIZE + rec.len;

		switch (rec.type) {
		case RAW_REC_RING: {
			uint64_t records = st->records;

			FUZZ_CHECK(session_handle_record(session, rec.data, rec.len) == 0);
			FUZZ_CHECK(st->records == records + 1);
			break;
		}
		case RAW_REC_PROCESS:
			do_process(&rec);
			break;
		case RAW_REC_KSYMS:
			do_ksyms(&rec);
			break;
		case RAW_REC_END:
			do_end(&rec);
			break;
		default:
			break;
		}
	}
	if (r == -EBADMSG) {
		FUZZ_CHECK(raw_reader_error(rr)[0]);
		FUZZ_CHECK(raw_reader_error_offset(rr) <= size);
		FUZZ_CHECK(raw_reader_error_offset(rr) >= (next ? next : RAW_HEADER_SIZE));
		FUZZ_CHECK(raw_reader_next(rr, &rec) == -EBADMSG);
	} else {
		FUZZ_CHECK(r == 0 || r == -ENOMEM);
		/* A clean end is the end of the file. */
		if (r == 0 && next)
			FUZZ_CHECK(next == size);
	}
	raw_reader_free(rr);

	agg = session_aggregate(session);
	fuzz_check_aggregate(agg);
	if (session_take_aggregate(session, &agg) == 0)
		aggregate_free(agg);
	for (size_t i = 0; i < n_pids; i++)
		proc_table_remove(procs, (pid_t)pids[i]);
	n_pids = 0;
	FUZZ_CHECK(proc_table_n_procs(procs) == 0);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Raw captures: what `profd record --raw FILE` writes and `profd convert FILE` reads. The
 * samples exactly as the BPF program produced them (registers, kernel IPs, user stack bytes)
 * plus what offline unwinding and symbolization need: each process's mappings with build-ids,
 * and the kernel symbols the samples hit. docs/raw-format.md is the specification; in short:
 *
 *   header   64 bytes: "PROFDRAW", version, header size, ring-record version, host e_machine,
 *            frequency, stack bytes, wall-clock and monotonic start, CRC-32 of the header
 *   records  u32 type, u32 length, u32 CRC-32 (zlib) of the payload, then `length` bytes
 *
 * All integers are little-endian. Unknown record types are skipped (their CRC is still
 * checked), so later versions may add types without breaking older readers.
 *
 * Reading treats the file as hostile: every length is checked against RAW_MAX_RECORD_BYTES and
 * against the bytes left in the file before anything is allocated, every payload's CRC is
 * checked before it is used, and the payload parsers below bounds-check every field and count.
 * On damage (bad CRC, impossible length, truncation) raw_reader_next() returns -EBADMSG and
 * raw_reader_error() says what and at which byte offset; the records before it were delivered.
 *
 * Writing goes to a temporary file next to the target ("<dir>/.<name>.XXXXXX") that
 * raw_writer_commit() fsyncs and renames into place: a capture that was interrupted leaves no
 * half-written file under the final name. Write errors are sticky and reported by
 * raw_writer_error() and raw_writer_commit().
 *
 * Functions return 0 (or a count) on success and -errno on failure; nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/proc.h"

struct aggregate;
struct kallsyms;

#define RAW_MAGIC "PROFDRAW"
#define RAW_MAGIC_LEN 8
#define RAW_VERSION 1
#define RAW_HEADER_SIZE 64
#define RAW_RECORD_HEADER_SIZE 12

/* Limits (reader and writer). */
#define RAW_MAX_RECORD_BYTES (64u << 20) /* one payload */
#define RAW_MAX_HEADER_SIZE 4096	 /* a later version's longer header */
#define RAW_MAX_PATH 4096		 /* bytes of one mapping path */
#define RAW_MAX_BUILD_ID 64
#define RAW_MAX_KSYMS 65536    /* kernel symbols in the KSYMS record */
#define RAW_MAX_KSYM_NAME 1024 /* bytes of one kernel symbol name (with "[module]") */

enum raw_record_type {
	RAW_REC_RING = 1,    /* a BPF ring-buffer record byte for byte (bpf/profd.h) */
	RAW_REC_PROCESS = 2, /* a process's executable mappings (first sight, exec, refresh) */
	RAW_REC_KSYMS = 3,   /* the kernel symbols the samples hit, once, near the end */
	RAW_REC_END = 4,     /* end-of-capture statistics, last */
};

struct raw_header {
	uint16_t version;	 /* RAW_VERSION of the file */
	uint16_t record_version; /* PROFD_RECORD_VERSION of the RING records */
	uint16_t e_machine;	 /* EM_* of the recording host */
	uint32_t freq_hz;	 /* sampling frequency per CPU */
	uint32_t stack_bytes;	 /* user stack bytes asked per sample */
	int64_t time_ns;	 /* CLOCK_REALTIME at the start of the capture */
	uint64_t mono_ns;	 /* CLOCK_MONOTONIC at the start (time base of RING records) */
};

struct raw_end {
	uint64_t records;     /* RING records written */
	uint64_t samples;     /* of them, samples */
	uint64_t lost;	      /* samples and events the BPF side dropped (ring buffer full) */
	uint64_t duration_ns; /* CLOCK_MONOTONIC, start to end of sampling */
};

struct raw_ksym {
	uint64_t addr;	  /* start of the symbol */
	const char *name; /* "func" or "func [module]" */
};

/* ---- writer ---------------------------------------------------------------------------------- */

struct raw_writer;

/* Create the temporary file next to `path` and write the header. */
int raw_writer_new(const char *path, const struct raw_header *h, struct raw_writer **ret);
/* Removes the temporary file unless committed. NULL-safe. */
void raw_writer_free(struct raw_writer *w);

/* One record; -EINVAL for a payload over RAW_MAX_RECORD_BYTES, else the sticky error. */
int raw_writer_add(struct raw_writer *w, uint32_t type, const void *payload, size_t len);
/* A PROCESS record for p (its executable mappings); comm may be NULL. */
int raw_writer_add_process(struct raw_writer *w, const struct proc *p, const char *comm);
/*
 * The KSYMS record: the symbols holding the kernel frames of aggregate `a`, looked up in `ks`
 * (at most RAW_MAX_KSYMS, the lowest addresses first). 0 and nothing written when `ks` is NULL
 * or no frame resolves.
 */
int raw_writer_add_ksyms(struct raw_writer *w, const struct aggregate *a,
			 const struct kallsyms *ks);
int raw_writer_add_end(struct raw_writer *w, const struct raw_end *e);

/* EM_* of the machine we run on (from our own ELF header), 0 if unknown. */
uint16_t raw_host_e_machine(void);

/* 0, or the first write error. */
int raw_writer_error(const struct raw_writer *w);
/* Bytes written so far (header included). */
uint64_t raw_writer_bytes(const struct raw_writer *w);
/* Flush, fsync, rename into place, fsync the directory (best effort). */
int raw_writer_commit(struct raw_writer *w);

/* ---- reader ---------------------------------------------------------------------------------- */

struct raw_reader;

struct raw_record {
	uint32_t type;
	uint32_t len;
	const void *data; /* 8-byte aligned; valid until the next raw_reader_next() */
	uint64_t offset;  /* file offset of the record header */
};

/*
 * Open and check the header: -ENOEXEC when the file is not a raw capture (magic),
 * -EPROTONOSUPPORT for a newer version, or open's/read's -errno. A damaged header (bad CRC,
 * truncated) returns -EBADMSG with *ret still set, so raw_reader_error() can say what; the
 * caller frees it.
 */
int raw_reader_open(const char *path, struct raw_reader **ret);
void raw_reader_free(struct raw_reader *r);
const struct raw_header *raw_reader_header(const struct raw_reader *r);

/*
 * The next record: 1 and *ret filled, 0 at a clean end of file, -EBADMSG on damage (then
 * raw_reader_error_offset() / raw_reader_error() tell where and what; later calls return the
 * same), -ENOMEM, or read's -errno.
 */
int raw_reader_next(struct raw_reader *r, struct raw_record *ret);
/* Byte offset of the damage (valid after -EBADMSG). */
uint64_t raw_reader_error_offset(const struct raw_reader *r);
/* "truncated: ... at byte offset N" etc.; "" when there was no error. */
const char *raw_reader_error(const struct raw_reader *r);

/* ---- payload parsers (hostile input: -EBADMSG for anything inconsistent) --------------------- */

struct raw_process {
	uint32_t pid;
	char comm[17];
	size_t n_maps;
	struct proc_static_map *maps; /* paths and build-ids point into the same allocation */
};
int raw_parse_process(const void *data, size_t len, struct raw_process *ret);
void raw_process_done(struct raw_process *p);

/* *ret is one allocation (names included), sorted by address; free() it. */
int raw_parse_ksyms(const void *data, size_t len, struct raw_ksym **ret, size_t *ret_n);

int raw_parse_end(const void *data, size_t len, struct raw_end *ret);

/* SPDX-License-Identifier: MIT */
/*
 * perf.data reader: what `profd convert` needs from a `perf record --call-graph dwarf` file to
 * run profd's own unwinder and symbolizer on it.
 *
 * Supported: the file format of `perf record -o FILE` (magic "PERFILE2", little-endian, not
 * pipe mode), one or more event attributes (with several, samples are told apart by
 * PERF_SAMPLE_IDENTIFIER or PERF_SAMPLE_ID and the attribute id lists). Events read from the
 * data section: SAMPLE (with PERF_SAMPLE_REGS_USER + PERF_SAMPLE_STACK_USER for user stacks;
 * kernel frames from PERF_SAMPLE_CALLCHAIN), MMAP, MMAP2 (inode or build-id form), COMM, FORK,
 * EXIT, LOST, LOST_SAMPLES; everything else is skipped by its size. Feature sections are
 * optional: HEADER_BUILD_ID gives build-ids by path, HEADER_ARCH the architecture (else the
 * host's). Compressed data (perf record -z) is refused with -EOPNOTSUPP.
 *
 * Registers: the sample's user registers are stored in the order of the bits set in the
 * attribute's sample_regs_user; a per-architecture table (picked by e_machine at run time:
 * x86_64 PERF_REG_X86_IP=8, SP=7, BP=6; aarch64 PC=32, SP=31, X29=29, LR=30) maps them to
 * struct unwind_regs. A register not in the mask reads as 0.
 *
 * Order: events are delivered sorted by time (stable; events without a time keep their file
 * position among those of time 0), as perf's own ordered-events queue does, so mmaps reach the
 * process table before the samples that need them even when they were written from another
 * CPU's buffer later.
 *
 * Input is hostile: every offset, size and count is bounds-checked against its section with
 * overflow-safe arithmetic. An event header that
 * cannot be right (size < 8, or running past the data section) is damage: events before it
 * are delivered, then perfdata_read() returns -EBADMSG and perfdata_error() names the byte
 * offset. An event whose header is sane but whose fields are inconsistent is skipped and
 * counted (stats.malformed). The headers and feature sections are read through a read-only
 * mapping: a file truncated meanwhile can still fault the reader there (SIGBUS), as with any
 * mmap-based reader.
 *
 * Reading: events are read with pread() into one 64 KiB buffer, never through the mapping
 * (touching a page of a mapping maps its neighbours too, and a perf.data is mostly stack bytes
 * nobody reads). Pass 1 reads each event's first 64 bytes (its time) and the 64 before it (the
 * previous sample's dyn_size); pass 2 reads a sample's fields and only the stack bytes the
 * kernel really copied (dyn_size), about 4 KiB of a 32 KiB stack sample, and any other event
 * whole. Memory: the index (24 bytes an event) and that buffer, whatever the file's size.
 *
 * Limits: PERFDATA_MAX_ATTRS attributes, PERFDATA_MAX_IDS ids, PERFDATA_MAX_EVENTS events
 * (-E2BIG beyond), PERFDATA_MAX_BUILD_IDS build-id entries (the rest are ignored),
 * PERFDATA_MAX_KSTACK kernel frames per sample (the rest are dropped).
 *
 * Functions return >= 0 on success and -errno on failure; nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/unwind/unwind.h"

/* The file's first bytes (the format of `perf record -o FILE`). */
#define PERFDATA_MAGIC "PERFILE2"
#define PERFDATA_MAGIC_LEN 8

#define PERFDATA_MAX_ATTRS 256
#define PERFDATA_MAX_IDS (1u << 20)
#define PERFDATA_MAX_EVENTS (64u << 20)
#define PERFDATA_MAX_BUILD_IDS (1u << 16)
#define PERFDATA_MAX_KSTACK 128

enum perfdata_event_type {
	PERFDATA_EV_SAMPLE = 1,
	PERFDATA_EV_MMAP, /* MMAP and MMAP2 */
	PERFDATA_EV_COMM,
	PERFDATA_EV_FORK,
	PERFDATA_EV_EXIT,
	PERFDATA_EV_LOST,
};

/* perf_event_header.misc & PERF_RECORD_MISC_CPUMODE_MASK */
enum perfdata_cpumode {
	PERFDATA_CPUMODE_UNKNOWN = 0,
	PERFDATA_CPUMODE_KERNEL = 1,
	PERFDATA_CPUMODE_USER = 2,
};

struct perfdata_sample {
	uint32_t cpu;
	uint16_t cpumode;
	uint64_t ip;
	uint64_t period;
	bool has_user_regs; /* PERF_SAMPLE_REGS_USER with an ABI other than NONE */
	struct unwind_regs regs;
	const uint8_t *stack; /* user stack copy at regs.sp (into the mmapped file) */
	size_t stack_len;     /* dyn_size: the bytes actually copied */
	size_t n_kstack;      /* kernel frames from the callchain, leaf first */
	uint64_t kstack[PERFDATA_MAX_KSTACK];
};

struct perfdata_mmap {
	uint64_t start, len, pgoff;
	uint32_t prot; /* MMAP2: PROT_*; MMAP: PROT_EXEC unless a data mapping */
	uint32_t maj, min;
	uint64_t ino;
	const uint8_t *build_id; /* MMAP2 with PERF_RECORD_MISC_MMAP_BUILD_ID, else NULL */
	size_t build_id_len;
	const char *path; /* NUL-terminated inside the event */
};

struct perfdata_event {
	enum perfdata_event_type type;
	uint64_t time;	 /* perf clock ns, 0 when the event has none */
	uint64_t offset; /* file offset of the event */
	uint32_t pid, tid;
	union {
		struct perfdata_sample sample;
		struct perfdata_mmap mmap;
		struct {
			const char *comm; /* NUL-terminated, at most 15 characters used */
			bool exec;
		} comm;
		struct {
			uint32_t ppid, ptid; /* FORK and EXIT */
		} task;
		uint64_t lost;
	};
};

struct perfdata_stats {
	uint64_t events, samples, mmaps, comms, forks, exits, lost_events, lost_samples;
	uint64_t skipped;   /* event types not used here */
	uint64_t malformed; /* sane header, inconsistent fields: skipped */
};

struct perfdata_info {
	uint16_t e_machine;		/* from HEADER_ARCH, else the host's */
	bool arch_known;		/* HEADER_ARCH was present and understood */
	bool freq;			/* attribute 0 sampled by frequency ... */
	uint64_t sample_freq_or_period; /* ... then Hz, else the period (ns for cpu-clock) */
	uint64_t sample_type;		/* of attribute 0 */
	uint64_t sample_regs_user;
	uint32_t sample_stack_user;
	size_t n_attrs, n_build_ids;
	uint64_t data_offset, data_size;
	bool data_size_guessed; /* header said 0 (perf was killed): data runs to the end of file */
};

struct perfdata;

/*
 * Map and check the file header, attributes and feature sections. -ENOEXEC not a perf.data
 * file, -EOPNOTSUPP a kind this reader does not handle (pipe mode, big-endian, PERFILE v1),
 * -EBADMSG a damaged header (perfdata_error() says what), -E2BIG a limit, -ENOMEM, or the
 * -errno of open/fstat/mmap. On -EBADMSG *ret is still set so perfdata_error() can be read;
 * the caller frees it.
 */
int perfdata_open(const char *path, struct perfdata **ret);
void perfdata_free(struct perfdata *pd);

const struct perfdata_info *perfdata_info(const struct perfdata *pd);

/* Build-id recorded for a path in HEADER_BUILD_ID: its length, or 0 when there is none. */
size_t perfdata_build_id(const struct perfdata *pd, const char *path, const uint8_t **ret);

/*
 * Deliver the data section's events to fn in time order (see top). fn returning < 0 stops and
 * returns that value. Returns 0, or -EBADMSG after delivering the events before the damage,
 * -E2BIG past PERFDATA_MAX_EVENTS, -ENOMEM, -EFBIG for a file of 64 TiB or more, or pread()'s
 * -errno. Strings and stack bytes in an event are valid during the call only.
 */
typedef int (*perfdata_event_fn)(void *userdata, const struct perfdata_event *ev);
int perfdata_read(struct perfdata *pd, perfdata_event_fn fn, void *userdata);

const struct perfdata_stats *perfdata_stats(const struct perfdata *pd);
/* What and where (byte offset) the damage is; "" when none. */
const char *perfdata_error(const struct perfdata *pd);
uint64_t perfdata_error_offset(const struct perfdata *pd);

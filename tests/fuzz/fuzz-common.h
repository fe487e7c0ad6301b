/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets (tests/fuzz/fuzz-*.c) and the seed generator (seedgen.c): how an
 * input that carries more than one blob is framed, and a few helpers. Integers little-endian
 * (the targets only run on x86_64 and aarch64 hosts).
 *
 * A target aborts (a crash to libFuzzer) when the code under test breaks one of its documented
 * promises, so the fuzzers check contracts and not only memory safety.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * fuzz-cfi: this header, then `hdr_len` bytes of .eh_frame_hdr, `eh_len` bytes of .eh_frame and
 * the rest as .debug_frame (lengths are clamped to what the input holds). Each section is copied
 * into its own heap block of exactly its size, so ASan sees a read one byte past any of them.
 */
struct fuzz_cfi_header {
	uint8_t machine; /* bit 0: 0 = EM_X86_64, 1 = EM_AARCH64 */
	uint8_t present; /* FUZZ_CFI_HAS_*: which sections are passed (others are NULL) */
	uint8_t reserved[2];
	uint32_t hdr_len, eh_len;
	uint32_t reserved2;
	uint64_t hdr_addr, eh_addr, debug_addr, data_base, pc_lo, pc_hi;
};
#define FUZZ_CFI_HAS_HDR 1u
#define FUZZ_CFI_HAS_EH 2u
#define FUZZ_CFI_HAS_DEBUG 4u

/*
 * fuzz-unwind: this header, then the stack copy (the rest of the input). The fake address space
 * has two mappings: the target's fixed binary (libc of the chosen architecture, with its CFI
 * table) at lib_base, and [anon_lo, anon_hi) without a table (frame pointers only).
 */
struct fuzz_unwind_header {
	uint8_t machine;     /* bit 0: 0 = EM_X86_64, 1 = EM_AARCH64 */
	uint8_t flags;	     /* FUZZ_UNWIND_* */
	uint16_t max_frames; /* res.max_frames = 1 + max_frames % FUZZ_UNWIND_MAX_FRAMES */
	uint32_t reserved;
	uint64_t lib_base;
	uint64_t anon_lo, anon_hi;
	uint64_t pc, sp, fp, lr;
	uint64_t stack_start;
};
#define FUZZ_UNWIND_NO_FIND_MODULE 1u /* find_module NULL: every pc is mapped, no tables */
#define FUZZ_UNWIND_MAX_FRAMES 5000   /* above UNWIND_MAX_DEPTH_LIMIT on purpose */

/*
 * fuzz-session: a sequence of records, each a u32 length (what the ring buffer reports) then that
 * many bytes; a length past the end of the input takes what is left.
 */

/*
 * fuzz-raw: a flag byte, then the raw capture file. Unless FUZZ_RAW_KEEP_CRC is set, the target
 * first rewrites the header's CRC and every record's CRC to match (as far as the lengths frame
 * the records), so mutated payloads reach the parsers instead of all failing the CRC check.
 */
#define FUZZ_RAW_KEEP_CRC 1u

/*
 * fuzz-http: "METHOD PATH[?QUERY]" (no space: no path); arguments split at '&', each key and
 * value at its first '=' (no '=': a key without a value).
 */

/*
 * fuzz-core: the core file, then a /proc/PID/maps text for core_load_maps(), then a u16 with the
 * length of that text (the last 2 bytes of the input; without them, all of it is the core).
 */

static inline size_t fuzz_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

static inline uint64_t fuzz_get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Abort with a message: libFuzzer keeps the input as a crash. The message also goes to the
 * sanitizer's report file, which survives -close_fd_mask=2 (used for targets that log).
 */
void __sanitizer_report_error_summary(const char *summary) __attribute__((weak));

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #cond);   \
			if (__sanitizer_report_error_summary)                                      \
				__sanitizer_report_error_summary("contract broken: " #cond);       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * The input as a regular file, for APIs that take an fd or a path (/proc/self/fd/N). One memfd
 * per process, overwritten for each input and then cut to its size (not emptied first: freeing
 * and allocating its pages again cost more than many a target's work).
 */
static inline int fuzz_memfd(const uint8_t *data, size_t size)
{
	static int fd = -1;
	size_t done = 0;

	if (fd < 0) {
		fd = memfd_create("profd-fuzz", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
	}
	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

		if (n <= 0) {
			perror("pwrite");
			abort();
		}
		done += (size_t)n;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		perror("ftruncate");
		abort();
	}
	return fd;
}

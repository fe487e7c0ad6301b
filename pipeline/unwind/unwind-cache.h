/* SPDX-License-Identifier: MIT */
/*
 * Per-binary unwind information, built lazily and shared by every process (or core file) that
 * maps the binary: the CFI table plus the PT_LOAD headers needed to turn a process address
 * into an ELF address (the load bias).
 *
 * Keyed by the file that was opened, (dev, inode, size, mtime) as fstat() gives them, with its
 * GNU build-id when it has one: never by the build-id alone, which is only what a file says
 * about itself. A user's file carrying a system library's build-id gets a table of its own and
 * supplies no unwind rules (nor load bias) for the processes that map the genuine library, and
 * a malformed file is remembered as unusable for itself only. Identical copies on different
 * inodes are built once each (within the same byte bound). Bounded:
 * tables are evicted least-recently-used once their total size passes `max_bytes`
 * (UNWIND_CACHE_DEFAULT_BYTES). A binary whose table cannot be built (no CFI, hostile input)
 * is remembered as such, so it is not parsed again on every sample.
 *
 * Lifetime: the `table` in a returned struct unwind_module is valid until the next call into
 * the cache (an insertion may evict it). The unwinder only uses the table of the frame it is
 * working on, so this is enough for one unwind_stack() call. Single-threaded.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "pipeline/unwind/unwind.h"

#define UNWIND_CACHE_DEFAULT_BYTES (256u << 20)
#define UNWIND_CACHE_MAX_ENTRIES 16384
#define UNWIND_MAX_LOADS 32 /* PT_LOAD headers kept per binary */

struct unwind_key {
	uint8_t build_id[64];
	size_t build_id_len;                /* 0: none */
	uint64_t dev, ino, size, mtime_ns;  /* the file's fstat() identity: always part of the key */
};

/*
 * Fill a key from an open file: its fstat() identity, and the build-id read from it (NULL/0,
 * or longer than 64 bytes: none). 0 or fstat's -errno.
 */
int unwind_key_from_fd(int fd, const uint8_t *build_id, size_t build_id_len,
		       struct unwind_key *ret);
/* The same from an identity the caller already took with fstat() of that file's fd. */
void unwind_key_make(const uint8_t *build_id, size_t build_id_len, uint64_t dev, uint64_t ino,
		     uint64_t size, uint64_t mtime_ns, struct unwind_key *ret);

struct unwind_cache;

int unwind_cache_new(size_t max_bytes, struct unwind_cache **ret);
void unwind_cache_free(struct unwind_cache *c);

/*
 * The unwind module for a mapping of the binary open at `fd` (used only on a cache miss; not
 * closed): `start`/`end`/`pgoff` are the mapping's process addresses and file offset.
 * ret->table is a struct cfi_table * (NULL when the binary has no usable CFI) and ret->bias
 * the process address minus the ELF address. Returns 0, or -errno when the file is not a
 * usable ELF or the mapping matches no PT_LOAD (then ret->table is NULL, bias 0).
 */
int unwind_cache_module(struct unwind_cache *c, const struct unwind_key *key, int fd,
			uint64_t start, uint64_t end, uint64_t pgoff, struct unwind_module *ret);

struct unwind_cache_stats {
	size_t entries, bytes, hits, misses, evictions, build_failures;
	uint64_t build_ns; /* total time spent building tables */
	size_t rows;       /* rows in the tables currently cached */
};
void unwind_cache_get_stats(const struct unwind_cache *c, struct unwind_cache_stats *ret);

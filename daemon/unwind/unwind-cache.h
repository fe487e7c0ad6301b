/* SPDX-License-Identifier: MIT */
/*
 * Per-binary unwind information, built lazily and shared by every process (or core file) that
 * maps the binary: the CFI table plus the PT_LOAD headers needed to turn a process address
 * into an ELF address (the load bias).
 *
 * Keyed by GNU build-id when the binary has one, else by (dev, inode, size, mtime). Bounded:
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

#include "daemon/unwind/unwind.h"

#define UNWIND_CACHE_DEFAULT_BYTES (256u << 20)
#define UNWIND_CACHE_MAX_ENTRIES 16384
#define UNWIND_MAX_LOADS 32 /* PT_LOAD headers kept per binary */

struct unwind_key {
	uint8_t build_id[64];
	size_t build_id_len;                /* 0: use the fields below */
	uint64_t dev, ino, size, mtime_ns;  /* filled by unwind_key_from_fd() */
};

/* Fill a key from an open file: build-id when the ELF has one, else stat() fields. */
int unwind_key_from_fd(int fd, const uint8_t *build_id, size_t build_id_len,
		       struct unwind_key *ret);

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

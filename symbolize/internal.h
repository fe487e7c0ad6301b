/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the files of symbolize/ only; not part of the public API.
 *
 * struct str_pool: append-only string storage with a byte budget, plus a small map from a
 * stable key pointer's *contents* to a pooled value. Strings handed out by the symbolizer live
 * in a pool owned by the sym_elf / kallsyms, so they stay valid until that object is freed and
 * repeated lookups of the same name cost no new memory.
 */
#pragma once

#include <pthread.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "symbolize/symbolize.h"

struct str_pool_chunk;
struct str_pool_entry;

struct str_pool {
	struct str_pool_chunk *chunks; /* newest first; the head is the one being filled */
	size_t bytes;                  /* strings handed out so far plus the map's tables */
	size_t max_bytes;              /* budget; allocations past it fail */
	struct str_pool_entry *entries; /* the map's (key, value) pairs */
	size_t n_entries, cap_entries;
	struct hash_index index;        /* key contents -> entries index + 1 */
	struct hash_seed seed;          /* keys are names from users' files: SipHash, seeded */
};

void str_pool_init(struct str_pool *p, size_t max_bytes);
void str_pool_done(struct str_pool *p);

/* Copy s[0..n) plus a NUL into the pool. NULL when out of budget or memory. */
const char *str_pool_strndup(struct str_pool *p, const char *s, size_t n);

/*
 * Map lookup by key contents. `key` itself is stored, not copied: it must outlive the pool
 * (callers pass strings owned by libelf/libdw, which live as long as the pool's owner).
 */
const char *str_pool_map_get(const struct str_pool *p, const char *key);
/* Returns 0, or -ENOMEM / -E2BIG (over budget) with the map unchanged. */
int str_pool_map_put(struct str_pool *p, const char *key, const char *value);

/* Demangle into a bounded buffer that grows up to `max` bytes; see sym_demangle(). */
struct demangle_buf {
	char *buf;
	size_t len, cap, max;
	bool overflow;
};
void demangle_buf_done(struct demangle_buf *b);
/* >= 0 with b->buf holding the NUL-terminated result, or -errno as sym_demangle_as(). */
int demangle_into(const char *name, enum sym_demangle_mode mode, struct demangle_buf *b);
/* SYM_DEMANGLE_SIMPLE's last step on any demangled text, in place; returns the new length. */
size_t demangle_strip_templates(char *s, size_t n);

/*
 * struct func_table: a module's function symbols sorted by address (functab.c), built once
 * from what libdwfl serves for `mod` and answering as dwfl_module_addrinfo() would (see there
 * for the rules and the few differences). At most `max_entries` candidate symbols, 24 bytes
 * each: -E2BIG past that, -ENOMEM. A module without symbols gives an empty table.
 */
struct Dwfl_Module;
struct func_table;
int func_table_build(struct Dwfl_Module *mod, size_t max_entries, struct func_table **ret);
void func_table_free(struct func_table *t);
/* The symbol covering dwfl address `addr`: its index for dwfl_module_getsym_info() and start. */
bool func_table_find(const struct func_table *t, uint64_t addr, int *ret_ndx,
		     uint64_t *ret_start);

/*
 * Read now what lookups in `e` will need (symbol table and its sorted index, debug file, DWARF
 * and its address index), so a lookup later finds it ready: for sym_cache_prepare_shared().
 */
struct sym_elf;
void sym_elf_prepare(struct sym_elf *e);

/*
 * Open bin's ELF in the cache (as a lookup would) and sym_elf_prepare() it, from one of
 * several threads sharing c: the cache's structures are touched only under lock, the opening
 * and reading (the slow part) outside it, so binaries are prepared in parallel. A binary
 * already open, or being opened by another thread, is left alone. 0 or -errno.
 */
struct sym_cache;
struct sym_binary;
int sym_cache_prepare_shared(struct sym_cache *c, const struct sym_binary *bin,
			     pthread_mutex_t *lock);

/*
 * An fd (memfd) on a copy of ELF file `fd` whose zlib-compressed .debug_* sections are
 * inflated (libdeflate, two threads) and whose location lists are dropped, for libdw to read
 * instead of decompressing them itself. 0 with *ret_fd set; -ENODATA when there is nothing to
 * inflate or the file is not one this understands (64-bit little-endian ELF, zlib sections,
 * at most SYM_MAX_INFLATED_BYTES inflated): use the file itself; other -errno on failure.
 */
int sym_inflate_debug_sections(int fd, int *ret_fd);

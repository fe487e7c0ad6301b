/* SPDX-License-Identifier: MIT */
/*
 * The one hash table of profd: a bounded open-addressing index (linear probing) from a hash to
 * an entry id, where the entries themselves live in the caller's array. The index stores only
 * (id, 32-bit hash) pairs: growing never touches the keys, and most mismatches are rejected
 * without reading a key. Ids are the caller's, 1-based (0 marks an empty slot): typically the
 * entry's index + 1. The index has no removal: tables that evict entries one at a time keep
 * their own chains (symbolize/cache.c, pipeline/unwind/unwind-cache.c,
 * pipeline/python/code.c: LRU lists threaded through the same entries).
 *
 * Keys that a profiled program or a file chose (symbol names, paths, stacks) are hashed with
 * hash_bytes(), SipHash-2-4 under a per-table random seed (hash_seed_init()), so a crafted
 * input cannot aim collisions at a table. Keys that profd chose (its own rules, u64 ids) may
 * use the faster hash_u64() or any hash of the caller's.
 *
 * Usage (lookup or insert):
 *	r = hash_index_reserve(&t, MAX_ENTRIES);        // room for one more, or -E2BIG/-ENOMEM
 *	h = hash_bytes(&seed, key, len);
 *	s = hash_index_find(&t, h, eq, ctx, key);       // eq(ctx, id, key) compares entry id to key
 *	if (s->id) -> found entry s->id
 *	else       -> append the entry to the caller's array, hash_index_insert(&t, s, id, h)
 * A slot pointer is valid until the next hash_index_reserve(). Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The capacity of an index's first allocation (slots; a power of two). */
#define HASH_INDEX_MIN_CAP 64

struct hash_seed {
	uint64_t k[2];
};

struct hash_slot {
	uint32_t id; /* 0: empty */
	uint32_t hash;
};

struct hash_index {
	struct hash_slot *slots;
	size_t cap; /* 0 or a power of two, kept at least twice n */
	size_t n;
};

/* A random seed from getrandom(); without entropy (early boot, seccomp) a clock-based one. */
void hash_seed_init(struct hash_seed *s);

/* SipHash-2-4 of len bytes under seed s (host byte order: consistent within one process). */
uint64_t hash_bytes(const struct hash_seed *s, const void *data, size_t len);

/* A fast mix of a 64-bit key profd chose itself (not for keys an attacker picks). */
static inline uint64_t hash_u64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * Make sure one more entry fits at a load factor of at most 1/2. Returns 0, -E2BIG when the
 * index already holds `max_entries` entries, -ENOMEM. (A caller whose lookups must still
 * succeed at its limit passes its limit + 1 and refuses the insert itself.)
 */
int hash_index_reserve(struct hash_index *t, size_t max_entries);

/* Does the caller's entry `id` hold `key`? */
typedef bool (*hash_eq_fn)(const void *ctx, uint32_t id, const void *key);

/*
 * The slot of the entry equal to key (slot->id != 0), or the empty slot where it belongs
 * (slot->id == 0). Needs t->cap > 0 (a hash_index_reserve() before); NULL when it is 0.
 */
struct hash_slot *hash_index_find(const struct hash_index *t, uint64_t hash, hash_eq_fn eq,
				  const void *ctx, const void *key);

/* Fill the empty slot s (from hash_index_find() since the last reserve) with id. */
void hash_index_insert(struct hash_index *t, struct hash_slot *s, uint32_t id, uint64_t hash);

/* Empty the index, keeping its slots for reuse. */
void hash_index_clear(struct hash_index *t);

/* The bytes the index's slots take (for tables that count their memory)... */
size_t hash_index_bytes(const struct hash_index *t);
/* ...and will take after the next hash_index_reserve(). */
size_t hash_index_reserve_bytes(const struct hash_index *t);

void hash_index_free(struct hash_index *t);

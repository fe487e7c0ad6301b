/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"

void hash_seed_init(struct hash_seed *s)
{
	struct timespec ts = {};

	if (getrandom(s->k, sizeof(s->k), GRND_NONBLOCK) == (ssize_t)sizeof(s->k))
		return;
	/*
	 * Without entropy (early boot, seccomp) the caller must still work; a guessable seed only
	 * weakens the defence against crafted collisions.
	 */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)s;
	s->k[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)getpid();
}

#define ROTL64(x, r) (((x) << (r)) | ((x) >> (64 - (r))))

static inline void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL64(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL64(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL64(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL64(v[2], 32);
}

uint64_t hash_bytes(const struct hash_seed *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t v[4] = {
		s->k[0] ^ 0x736f6d6570736575ull,
		s->k[1] ^ 0x646f72616e646f6dull,
		s->k[0] ^ 0x6c7967656e657261ull,
		s->k[1] ^ 0x7465646279746573ull,
	};
	uint64_t m, last = (uint64_t)len << 56;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&m, p, 8);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t i = 0; i < len; i++)
		last |= (uint64_t)p[i] << (8 * i);
	v[3] ^= last;
	sip_round(v);
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint32_t fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

static size_t next_cap(const struct hash_index *t)
{
	return t->cap ? t->cap * 2 : HASH_INDEX_MIN_CAP;
}

int hash_index_reserve(struct hash_index *t, size_t max_entries)
{
	struct hash_slot *slots;
	size_t cap, mask;

	if (t->n >= max_entries)
		return -E2BIG;
	if ((t->n + 1) * 2 <= t->cap)
		return 0;
	if (t->cap > SIZE_MAX / 2 / sizeof(*slots))
		return -ENOMEM;
	cap = next_cap(t);
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	mask = cap - 1;
	for (size_t i = 0; i < t->cap; i++) {
		size_t j;

		if (!t->slots[i].id)
			continue;
		for (j = t->slots[i].hash & mask; slots[j].id; j = (j + 1) & mask)
			;
		slots[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

struct hash_slot *hash_index_find(const struct hash_index *t, uint64_t hash, hash_eq_fn eq,
				  const void *ctx, const void *key)
{
	uint32_t h = fold(hash);
	size_t mask = t->cap - 1;

	if (!t->cap)
		return NULL;
	/* The load factor (at most 1/2) guarantees an empty slot ends every probe. */
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct hash_slot *s = &t->slots[i];

		if (!s->id || (s->hash == h && eq(ctx, s->id, key)))
			return s;
	}
}

void hash_index_insert(struct hash_index *t, struct hash_slot *s, uint32_t id, uint64_t hash)
{
	s->id = id;
	s->hash = fold(hash);
	t->n++;
}

size_t hash_index_bytes(const struct hash_index *t)
{
	return t->cap * sizeof(struct hash_slot);
}

size_t hash_index_reserve_bytes(const struct hash_index *t)
{
	if ((t->n + 1) * 2 <= t->cap)
		return hash_index_bytes(t);
	return next_cap(t) * sizeof(struct hash_slot);
}

void hash_index_clear(struct hash_index *t)
{
	if (t->slots)
		memset(t->slots, 0, t->cap * sizeof(*t->slots));
	t->n = 0;
}

void hash_index_free(struct hash_index *t)
{
	free(t->slots);
	*t = (struct hash_index){};
}

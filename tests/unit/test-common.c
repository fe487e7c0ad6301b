// SPDX-License-Identifier: MIT
/*
 * common/grow and common/hash: the one checked array growth and the one hash table. grow()
 * must refuse sizes that overflow and counts over the caller's limit without touching the
 * array; the index must find every entry it was given, refuse past its bound, and hash_bytes()
 * must depend on the seed (so a crafted key set cannot collide under every seed).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/hash.h"

Test(grow, doubles_and_keeps_contents)
{
	uint64_t *a = NULL;
	size_t cap = 0;

	for (size_t i = 0; i < 1000; i++) {
		size_t old = cap;

		cr_assert_eq(GROW_ARRAY(a, cap, i + 1, GROW_NO_LIMIT), 0);
		cr_assert_geq(cap, i + 1);
		if (old < i + 1) /* it grew: at least doubled, at least the minimum */
			cr_assert_geq(cap, old * 2 > GROW_MIN_CAP ? old * 2 : GROW_MIN_CAP);
		a[i] = i * 7;
	}
	for (size_t i = 0; i < 1000; i++)
		cr_assert_eq(a[i], i * 7);
	free(a);
}

Test(grow, nothing_when_it_fits)
{
	uint32_t *a = NULL;
	size_t cap = 0;
	void *before;

	cr_assert_eq(GROW_ARRAY(a, cap, 5, GROW_NO_LIMIT), 0);
	before = a;
	cr_assert_eq(cap, GROW_MIN_CAP);
	cr_assert_eq(GROW_ARRAY(a, cap, cap, GROW_NO_LIMIT), 0);
	cr_assert_eq((void *)a, before);
	cr_assert_eq(cap, GROW_MIN_CAP);
	free(a);
}

Test(grow, limit_caps_capacity_and_refuses_past_it)
{
	uint32_t *a = NULL;
	size_t cap = 0;

	cr_assert_eq(GROW_ARRAY(a, cap, 16, 24), 0);
	cr_assert_eq(cap, GROW_MIN_CAP);
	cr_assert_eq(GROW_ARRAY(a, cap, 17, 24), 0);
	cr_assert_eq(cap, 24, "doubling is capped at the limit, got %zu", cap);
	cr_assert_eq(GROW_ARRAY(a, cap, 25, 24), -E2BIG);
	cr_assert_eq(cap, 24);
	cr_assert_not_null(a);
	free(a);
}

Test(grow, byte_overflow_is_enomem_and_leaves_array)
{
	uint64_t *a = NULL;
	size_t cap = 0;

	cr_assert_eq(GROW_ARRAY(a, cap, 4, GROW_NO_LIMIT), 0);
	a[3] = 42;
	/* need * 8 bytes overflows size_t */
	cr_assert_eq(GROW_ARRAY(a, cap, SIZE_MAX / 4, GROW_NO_LIMIT), -ENOMEM);
	cr_assert_eq(cap, GROW_MIN_CAP);
	cr_assert_eq(a[3], 42);
	/* doubling a capacity near SIZE_MAX must not wrap to a small allocation */
	cap = SIZE_MAX / 2 + 1;
	{
		void *p = NULL;

		cr_assert_eq(grow(&p, &cap, cap + 1, 1, GROW_NO_LIMIT), -ENOMEM);
		cr_assert_null(p);
	}
	free(a);
}

struct strtab {
	char **s;
	size_t n, cap;
	struct hash_index index;
	struct hash_seed seed;
};

static bool str_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct strtab *t = ctx;

	return strcmp(t->s[id - 1], key) == 0;
}

/* Lookup or insert; the entry's id (1-based) or -errno. */
static long intern(struct strtab *t, const char *key, size_t max)
{
	uint64_t h = hash_bytes(&t->seed, key, strlen(key));
	struct hash_slot *slot;
	int r;

	r = hash_index_reserve(&t->index, max);
	if (r < 0)
		return r;
	slot = hash_index_find(&t->index, h, str_eq, t, key);
	if (slot->id)
		return slot->id;
	r = GROW_ARRAY(t->s, t->cap, t->n + 1, GROW_NO_LIMIT);
	if (r < 0)
		return r;
	t->s[t->n++] = strdup(key);
	hash_index_insert(&t->index, slot, t->n, h);
	return t->n;
}

static void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	hash_index_free(&t->index);
}

Test(hash, finds_every_entry_across_growth)
{
	struct strtab t = {};
	char key[32];

	hash_seed_init(&t.seed);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "name_%d", i);
		cr_assert_eq(intern(&t, key, SIZE_MAX), i + 1, "%s", key);
	}
	cr_assert_eq(t.index.n, 5000);
	cr_assert_geq(t.index.cap, 2 * t.index.n, "load factor above 1/2");
	for (int i = 4999; i >= 0; i--) {
		snprintf(key, sizeof(key), "name_%d", i);
		cr_assert_eq(intern(&t, key, SIZE_MAX), i + 1, "%s found again", key);
	}
	cr_assert_eq(t.n, 5000, "no duplicate inserted");
	hash_index_clear(&t.index);
	cr_assert_eq(t.index.n, 0);
	cr_assert_eq(hash_index_find(&t.index, hash_bytes(&t.seed, "name_7", 6), str_eq, &t, "name_7")->id,
		     0, "cleared");
	strtab_free(&t);
}

Test(hash, bounded)
{
	struct strtab t = {};

	hash_seed_init(&t.seed);
	cr_assert_eq(intern(&t, "a", 2), 1);
	cr_assert_eq(intern(&t, "b", 2), 2);
	cr_assert_eq(intern(&t, "c", 2), -E2BIG);
	cr_assert_eq(t.n, 2);
	/* limit + 1: lookups still succeed at the caller's own limit */
	cr_assert_eq(intern(&t, "a", 3), 1);
	strtab_free(&t);
}

Test(hash, find_on_empty_index_is_null)
{
	struct hash_index t = {};

	cr_assert_null(hash_index_find(&t, 1, str_eq, NULL, "x"));
	cr_assert_eq(hash_index_bytes(&t), 0);
	cr_assert_eq(hash_index_reserve_bytes(&t), HASH_INDEX_MIN_CAP * sizeof(struct hash_slot));
}

Test(hash, colliding_hashes_told_apart_by_key)
{
	/* Every key hashes to the same value: the probe must still tell them apart. */
	struct strtab t = {};
	char key[16];

	for (int i = 0; i < 100; i++) {
		struct hash_slot *s;

		snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(hash_index_reserve(&t.index, SIZE_MAX), 0);
		s = hash_index_find(&t.index, 7, str_eq, &t, key);
		cr_assert_eq(s->id, 0, "%s is new", key);
		cr_assert_eq(GROW_ARRAY(t.s, t.cap, t.n + 1, GROW_NO_LIMIT), 0);
		t.s[t.n++] = strdup(key);
		hash_index_insert(&t.index, s, t.n, 7);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cr_assert_eq(hash_index_find(&t.index, 7, str_eq, &t, key)->id, (uint32_t)i + 1);
	}
	strtab_free(&t);
}

Test(hash, siphash_depends_on_seed_and_every_byte)
{
	struct hash_seed a = { { 1, 2 } }, b = { { 1, 3 } };
	uint8_t buf[40] = {};
	uint64_t h = hash_bytes(&a, buf, sizeof(buf));

	cr_assert_eq(hash_bytes(&a, buf, sizeof(buf)), h, "deterministic");
	cr_assert_neq(hash_bytes(&b, buf, sizeof(buf)), h, "seeded");
	cr_assert_neq(hash_bytes(&a, buf, sizeof(buf) - 1), h, "length counts");
	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] = 1;
		cr_assert_neq(hash_bytes(&a, buf, sizeof(buf)), h, "byte %zu counts", i);
		buf[i] = 0;
	}
}

Test(hash, siphash_reference_vector)
{
	/* SipHash-2-4 with key 00..0f over the empty message and over 00..0e (the paper's
	 * test vectors, read as little-endian words). */
	struct hash_seed k = { { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull } };
	uint8_t msg[15];

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	cr_assert_eq(hash_bytes(&k, msg, 0), 0x726fdb47dd0e0e31ull);
	cr_assert_eq(hash_bytes(&k, msg, 15), 0xa129ca6149be45e5ull);
}

Test(hash, u64_mix_spreads_small_keys)
{
	/* Consecutive pids land in distinct low bits (the bits a power-of-two table uses). */
	uint8_t seen[256] = {};
	int distinct = 0;

	for (uint64_t pid = 1000; pid < 1128; pid++)
		if (!seen[hash_u64(pid) & 255]++)
			distinct++;
	cr_assert_gt(distinct, 90, "only %d of 128 distinct", distinct);
}

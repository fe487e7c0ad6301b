/* SPDX-License-Identifier: MIT */
/*
 * The one way profd grows an array: overflow-checked capacity growth with an optional cap on
 * the element count. Called by any module that appends to a heap array (the unwinder's CFI
 * builder, the pprof builder, the symbolizer's tables, the output converters, the service).
 *
 * Usage:
 *	r = grow((void **)&a->items, &a->cap, a->n + 1, sizeof(*a->items), MAX_ITEMS);
 *	if (r < 0)
 *		return r;
 *	a->items[a->n++] = item;
 *
 * On failure *p and *cap are unchanged (the old array is still valid and still owned by the
 * caller). Not thread-safe by itself: the caller owns the array.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The smallest capacity grow() allocates: small tables do not realloc for every append. */
#define GROW_MIN_CAP 16

/* No cap on the element count beyond what size_t and memory allow. */
#define GROW_NO_LIMIT SIZE_MAX

/*
 * Make room for `need` elements of `elem` bytes in *p, whose capacity is *cap elements. The new
 * capacity at least doubles (amortised O(1) appends), is at least GROW_MIN_CAP and `need`, and
 * never exceeds `limit` elements. Returns 0 (also when need <= *cap: nothing is done), -E2BIG
 * when need > limit, -ENOMEM when the byte count overflows (or exceeds PTRDIFF_MAX) or realloc
 * fails.
 */
int grow(void **p, size_t *cap, size_t need, size_t elem, size_t limit);

/* grow() for an array `ptr` whose capacity is `cap` (both lvalues). */
#define GROW_ARRAY(ptr, cap, need, limit)                                                          \
	grow((void **)&(ptr), &(cap), (need), sizeof(*(ptr)), (limit))

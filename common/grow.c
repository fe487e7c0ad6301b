/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/grow.h"
#include "common/macro.h"

int grow(void **p, size_t *cap, size_t need, size_t elem, size_t limit)
{
	size_t n, bytes;
	void *q;

	if (need <= *cap)
		return 0;
	if (need > limit)
		return -E2BIG;
	if (size_mul(*cap, 2, &n) < 0)
		n = SIZE_MAX;
	n = MAX(n, MAX(need, (size_t)GROW_MIN_CAP));
	n = MIN(n, limit);
	/* No allocator hands out more than PTRDIFF_MAX bytes: refuse before asking. */
	if (size_mul(n, elem, &bytes) < 0 || bytes > PTRDIFF_MAX)
		return -ENOMEM;
	q = realloc(*p, bytes);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

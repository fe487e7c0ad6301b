// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/macro.h"
#include "pipeline/stacksize.h"

struct sizer_entry {
	uint32_t pid;      /* 0: free slot */
	bool published;    /* a gap is in the BPF map */
	uint32_t gap;      /* the published gap */
	uint32_t n;        /* samples in the current window */
	uint32_t win;      /* index of the current window in min[] */
	uint64_t min[STACK_SIZER_HISTORY]; /* smallest gap per window, current one at [win] */
};

struct stack_sizer {
	stack_sizer_set_t set;
	void *userdata;
	struct sizer_entry *slots; /* open addressing, linear probing, power-of-two size */
	size_t mask, n;
};

int stack_sizer_new(stack_sizer_set_t set, void *userdata, struct stack_sizer **ret)
{
	struct stack_sizer *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	z->set = set;
	z->userdata = userdata;
	*ret = z;
	return 0;
}

void stack_sizer_free(struct stack_sizer *z)
{
	if (!z)
		return;
	free(z->slots);
	free(z);
}

static size_t slot_of(uint32_t pid, size_t mask)
{
	return (size_t)((pid * 0x9e3779b1u) >> 7) & mask;
}

static struct sizer_entry *find(const struct stack_sizer *z, uint32_t pid)
{
	if (!z->slots || pid == 0)
		return NULL;
	for (size_t i = slot_of(pid, z->mask);; i = (i + 1) & z->mask) {
		if (z->slots[i].pid == pid)
			return &z->slots[i];
		if (z->slots[i].pid == 0)
			return NULL;
	}
}

static int grow(struct stack_sizer *z)
{
	size_t cap = z->slots ? 2 * (z->mask + 1) : 64;
	struct sizer_entry *n = calloc(cap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; z->slots && i <= z->mask; i++) {
		size_t j;

		if (!z->slots[i].pid)
			continue;
		for (j = slot_of(z->slots[i].pid, cap - 1); n[j].pid; j = (j + 1) & (cap - 1))
			;
		n[j] = z->slots[i];
	}
	free(z->slots);
	z->slots = n;
	z->mask = cap - 1;
	return 0;
}

static void entry_reset(struct sizer_entry *e)
{
	e->n = 0;
	e->win = 0;
	for (int i = 0; i < STACK_SIZER_HISTORY; i++)
		e->min[i] = UINT64_MAX;
}

static struct sizer_entry *get(struct stack_sizer *z, uint32_t pid)
{
	struct sizer_entry *e = find(z, pid);
	size_t i;

	if (e || pid == 0)
		return e;
	if (z->n >= STACK_SIZER_MAX_PROCS)
		return NULL; /* untracked: its samples copy the cap */
	/* At most half full, so probes stay short and always end at a free slot. */
	if (!z->slots || 2 * (z->n + 1) > z->mask + 1)
		if (grow(z) < 0)
			return NULL;
	for (i = slot_of(pid, z->mask); z->slots[i].pid; i = (i + 1) & z->mask)
		;
	z->slots[i] = (struct sizer_entry){ .pid = pid };
	entry_reset(&z->slots[i]);
	z->n++;
	return &z->slots[i];
}

uint32_t stack_sizer_next(int64_t cur, uint64_t seen)
{
	uint64_t target = seen > STACK_SIZER_MARGIN ? seen - STACK_SIZER_MARGIN : 0;

	target = MIN(target, (uint64_t)UINT32_MAX - 1);
	/* Copy more at once; copy less only halfway per window. */
	if (cur < 0 || target <= (uint64_t)cur)
		return (uint32_t)target;
	return (uint32_t)((uint64_t)cur + (target - (uint64_t)cur + 1) / 2);
}

static void publish(struct stack_sizer *z, struct sizer_entry *e, uint32_t gap)
{
	if (e->published && e->gap == gap)
		return;
	e->published = true;
	e->gap = gap;
	if (z->set)
		z->set(z->userdata, e->pid, gap);
}

void stack_sizer_observe(struct stack_sizer *z, uint32_t pid, uint64_t gap, bool truncated,
			 bool cut)
{
	struct sizer_entry *e = get(z, pid);
	uint64_t seen = UINT64_MAX;

	if (!e)
		return;
	if (cut) {
		/* A stack was lost to the gap: copy to the VMA's end again, and learn anew. */
		publish(z, e, 0);
		entry_reset(e);
		return;
	}
	if (truncated)
		return;
	e->min[e->win] = MIN(e->min[e->win], gap);
	/* Below the published gap (+ margin): a thread with less above its frames. Now. */
	if (e->published && gap < (uint64_t)e->gap + STACK_SIZER_MARGIN)
		publish(z, e, stack_sizer_next(e->gap, gap));
	e->n++;
	if (!e->published && e->n >= STACK_SIZER_FIRST) {
		publish(z, e, stack_sizer_next(-1, e->min[e->win]));
		return;
	}
	if (e->n < STACK_SIZER_WINDOW)
		return;
	for (int i = 0; i < STACK_SIZER_HISTORY; i++)
		seen = MIN(seen, e->min[i]);
	publish(z, e, stack_sizer_next(e->published ? (int64_t)e->gap : -1, seen));
	e->n = 0;
	e->win = (e->win + 1) % STACK_SIZER_HISTORY;
	e->min[e->win] = UINT64_MAX;
}

void stack_sizer_forget(struct stack_sizer *z, uint32_t pid)
{
	struct sizer_entry *e = find(z, pid);
	size_t i, j;

	if (!e)
		return;
	/* The BPF side forgets on its own at exec and exit. */
	i = (size_t)(e - z->slots);
	z->slots[i].pid = 0;
	z->n--;
	/* Backward-shift deletion: move later members of the probe run into the hole. */
	for (j = (i + 1) & z->mask; z->slots[j].pid; j = (j + 1) & z->mask) {
		size_t home = slot_of(z->slots[j].pid, z->mask);

		/* Stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		z->slots[i] = z->slots[j];
		z->slots[j].pid = 0;
		i = j;
	}
}

void stack_sizer_fork(struct stack_sizer *z, uint32_t ppid, uint32_t pid)
{
	struct sizer_entry *pe = find(z, ppid), copy, *e;

	if (!pe || !pe->published || pid == ppid)
		return;
	copy = *pe; /* get() may move the table */
	e = get(z, pid);
	if (!e)
		return;
	*e = copy;
	e->pid = pid;
}

int64_t stack_sizer_get(const struct stack_sizer *z, uint32_t pid)
{
	const struct sizer_entry *e = find(z, pid);

	return e && e->published ? (int64_t)e->gap : -1;
}

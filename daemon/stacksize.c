// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>

#include "common/macro.h"
#include "daemon/stacksize.h"

struct sizer_entry {
	uint32_t pid;  /* 0: free slot */
	uint32_t size; /* 0: the cap (nothing learnt yet) */
	uint32_t n;    /* samples in the current window */
	uint32_t win;  /* index of the current window in max[] */
	uint64_t max[STACK_SIZER_HISTORY]; /* largest need per window, current one at [win] */
};

struct stack_sizer {
	uint32_t cap;
	stack_sizer_set_t set;
	void *userdata;
	struct sizer_entry *slots; /* open addressing, linear probing, power-of-two size */
	size_t mask, n;
};

int stack_sizer_new(uint32_t cap, stack_sizer_set_t set, void *userdata, struct stack_sizer **ret)
{
	struct stack_sizer *z;

	if (cap == 0)
		return -EINVAL;
	z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->cap = cap;
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
	z->n++;
	return &z->slots[i];
}

static uint32_t round_up(uint64_t v, uint32_t cap)
{
	v = (v + STACK_SIZER_ALIGN - 1) / STACK_SIZER_ALIGN * STACK_SIZER_ALIGN;
	return (uint32_t)MIN(v, (uint64_t)cap);
}

uint32_t stack_sizer_next(uint32_t cap, uint32_t cur, uint64_t need)
{
	/* A quarter more than the deepest recent walk, and 128 bytes for a frame or two more. */
	uint32_t target = round_up(MAX(need + need / 4 + 128, (uint64_t)STACK_SIZER_MIN), cap);

	if (cur == 0 || target >= cur)
		return target; /* first window: what it saw is the best guess; growing: at once */
	/* Shrinking: halfway per window, so one shallow window does not undo a deep one. */
	return round_up(MAX((uint64_t)target, (uint64_t)cur - (cur - target) / 2), cap);
}

static void set_size(struct stack_sizer *z, struct sizer_entry *e, uint32_t size)
{
	/* The cap is what no entry means: the BPF side needs none for it. */
	uint32_t v = size >= z->cap ? 0 : size;

	if (v == e->size)
		return;
	e->size = v;
	if (z->set)
		z->set(z->userdata, e->pid, v);
}

void stack_sizer_observe(struct stack_sizer *z, uint32_t pid, uint64_t need, bool cut)
{
	struct sizer_entry *e = get(z, pid);
	uint32_t cur;
	uint64_t most = 0;

	if (!e)
		return;
	cur = e->size ? e->size : z->cap;
	if (cut) {
		/* A stack was lost to a size too small: copy everything, then learn again. */
		*e = (struct sizer_entry){ .pid = pid, .size = e->size };
		set_size(z, e, z->cap);
		return;
	}
	e->max[e->win] = MAX(e->max[e->win], need);
	/* Came within an eighth of the size: grow before a deeper one is cut. */
	if (e->size && need > cur - cur / 8)
		set_size(z, e, round_up(MAX(2 * need, (uint64_t)cur), z->cap));
	if (++e->n < STACK_SIZER_WINDOW)
		return;
	for (int i = 0; i < STACK_SIZER_HISTORY; i++)
		most = MAX(most, e->max[i]);
	set_size(z, e, stack_sizer_next(z->cap, e->size, most));
	e->n = 0;
	e->win = (e->win + 1) % STACK_SIZER_HISTORY;
	e->max[e->win] = 0;
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

uint32_t stack_sizer_get(const struct stack_sizer *z, uint32_t pid)
{
	const struct sizer_entry *e = find(z, pid);

	return e && e->size ? e->size : z->cap;
}

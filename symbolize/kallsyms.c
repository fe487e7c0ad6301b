/* SPDX-License-Identifier: MIT */
/* /proc/kallsyms: text symbols of the kernel and its modules, sorted for binary search. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

struct ksym {
	uint64_t addr;
	const char *name; /* "func" or "func [module]", in the pool */
	uint8_t rank;     /* preference among aliases at one address: lower wins */
};

struct kallsyms {
	struct ksym *syms;
	size_t n;
	struct str_pool pool;
};

void kallsyms_free(struct kallsyms *k)
{
	if (!k)
		return;
	free(k->syms);
	str_pool_done(&k->pool);
	free(k);
}
DEFINE_FREEP(struct kallsyms, kallsyms_free)

/* Globals before weak before locals, so an alias like "_stext"/"startup_64" resolves the
 * same way every time. -1: not a text symbol. */
static int text_rank(char type)
{
	switch (type) {
	case 'T':
		return 0;
	case 'W':
		return 1;
	case 't':
		return 2;
	case 'w':
		return 3;
	default:
		return -1;
	}
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Parse "addr type name[\t[module]]". Returns 1 with the fields set, 0 for a line that is
 * not in that shape (ignored by the caller).
 */
static int parse_line(char *line, uint64_t *ret_addr, char *ret_type, const char **ret_name,
		      size_t *ret_name_len, const char **ret_mod, size_t *ret_mod_len)
{
	char *p = line;
	uint64_t addr = 0;
	int digits = 0;

	for (; *p && !is_blank(*p); p++, digits++) {
		int v;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			v = *p - 'A' + 10;
		else
			return 0;
		if (digits >= 16)
			return 0;
		addr = addr << 4 | (uint64_t)v;
	}
	if (digits == 0 || !is_blank(*p))
		return 0;
	p++;

	if (!*p || is_blank(*p) || !is_blank(p[1]))
		return 0;
	*ret_type = *p;
	p += 2;

	const char *name = p;
	while (*p && !is_blank(*p) && *p != '\n')
		p++;
	if (p == name)
		return 0;
	size_t name_len = (size_t)(p - name);

	while (is_blank(*p))
		p++;
	const char *mod = NULL;
	size_t mod_len = 0;
	if (*p == '[') {
		char *end = strchr(p, ']');
		if (!end || end == p + 1)
			return 0;
		mod = p + 1;
		mod_len = (size_t)(end - mod);
		p = end + 1;
		while (is_blank(*p))
			p++;
	}
	if (*p && *p != '\n')
		return 0;

	*ret_addr = addr;
	*ret_name = name;
	*ret_name_len = name_len;
	*ret_mod = mod;
	*ret_mod_len = mod_len;
	return 1;
}

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->name, y->name);
}

int kallsyms_load(const char *path, struct kallsyms **ret)
{
	if (!path || !ret)
		return -EINVAL;

	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;

	_cleanup_(kallsyms_freep) struct kallsyms *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	str_pool_init(&k->pool, KALLSYMS_MAX_STRING_BYTES);

	size_t cap = 0, parsed = 0;
	bool any_nonzero = false;
	char line[KALLSYMS_MAX_LINE];

	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		/* A line that fills the buffer without its newline (and is not the last) is not
		 * kallsyms: KSYM_NAME_LEN plus a module name fit with plenty of room. */
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f))
			return -EBADMSG;

		uint64_t addr;
		char type;
		const char *name, *mod;
		size_t name_len, mod_len;
		if (!parse_line(line, &addr, &type, &name, &name_len, &mod, &mod_len))
			continue;
		parsed++;
		if (addr != 0)
			any_nonzero = true;
		int rank = text_rank(type);
		if (rank < 0)
			continue;

		if (k->n == cap) {
			if (cap >= KALLSYMS_MAX_ENTRIES)
				return -E2BIG;
			size_t ncap = MIN(cap ? cap * 2 : 4096, (size_t)KALLSYMS_MAX_ENTRIES);
			struct ksym *ns = reallocarray(k->syms, ncap, sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			k->syms = ns;
			cap = ncap;
		}

		char buf[KALLSYMS_MAX_LINE + 4];
		int n = mod ? snprintf(buf, sizeof(buf), "%.*s [%.*s]", (int)name_len, name,
				       (int)mod_len, mod)
			    : snprintf(buf, sizeof(buf), "%.*s", (int)name_len, name);
		if (n < 0 || (size_t)n >= sizeof(buf))
			continue;
		const char *s = str_pool_strndup(&k->pool, buf, (size_t)n);
		if (!s)
			return -E2BIG;
		k->syms[k->n++] = (struct ksym){ .addr = addr, .name = s, .rank = (uint8_t)rank };
	}
	if (ferror(f))
		return -EIO;

	if (parsed == 0)
		return -ENODATA;
	/* kptr_restrict hides addresses by printing zeros for every symbol. */
	if (!any_nonzero)
		return -EACCES;
	if (k->n == 0)
		return -ENODATA;

	qsort(k->syms, k->n, sizeof(*k->syms), ksym_cmp);

	/* Keep one symbol per address (the preferred alias) so end = next start is > start. */
	size_t w = 0;
	for (size_t i = 0; i < k->n; i++)
		if (w == 0 || k->syms[w - 1].addr != k->syms[i].addr)
			k->syms[w++] = k->syms[i];
	k->n = w;

	*ret = TAKE_PTR(k);
	return 0;
}

int kallsyms_lookup(const struct kallsyms *k, uint64_t addr, const char **ret_name,
		    uint64_t *ret_start)
{
	if (!k)
		return -EINVAL;
	if (k->n == 0 || addr < k->syms[0].addr)
		return -ENOENT;

	/* Last symbol with start <= addr. */
	size_t lo = 0, hi = k->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}

	const struct ksym *s = &k->syms[lo];
	/* There is no size in kallsyms: a symbol ends where the next begins; the last one gets
	 * a fixed span rather than the rest of the address space. */
	uint64_t end = lo + 1 < k->n ? k->syms[lo + 1].addr
				     : (s->addr > UINT64_MAX - KALLSYMS_LAST_SYMBOL_SIZE
						? UINT64_MAX
						: s->addr + KALLSYMS_LAST_SYMBOL_SIZE);
	if (addr >= end)
		return -ENOENT;

	if (ret_name)
		*ret_name = s->name;
	if (ret_start)
		*ret_start = s->addr;
	return 0;
}

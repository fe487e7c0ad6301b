// SPDX-License-Identifier: MIT
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "daemon/profile.h"
#include "daemon/unwind/unwind.h"
#include "symbolize/symbolize.h"

/* One symbolized (mapping, address): the pprof location and the leaf function's name. */
struct loc_entry {
	uint64_t addr;
	uint32_t map_id;
	bool used; /* map id 0 (AGG_MAP_NONE) is valid, so emptiness needs its own flag */
	uint64_t loc_id;
	const char *leaf; /* stable for the builder's lifetime (interned by symbolizer or below) */
};

struct name_count {
	const char *name;
	uint64_t count;
};

struct builder_ctx {
	const struct aggregate *a;
	const struct profile_options *o;
	struct pprof_builder *b;
	uint64_t *map_ids; /* aggregate map id → pprof mapping id (0 until added) */
	uint64_t kernel_map_id;
	struct loc_entry *locs;
	size_t locs_cap, locs_n;
	struct name_count *names;
	size_t names_cap, names_n;
	/* Fallback names ("libc.so.6+0x1234") live here until the builder is done. */
	char **strs;
	size_t strs_n, strs_cap;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static const char *keep_str(struct builder_ctx *c, char *s)
{
	if (!s)
		return NULL;
	if (c->strs_n == c->strs_cap) {
		size_t n = c->strs_cap ? c->strs_cap * 2 : 64;
		char **p = reallocarray(c->strs, n, sizeof(*p));

		if (!p) {
			free(s);
			return NULL;
		}
		c->strs = p;
		c->strs_cap = n;
	}
	c->strs[c->strs_n++] = s;
	return s;
}

static const char *fmt_str(struct builder_ctx *c, const char *fmt, ...) _printf_(2, 3);
static const char *fmt_str(struct builder_ctx *c, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return keep_str(c, s);
}

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : (path ? path : "?");
}

static int locs_grow(struct builder_ctx *c)
{
	size_t ncap = c->locs_cap ? c->locs_cap * 2 : 4096;
	struct loc_entry *n = calloc(ncap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < c->locs_cap; i++) {
		struct loc_entry *e = &c->locs[i];
		size_t k;

		if (!e->used)
			continue;
		for (k = mix(e->addr ^ ((uint64_t)e->map_id << 48)) & (ncap - 1); n[k].used;
		     k = (k + 1) & (ncap - 1))
			;
		n[k] = *e;
	}
	free(c->locs);
	c->locs = n;
	c->locs_cap = ncap;
	return 0;
}

static struct loc_entry *loc_slot(struct builder_ctx *c, uint32_t map_id, uint64_t addr)
{
	size_t k;

	if ((c->locs_n + 1) * 2 > c->locs_cap && locs_grow(c) < 0)
		return NULL;
	for (k = mix(addr ^ ((uint64_t)map_id << 48)) & (c->locs_cap - 1); c->locs[k].used;
	     k = (k + 1) & (c->locs_cap - 1))
		if (c->locs[k].addr == addr && c->locs[k].map_id == map_id)
			return &c->locs[k];
	return &c->locs[k];
}

static int ensure_mapping(struct builder_ctx *c, uint32_t map_id, uint64_t *ret)
{
	const struct agg_mapping *m;
	struct pprof_mapping pm = {};
	int r;

	if (map_id == AGG_MAP_NONE) {
		*ret = 0;
		return 0;
	}
	if (map_id == AGG_MAP_KERNEL) {
		if (!c->kernel_map_id) {
			pm = (struct pprof_mapping){
				.memory_start = 0xffff800000000000ull,
				.memory_limit = UINT64_MAX,
				.filename = "[kernel.kallsyms]",
				.has_functions = c->o->kallsyms != NULL,
			};
			r = pprof_add_mapping(c->b, &pm, &c->kernel_map_id);
			if (r < 0)
				return r;
		}
		*ret = c->kernel_map_id;
		return 0;
	}
	if (c->map_ids[map_id]) {
		*ret = c->map_ids[map_id];
		return 0;
	}
	m = aggregate_mapping(c->a, map_id);
	if (!m) {
		*ret = 0;
		return 0;
	}
	if (m->dso && !m->dso->sym && m->dso->sym_err == 0 && m->dso->fd >= 0) {
		r = sym_elf_open(m->dso->fd, m->dso->path, &m->dso->sym);
		if (r < 0)
			m->dso->sym_err = r;
	}
	pm.memory_start = m->start;
	pm.memory_limit = m->end;
	pm.file_offset = m->pgoff;
	pm.filename = m->name ? m->name : "[anon]";
	pm.build_id = m->dso && m->dso->build_id_hex[0] ? m->dso->build_id_hex : NULL;
	if (m->dso && m->dso->sym) {
		pm.has_functions = sym_elf_has_symbols(m->dso->sym);
		pm.has_filenames = pm.has_line_numbers = sym_elf_has_lines(m->dso->sym);
		pm.has_inline_frames = pm.has_line_numbers && c->o->inlines;
	}
	r = pprof_add_mapping(c->b, &pm, &c->map_ids[map_id]);
	if (r < 0)
		return r;
	*ret = c->map_ids[map_id];
	return 0;
}

/* Symbolize one frame into pprof lines (leaf first). Never fails for lack of a name. */
static size_t symbolize_frame(struct builder_ctx *c, const struct agg_frame *f,
			      struct sym_result *res, struct pprof_line *lines)
{
	uint64_t look = f->addr - ((f->flags & AGG_FRAME_RETURN) ? 1 : 0);
	const struct agg_mapping *m;
	const char *name = NULL;

	res->n_frames = 0;
	if (f->map_id == AGG_MAP_KERNEL) {
		if (c->o->kallsyms && kallsyms_lookup(c->o->kallsyms, look, &name, NULL) == 0) {
			lines[0] = (struct pprof_line){ .function_name = name };
			return 1;
		}
		name = fmt_str(c, "[kernel] 0x%" PRIx64, f->addr);
	} else if ((m = aggregate_mapping(c->a, f->map_id))) {
		uint64_t off = look - m->start + m->pgoff, vaddr;

		if (m->dso && m->dso->sym && sym_elf_vaddr_from_offset(m->dso->sym, off, &vaddr) == 0 &&
		    sym_elf_lookup(m->dso->sym, vaddr, c->o->inlines, res) == 0 && res->n_frames > 0) {
			size_t n = MIN(res->n_frames, (size_t)SYM_MAX_INLINE);

			for (size_t i = 0; i < n; i++)
				lines[i] = (struct pprof_line){
					.function_name = res->frames[i].name,
					.system_name = res->frames[i].system_name,
					.filename = res->frames[i].file,
					.line = res->frames[i].line,
				};
			return n;
		}
		if (m->kind == MAPPING_ANON)
			name = fmt_str(c, "[anon] 0x%" PRIx64, f->addr);
		else
			name = fmt_str(c, "%s+0x%" PRIx64, base_name(m->name),
				       f->addr - m->start + m->pgoff);
	} else {
		name = fmt_str(c, "[unknown] 0x%" PRIx64, f->addr);
	}
	lines[0] = (struct pprof_line){ .function_name = name ? name : "[unknown]" };
	return 1;
}

static int frame_location(struct builder_ctx *c, const struct agg_frame *f, uint64_t *ret_id,
			  const char **ret_leaf)
{
	struct loc_entry *e = loc_slot(c, f->map_id, f->addr);
	struct pprof_line lines[SYM_MAX_INLINE];
	struct sym_result res;
	uint64_t pm;
	size_t n;
	int r;

	if (!e)
		return -ENOMEM;
	if (e->used) {
		*ret_id = e->loc_id;
		*ret_leaf = e->leaf;
		return 0;
	}
	r = ensure_mapping(c, f->map_id, &pm);
	if (r < 0)
		return r;
	n = symbolize_frame(c, f, &res, lines);
	r = pprof_add_location(c->b, pm, f->addr, lines, n, &e->loc_id);
	if (r < 0)
		return r;
	e->used = true;
	e->addr = f->addr;
	e->map_id = f->map_id;
	e->leaf = lines[0].function_name;
	c->locs_n++;
	*ret_id = e->loc_id;
	*ret_leaf = e->leaf;
	return 0;
}

static int stop_location(struct builder_ctx *c, uint16_t stop, uint64_t *ret_id)
{
	static const char *const names[] = {
		[UNWIND_STOP_TRUNCATED] = "[truncated: stack copy]",
		[UNWIND_STOP_NO_MAPPING] = "[truncated: no mapping]",
		[UNWIND_STOP_NO_CFI] = "[truncated: no unwind info]",
		[UNWIND_STOP_DEPTH] = "[truncated: depth limit]",
		[UNWIND_STOP_NO_PROGRESS] = "[truncated: no progress]",
		[UNWIND_STOP_BAD_RA] = "[truncated: bad return address]",
	};
	const char *name = stop < ARRAY_SIZE(names) && names[stop] ? names[stop]
								    : "[truncated: unknown]";
	struct pprof_line line = { .function_name = name };

	/* Synthetic locations: no mapping, an address no real frame can have. */
	return pprof_add_location(c->b, 0, 0xfffffffffffff000ull | stop, &line, 1, ret_id);
}

static void count_name(struct builder_ctx *c, const char *name, uint64_t n)
{
	for (size_t i = 0; i < c->names_n; i++)
		if (c->names[i].name == name || strcmp(c->names[i].name, name) == 0) {
			c->names[i].count += n;
			return;
		}
	if (c->names_n == c->names_cap) {
		size_t ncap = c->names_cap ? c->names_cap * 2 : 256;
		struct name_count *p = reallocarray(c->names, ncap, sizeof(*p));

		if (!p)
			return; /* the summary is best effort */
		c->names = p;
		c->names_cap = ncap;
	}
	c->names[c->names_n++] = (struct name_count){ .name = name, .count = n };
}

static int cmp_count_desc(const void *x, const void *y)
{
	const struct name_count *a = x, *b = y;

	return a->count < b->count ? 1 : a->count > b->count ? -1 : strcmp(a->name, b->name);
}

int profile_build(const struct aggregate *a, const struct profile_options *o,
		  struct pprof_builder **ret, struct profile_summary *sum)
{
	struct pprof_config cfg = {
		.n_sample_types = 2,
		.sample_types = { { "samples", "count" }, { "cpu", "nanoseconds" } },
		.period_type = { "cpu", "nanoseconds" },
		.period = (int64_t)o->period_ns,
		.time_nanos = o->time_nanos,
		.duration_nanos = o->duration_nanos,
	};
	struct builder_ctx c = { .a = a, .o = o };
	uint64_t *ids = NULL;
	int r;

	memset(sum, 0, sizeof(*sum));
	r = pprof_builder_new(&cfg, &c.b);
	if (r < 0)
		return r;
	c.map_ids = calloc(AGG_MAP_FIRST + aggregate_n_mappings(a), sizeof(*c.map_ids));
	ids = calloc(AGG_MAX_FRAMES + 1, sizeof(*ids));
	if (!c.map_ids || !ids) {
		r = -ENOMEM;
		goto out;
	}

	/* pprof presents the first mapping as "the" binary of the profile: put executables first. */
	for (size_t i = 0; i < aggregate_n_mappings(a); i++) {
		uint64_t id;

		if (aggregate_mapping(a, AGG_MAP_FIRST + i)->is_exe) {
			r = ensure_mapping(&c, AGG_MAP_FIRST + i, &id);
			if (r < 0)
				goto out;
		}
	}

	for (size_t i = 0; i < aggregate_n_stacks(a); i++) {
		const struct agg_stack *s = aggregate_stack(a, i);
		struct pprof_label labels[] = {
			{ .key = "pid", .num = s->pid },
			{ .key = "tid", .num = s->tid },
			{ .key = "comm", .str = s->comm },
			{ .key = "process", .str = s->pcomm[0] ? s->pcomm : s->comm },
		};
		int64_t values[2] = { (int64_t)s->count, (int64_t)(s->count * o->period_ns) };
		size_t n = 0;

		for (size_t f = 0; f < s->n_frames && n < AGG_MAX_FRAMES; f++) {
			const char *leaf;

			r = frame_location(&c, &s->frames[f], &ids[n], &leaf);
			if (r < 0)
				goto out;
			if (n == 0)
				count_name(&c, leaf, s->count);
			n++;
		}
		if (!s->complete) {
			r = stop_location(&c, s->stop, &ids[n]);
			if (r < 0)
				goto out;
			if (n == 0)
				count_name(&c, "[truncated]", s->count);
			n++;
		}
		if (n == 0)
			continue;
		r = pprof_add_sample(c.b, ids, n, values, 2, labels, ARRAY_SIZE(labels));
		if (r < 0)
			goto out;

		sum->samples += s->count;
		if (s->stop != UNWIND_STOP_KERNEL_THREAD) {
			sum->user_stacks += s->count;
			if (s->complete)
				sum->complete += s->count;
		}
		if (s->stop < ARRAY_SIZE(sum->stops))
			sum->stops[s->stop] += s->count;
	}

	qsort(c.names, c.names_n, sizeof(*c.names), cmp_count_desc);
	for (size_t i = 0; i < c.names_n && i < PROFILE_TOP_N; i++) {
		snprintf(sum->top[i].name, sizeof(sum->top[i].name), "%s", c.names[i].name);
		sum->top[i].self = c.names[i].count;
		sum->n_top++;
	}
	sum->n_locations = pprof_n_locations(c.b);
	sum->n_functions = pprof_n_functions(c.b);
	sum->n_mappings = aggregate_n_mappings(a);
	*ret = TAKE_PTR(c.b);
	r = 0;
out:
	pprof_builder_free(c.b);
	free(c.map_ids);
	free(c.locs);
	free(c.names);
	/* The builder copied every string it interned; fallback names can go now. */
	for (size_t i = 0; i < c.strs_n; i++)
		free(c.strs[i]);
	free(c.strs);
	free(ids);
	return r;
}

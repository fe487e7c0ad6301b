// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/macro.h"
#include "output/output.h"
#include "output/profile.h"
#include "pipeline/python/python.h"
#include "pipeline/unwind/unwind.h"
#include "symbolize/symbolize.h"

_Static_assert(AGG_MAX_JITMAPS == PROFILE_MAX_PERFMAPS &&
		       AGG_MAX_JITMAP_BYTES == PROFILE_MAX_PERFMAP_BYTES,
	       "an aggregate keeps what a profile may use");

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * One symbolized (mapping, address): the pprof location and the leaf function's name. Frames
 * in anonymous memory are also keyed by pid: the same range in two processes holds different
 * code (and perf maps are per process).
 */
struct loc_key {
	uint64_t addr;
	uint32_t map_id;
	uint32_t pid; /* 0 unless the mapping is anonymous */
};

struct loc_entry {
	struct loc_key key;
	uint64_t loc_id;
	const char *leaf; /* stable until profile_build() returns (kallsyms, perf map, strs) */
};

/*
 * Small map, uint64 → uint64, for per-pid things: entries in the order they were added and a
 * common/hash index over them (seeded: pids and map ids come from the recording).
 */
struct u64_entry {
	uint64_t key, val;
};
struct u64_map {
	struct u64_entry *v;
	size_t cap, n;
	struct hash_index index;
	struct hash_seed seed;
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
	uint64_t py_locs; /* Python locations so far: their synthetic addresses */
	struct loc_entry *locs; /* in the order they were added */
	size_t locs_cap, locs_n;
	/* locs by key (id: index + 1); seeded: the addresses come from the profiled programs */
	struct hash_index loc_index;
	struct hash_seed loc_seed;
	struct name_count *names;
	size_t names_cap, names_n;
	/* Fallback names ("libc.so.6+0x1234") and copied leaf names live here until the end. */
	char **strs;
	size_t strs_n, strs_cap;
	struct sym_cache *cache;
	struct u64_map anon_maps; /* (map id << 32 | pid) → pprof mapping id */
	struct u64_map perfmaps;  /* PROFILE_PERFMAPS_DIR: pid → struct perfmap * (0: none) */
	size_t n_perfmaps;
	uint64_t perfmap_bytes, perfmap_ns; /* read and spent loading them */
};

static void u64_map_init(struct u64_map *m)
{
	*m = (struct u64_map){};
	hash_seed_init(&m->seed);
}

static void u64_map_free(struct u64_map *m)
{
	free(m->v);
	hash_index_free(&m->index);
}

static bool u64_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct u64_map *m = ctx;

	return m->v[id - 1].key == *(const uint64_t *)key;
}

static uint64_t *u64_map_get(struct u64_map *m, uint64_t key)
{
	const struct hash_slot *s;

	if (!m->index.cap)
		return NULL;
	s = hash_index_find(&m->index, hash_bytes(&m->seed, &key, sizeof(key)), u64_eq, m, &key);
	return s->id ? &m->v[s->id - 1].val : NULL;
}

static int u64_map_put(struct u64_map *m, uint64_t key, uint64_t val)
{
	uint64_t h = hash_bytes(&m->seed, &key, sizeof(key));
	struct hash_slot *s;
	int r;

	r = hash_index_reserve(&m->index, UINT32_MAX - 1);
	if (r < 0)
		return r;
	s = hash_index_find(&m->index, h, u64_eq, m, &key);
	if (s->id) {
		m->v[s->id - 1].val = val;
		return 0;
	}
	r = GROW_ARRAY(m->v, m->cap, m->n + 1, UINT32_MAX - 1);
	if (r < 0)
		return r;
	m->v[m->n++] = (struct u64_entry){ .key = key, .val = val };
	hash_index_insert(&m->index, s, (uint32_t)m->n, h);
	return 0;
}

static const char *keep_str(struct builder_ctx *c, char *s)
{
	if (!s)
		return NULL;
	if (GROW_ARRAY(c->strs, c->strs_cap, c->strs_n + 1, GROW_NO_LIMIT) < 0) {
		free(s);
		return NULL;
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

static bool loc_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct builder_ctx *c = ctx;
	const struct loc_key *k = key;
	const struct loc_key *e = &c->locs[id - 1].key;

	return e->addr == k->addr && e->map_id == k->map_id && e->pid == k->pid;
}

/*
 * The location of key *k, or NULL with *ret_slot the index slot a new one goes in (valid until
 * loc_add(), which has room for it then) and *ret_hash its hash; *ret_slot NULL: out of memory.
 */
static struct loc_entry *loc_find(struct builder_ctx *c, const struct loc_key *k,
				  struct hash_slot **ret_slot, uint64_t *ret_hash)
{
	struct hash_slot *s;

	*ret_slot = NULL;
	*ret_hash = hash_bytes(&c->loc_seed, k, sizeof(*k));
	if (hash_index_reserve(&c->loc_index, UINT32_MAX - 1) < 0)
		return NULL;
	s = hash_index_find(&c->loc_index, *ret_hash, loc_eq, c, k);
	if (s->id)
		return &c->locs[s->id - 1];
	if (GROW_ARRAY(c->locs, c->locs_cap, c->locs_n + 1, UINT32_MAX - 1) < 0)
		return NULL;
	*ret_slot = s;
	return NULL;
}

/* Append e as the location of its key, into slot s from loc_find() (which made room). */
static void loc_add(struct builder_ctx *c, struct hash_slot *s, uint64_t h,
		    const struct loc_entry *e)
{
	c->locs[c->locs_n++] = *e;
	hash_index_insert(&c->loc_index, s, (uint32_t)c->locs_n, h);
}

static void dso_binary(const struct dso *d, struct sym_binary *ret)
{
	*ret = (struct sym_binary){
		.build_id = d->build_id,
		.build_id_len = d->build_id_len,
		.fd = d->fd,
		.path = d->path,
		.root = d->root,
		.file_id = d->fd >= 0 ? &d->file_id : NULL,
	};
}

/* ---- JIT perf maps ------------------------------------------------------------------------ */

/* DIR/perf-PID.map of a recording's process: nothing of this machine's is consulted. */
static struct perfmap *load_perfmap_dir(struct builder_ctx *c, uint32_t pid)
{
	_cleanup_free_ char *path = NULL;
	struct perfmap *pm = NULL;
	uint64_t t0;
	int r;

	if (c->perfmap_bytes >= PROFILE_MAX_PERFMAP_BYTES ||
	    c->perfmap_ns >= PROFILE_PERFMAP_BUDGET_NS) {
		log_debug("perf map of pid %" PRIu32 ": the profile's perf map budget is spent", pid);
		return NULL;
	}
	if (asprintf(&path, "%s/perf-%" PRIu32 ".map", c->o->perfmap_dir, pid) < 0)
		return NULL;
	t0 = now_ns();
	r = perfmap_load(path, &pm); /* regular files only, never a symlink */
	c->perfmap_ns += now_ns() - t0;
	c->perfmap_bytes += perfmap_bytes(pm);
	if (r < 0 && r != -ENOENT)
		log_debug("perf map %s: %s", path, strerror(-r));
	return r < 0 ? NULL : pm;
}

/*
 * The perf map of pid, NULL when it has none. Live: the copy the aggregate kept, read while the
 * process lived (pipeline/jitmap.h), parsed on first use. A directory: loaded on first use. Both
 * within the profile's limits.
 */
static const struct perfmap *perfmap_for_pid(struct builder_ctx *c, uint32_t pid)
{
	uint64_t *v;
	struct perfmap *pm = NULL;

	if (c->o->perfmaps == PROFILE_PERFMAPS_LIVE) {
		struct jitmap *jm = aggregate_jitmap(c->a, pid);
		const struct perfmap *live;
		uint64_t t0;

		if (!jm || jm->parsed)
			return jm ? jm->pm : NULL;
		if (c->perfmap_ns >= PROFILE_PERFMAP_BUDGET_NS) {
			log_debug("perf map of pid %" PRIu32 ": the profile's time budget is spent", pid);
			return NULL;
		}
		t0 = now_ns();
		live = jitmap_perfmap(jm);
		c->perfmap_ns += now_ns() - t0;
		return live;
	}
	if (c->o->perfmaps != PROFILE_PERFMAPS_DIR || !c->o->perfmap_dir)
		return NULL;
	v = u64_map_get(&c->perfmaps, pid);
	if (v)
		return (const struct perfmap *)(uintptr_t)*v;
	if (c->n_perfmaps < PROFILE_MAX_PERFMAPS)
		pm = load_perfmap_dir(c, pid);
	if (u64_map_put(&c->perfmaps, pid, (uintptr_t)pm) < 0) {
		perfmap_free(pm);
		return NULL;
	}
	if (pm)
		c->n_perfmaps++;
	return pm;
}

static void mapping_of(const struct agg_mapping *m, struct pprof_mapping *pm)
{
	*pm = (struct pprof_mapping){
		.memory_start = m->start,
		.memory_limit = m->end,
		.file_offset = m->pgoff,
		.filename = m->name ? m->name : "[anon]",
		.build_id = m->dso && m->dso->build_id_hex[0] ? m->dso->build_id_hex : NULL,
	};
}

/* Anonymous memory: one pprof mapping per process, named by its perf map if it has one. */
static int ensure_anon_mapping(struct builder_ctx *c, uint32_t map_id, uint32_t pid,
			       const struct agg_mapping *m, uint64_t *ret)
{
	uint64_t key = (uint64_t)map_id << 32 | pid, *v = u64_map_get(&c->anon_maps, key), id;
	struct pprof_mapping pm;
	int r;

	if (v) {
		*ret = *v;
		return 0;
	}
	mapping_of(m, &pm);
	pm.has_functions = perfmap_for_pid(c, pid) != NULL;
	r = pprof_add_mapping(c->b, &pm, &id);
	if (r < 0)
		return r;
	r = u64_map_put(&c->anon_maps, key, id);
	if (r < 0)
		return r;
	*ret = id;
	return 0;
}

static int ensure_mapping(struct builder_ctx *c, uint32_t map_id, uint32_t pid, uint64_t *ret)
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
	if (m->kind == MAPPING_ANON && !m->dso)
		return ensure_anon_mapping(c, map_id, pid, m, ret);
	mapping_of(m, &pm);
	if (m->dso) {
		struct sym_binary bin;
		struct sym_binary_info info;

		dso_binary(m->dso, &bin);
		r = sym_cache_binary_info(c->cache, &bin, &info);
		if (r < 0)
			return r;
		if (info.error == 0) {
			pm.has_functions = info.has_symbols;
			pm.has_filenames = pm.has_line_numbers = info.has_lines;
			pm.has_inline_frames = pm.has_line_numbers && c->o->inlines;
		}
	}
	r = pprof_add_mapping(c->b, &pm, &c->map_ids[map_id]);
	if (r < 0)
		return r;
	*ret = c->map_ids[map_id];
	return 0;
}

/*
 * Symbolize one frame into pprof lines (leaf first). Never fails for lack of a name.
 * *ret_transient: the names point into the sym_cache (valid until its next call).
 */
static size_t symbolize_frame(struct builder_ctx *c, const struct agg_frame *f, uint32_t pid,
			      struct sym_result *res, struct pprof_line *lines, bool *ret_transient)
{
	uint64_t look = agg_frame_lookup_addr(f);
	const struct agg_mapping *m;
	const char *name = NULL;

	*ret_transient = false;
	res->n_frames = 0;
	if (f->map_id == AGG_MAP_KERNEL) {
		if (c->o->kallsyms && kallsyms_lookup(c->o->kallsyms, look, &name, NULL) == 0) {
			lines[0] = (struct pprof_line){ .function_name = name };
			return 1;
		}
		name = fmt_str(c, "[kernel] 0x%" PRIx64, f->addr);
	} else if ((m = aggregate_mapping(c->a, f->map_id))) {
		uint64_t off = look - m->start + m->pgoff;
		struct sym_binary bin;

		if (m->dso) {
			dso_binary(m->dso, &bin);
			if (sym_cache_lookup(c->cache, &bin, off, c->o->inlines, res) == 0 &&
			    res->n_frames > 0) {
				size_t n = MIN(res->n_frames, (size_t)SYM_MAX_INLINE);

				for (size_t i = 0; i < n; i++)
					lines[i] = (struct pprof_line){
						.function_name = res->frames[i].name,
						.system_name = res->frames[i].system_name,
						.filename = res->frames[i].file,
						.start_line = res->frames[i].decl_line,
						.line = res->frames[i].line,
					};
				*ret_transient = true;
				return n;
			}
		}
		if (m->kind == MAPPING_ANON) {
			const struct perfmap *pm = perfmap_for_pid(c, pid);

			if (pm && perfmap_lookup(pm, look, &name, NULL) == 0) {
				lines[0] = (struct pprof_line){ .function_name = name };
				return 1;
			}
			name = fmt_str(c, "[anon] 0x%" PRIx64, f->addr);
		} else {
			name = fmt_str(c, "%s+0x%" PRIx64, base_name(m->name),
				       f->addr - m->start + m->pgoff);
		}
	} else {
		name = fmt_str(c, "[unknown] 0x%" PRIx64, f->addr);
	}
	lines[0] = (struct pprof_line){ .function_name = name ? name : "[unknown]" };
	return 1;
}

/*
 * A Python frame (AGG_FRAME_PYTHON): a Location per (code object, line) in the
 * interpreter's mapping, one Line in a Function named by the code's qualified name. Its
 * address is synthetic: bit 63 set (no code lives there) plus a count, unique in the profile.
 */
static int python_location(struct builder_ctx *c, const struct agg_frame *f, uint64_t *ret_id,
			   const char **ret_leaf)
{
	const struct py_code *code = f->code;
	uint32_t line = f->line;
	/* The pid slot of the key holds the line, marked so it never meets a native frame's. */
	struct loc_key key = { .addr = (uint64_t)(uintptr_t)f->code, .map_id = f->map_id,
			       .pid = 0x80000000u | line };
	struct hash_slot *slot;
	uint64_t h;
	struct loc_entry *e = loc_find(c, &key, &slot, &h);
	/* the aggregate holds the code until the build ends */
	struct loc_entry n = { .key = key, .leaf = code->qualname };
	struct pprof_line l = {
		.function_name = code->qualname,
		.system_name = code->qualname,
		.filename = code->filename,
		.start_line = code->firstlineno,
		.line = line,
	};
	uint64_t pm;
	int r;

	if (e) {
		*ret_id = e->loc_id;
		*ret_leaf = e->leaf;
		return 0;
	}
	if (!slot)
		return -ENOMEM;
	r = ensure_mapping(c, f->map_id, 0, &pm);
	if (r < 0)
		return r;
	r = pprof_add_location(c->b, pm, (1ull << 63) | ++c->py_locs, &l, 1, &n.loc_id);
	if (r < 0)
		return r;
	loc_add(c, slot, h, &n);
	*ret_id = n.loc_id;
	*ret_leaf = n.leaf;
	return 0;
}

static int native_location(struct builder_ctx *c, const struct agg_frame *f, uint32_t pid,
			   uint64_t *ret_id, const char **ret_leaf)
{
	const struct agg_mapping *m = aggregate_mapping(c->a, f->map_id);
	uint32_t kpid = m && m->kind == MAPPING_ANON && !m->dso ? pid : 0;
	struct loc_key key = { .addr = f->addr, .map_id = f->map_id, .pid = kpid };
	struct hash_slot *slot;
	uint64_t h;
	struct loc_entry *e = loc_find(c, &key, &slot, &h), n = { .key = key };
	struct pprof_line lines[SYM_MAX_INLINE];
	struct sym_result res;
	bool transient;
	uint64_t pm;
	size_t n_lines;
	int r;

	if (e) {
		*ret_id = e->loc_id;
		*ret_leaf = e->leaf;
		return 0;
	}
	if (!slot)
		return -ENOMEM;
	r = ensure_mapping(c, f->map_id, kpid, &pm);
	if (r < 0)
		return r;
	n_lines = symbolize_frame(c, f, kpid, &res, lines, &transient);
	r = pprof_add_location(c->b, pm, f->addr, lines, n_lines, &n.loc_id);
	if (r < 0)
		return r;
	n.leaf = lines[0].function_name;
	/* The builder copied the lines; the leaf name is kept for the summary. */
	if (transient) {
		n.leaf = keep_str(c, strdup(n.leaf));
		if (!n.leaf)
			n.leaf = "[unknown]";
	}
	loc_add(c, slot, h, &n);
	*ret_id = n.loc_id;
	*ret_leaf = n.leaf;
	return 0;
}

static int frame_location(struct builder_ctx *c, const struct agg_frame *f, uint32_t pid,
			  uint64_t *ret_id, const char **ret_leaf)
{
	if (f->kind == AGG_FRAME_PYTHON)
		return python_location(c, f, ret_id, ret_leaf);
	return native_location(c, f, pid, ret_id, ret_leaf);
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
	if (GROW_ARRAY(c->names, c->names_cap, c->names_n + 1, GROW_NO_LIMIT) < 0)
		return; /* the summary is best effort */
	c->names[c->names_n++] = (struct name_count){ .name = name, .count = n };
}

/* Keep the PROFILE_TOP_WAITS longest waits, longest first (same stack text: added up). */
static void add_wait(struct profile_summary *sum, const char *stack, uint8_t state, uint64_t ns)
{
	size_t i;

	for (i = 0; i < sum->n_waits; i++)
		if (sum->waits[i].state == state && !strcmp(sum->waits[i].stack, stack)) {
			ns += sum->waits[i].ns;
			memmove(&sum->waits[i], &sum->waits[i + 1],
				(sum->n_waits - i - 1) * sizeof(sum->waits[0]));
			sum->n_waits--;
			break;
		}
	for (i = 0; i < sum->n_waits && sum->waits[i].ns >= ns; i++)
		;
	if (i >= PROFILE_TOP_WAITS)
		return;
	if (sum->n_waits == PROFILE_TOP_WAITS)
		sum->n_waits--;
	memmove(&sum->waits[i + 1], &sum->waits[i], (sum->n_waits - i) * sizeof(sum->waits[0]));
	snprintf(sum->waits[i].stack, sizeof(sum->waits[i].stack), "%s", stack);
	sum->waits[i].state = state;
	sum->waits[i].ns = ns;
	sum->n_waits++;
}

static int cmp_count_desc(const void *x, const void *y)
{
	const struct name_count *a = x, *b = y;

	return a->count < b->count ? 1 : a->count > b->count ? -1 : strcmp(a->name, b->name);
}

/*
 * One stack of the aggregate as a pprof sample: its labels, a location per frame (leaf first),
 * a synthetic location for where an incomplete walk stopped, its values; counted in the
 * summary. ids: room for AGG_MAX_FRAMES + 1 location ids.
 */
static int add_stack(struct builder_ctx *c, const struct pprof_config *cfg,
		     const struct agg_stack *s, uint64_t *ids, struct profile_summary *sum)
{
	const struct profile_options *o = c->o;
	const char *container = aggregate_container(c->a, s->container);
	struct pprof_label labels[7] = {
		{ .key = "pid", .num = s->pid },
		{ .key = "tid", .num = s->tid },
		{ .key = "comm", .str = s->comm },
		{ .key = "process", .str = s->pcomm[0] ? s->pcomm : s->comm },
	};
	size_t n_labels = 4;
	int64_t values[3] = { (int64_t)s->count, (int64_t)(s->count * o->period_ns),
			      (int64_t)s->off_cpu_ns };
	char wait[sizeof(sum->waits[0].stack)] = "";
	size_t n = 0, n_user = 0;
	int r;

	if (container)
		labels[n_labels++] = (struct pprof_label){ .key = "container_id", .str = container };
	if (s->state)
		labels[n_labels++] = (struct pprof_label){ .key = "state",
							   .str = output_offcpu_state_name(s->state) };
	for (size_t f = 0; f < s->n_frames && n < AGG_MAX_FRAMES; f++) {
		const char *leaf;

		r = frame_location(c, &s->frames[f], s->pid, &ids[n], &leaf);
		if (r < 0)
			return r;
		if (n == 0 && s->count)
			count_name(c, leaf, s->count);
		/* A wait is told by its innermost user frames: the kernel ones all sleep. */
		if (s->state && s->frames[f].map_id != AGG_MAP_KERNEL && n_user < 4) {
			size_t len = strlen(wait);

			snprintf(wait + len, sizeof(wait) - len, "%s%s", n_user ? " < " : "", leaf);
			n_user++;
		}
		n++;
	}
	if (!s->complete) {
		r = stop_location(c, s->stop, &ids[n]);
		if (r < 0)
			return r;
		if (n == 0 && s->count)
			count_name(c, "[truncated]", s->count);
		n++;
	}
	if (n == 0)
		return 0;
	if (s->state) {
		sum->off_cpu_ns += s->off_cpu_ns;
		add_wait(sum, wait[0] ? wait : "[kernel]", s->state, s->off_cpu_ns);
	}
	r = pprof_add_sample(c->b, ids, n, values, cfg->n_sample_types, labels, n_labels);
	if (r < 0)
		return r;
	sum->samples += s->count;
	if (s->stop != UNWIND_STOP_KERNEL_THREAD) {
		sum->user_stacks += s->count;
		if (s->complete)
			sum->complete += s->count;
	}
	if (s->stop < ARRAY_SIZE(sum->stops))
		sum->stops[s->stop] += s->count;
	return 0;
}

int profile_build(const struct aggregate *a, const struct profile_options *o,
		  struct pprof_builder **ret, struct profile_summary *sum)
{
	struct pprof_config cfg = {
		.n_sample_types = o->off_cpu ? 3 : 2,
		.sample_types = { { "samples", "count" }, { "cpu", "nanoseconds" },
				  { "off_cpu", "nanoseconds" } },
		.default_sample_type = 2, /* cpu */
		.period_type = { "cpu", "nanoseconds" },
		.period = (int64_t)o->period_ns,
		.time_nanos = o->time_nanos,
		.duration_nanos = o->duration_nanos,
	};
	struct builder_ctx c = { .a = a, .o = o, .cache = o->sym_cache };
	struct sym_cache *own_cache = NULL;
	uint64_t *ids = NULL;
	int r;

	memset(sum, 0, sizeof(*sum));
	hash_seed_init(&c.loc_seed);
	u64_map_init(&c.anon_maps);
	u64_map_init(&c.perfmaps);
	if (!c.cache) {
		r = sym_cache_new(NULL, &own_cache);
		if (r < 0)
			return r;
		c.cache = own_cache;
	}
	sym_cache_next_generation(c.cache);
	r = pprof_builder_new(&cfg, &c.b);
	if (r < 0)
		goto out;
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
			r = ensure_mapping(&c, AGG_MAP_FIRST + i, 0, &id);
			if (r < 0)
				goto out;
		}
	}

	for (size_t i = 0; i < aggregate_n_stacks(a); i++) {
		r = add_stack(&c, &cfg, aggregate_stack(a, i), ids, sum);
		if (r < 0)
			goto out;
	}

	if (c.names_n > 0)
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
	hash_index_free(&c.loc_index);
	free(c.names);
	/* The builder copied every string it interned; fallback names can go now. */
	for (size_t i = 0; i < c.strs_n; i++)
		free(c.strs[i]);
	free(c.strs);
	free(ids);
	for (size_t i = 0; i < c.perfmaps.n; i++)
		perfmap_free((struct perfmap *)(uintptr_t)c.perfmaps.v[i].val);
	u64_map_free(&c.perfmaps);
	u64_map_free(&c.anon_maps);
	sym_cache_free(own_cache);
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * struct sym_cache: one sym_elf per file opened (its fstat identity and build-id, never the
 * build-id alone: see symbolize.h), bounded by an LRU of open ELFs, and results per (binary,
 * file offset, inlines) that outlive both the sym_elf and the profile (see symbolize.h for the
 * contract and the limits).
 *
 * Three intrusive LRU lists, most recent first: all binaries (for the binary cap and idle
 * generations), binaries with an open ELF (for max_elfs), and all results (for the result
 * caps). Each binary also lists its own results, so dropping a binary drops them in O(its
 * results).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

/* Results bigger than this fraction of the byte budget are returned but not kept. */
#define MAX_ENTRY_FRACTION 64
#define NO_STR UINT32_MAX

struct list_node {
	struct list_node *prev, *next;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static void list_init(struct list_node *h)
{
	h->prev = h->next = h;
}

static bool list_empty(const struct list_node *h)
{
	return h->next == h;
}

static void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

static void list_add_head(struct list_node *h, struct list_node *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}

static void list_move_head(struct list_node *h, struct list_node *n)
{
	if (h->next == n)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_add_head(h, n);
}

enum key_kind {
	KEY_BUILD_ID = 1, /* the file's identity, then its build-id */
	KEY_FILE = 2,     /* the file's identity: no build-id */
};

struct bin_key {
	uint8_t kind, len;
	uint8_t bytes[sizeof(struct sym_file_id) + 64];
};

struct sym_bin {
	struct bin_key key;
	uint64_t hash;
	struct sym_bin *hash_next;
	struct list_node lru;     /* c->bins */
	struct list_node elf_lru; /* c->open_elfs while elf != NULL */
	struct list_node results; /* struct centry.bin_link */
	struct sym_elf *elf;
	int err;            /* last open error, 0 if none */
	bool err_permanent; /* the file itself is unusable: do not try again */
	bool have_info, has_symbols, has_lines;
	bool preparing; /* a sym_warmer thread is opening it (sym_cache_prepare_shared) */
	uint64_t last_gen;
};

struct cframe {
	uint32_t name, system_name, file; /* offsets into the entry's strings, NO_STR: NULL */
	uint32_t line, column, decl_line;
	uint64_t sym_start;
};

struct centry {
	struct centry *hash_next;
	struct list_node lru;      /* c->results */
	struct list_node bin_link; /* bin->results */
	struct sym_bin *bin;
	uint64_t offset, hash;
	size_t bytes; /* counted against max_result_bytes */
	uint8_t source, n_frames;
	bool inlines;
	struct cframe frames[]; /* followed by the strings */
};

struct sym_cache {
	size_t max_elfs, max_results, max_result_bytes;
	unsigned max_idle;
	char **debug_dirs; /* NULL-terminated copy */
	struct sym_elf_options elf_opts;
	/* Debug-file search time left this generation, shared by every binary it opens
	 * (atomically: open_elf() runs in a warmer's thread too). */
	int64_t search_budget_ns;

	struct sym_bin **bin_buckets;
	size_t n_bin_buckets, n_bins;
	struct list_node bins, open_elfs;
	size_t n_open;

	struct centry **buckets;
	size_t n_buckets, n_results, result_bytes;
	struct list_node results;

	uint64_t gen;
	struct sym_cache_stats st;
	struct sym_result scratch;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t key_hash(const struct bin_key *k)
{
	uint64_t h = 0xcbf29ce484222325ull ^ k->kind;

	for (size_t i = 0; i < k->len; i++) {
		h ^= k->bytes[i];
		h *= 0x100000001b3ull;
	}
	return mix64(h);
}

static bool key_eq(const struct bin_key *a, const struct bin_key *b)
{
	return a->kind == b->kind && a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int sym_file_id_from_fd(int fd, struct sym_file_id *ret)
{
	struct stat st;

	if (!ret)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	*ret = (struct sym_file_id){
		.dev = st.st_dev,
		.ino = st.st_ino,
		.size = (uint64_t)st.st_size,
		.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec,
	};
	return 0;
}

/*
 * The key of the file that was opened, never of a build-id alone: a build-id is what the file
 * says about itself, and another file (another user's) may say the same. The caller holds the
 * fd, so the inode cannot be reused while it does; size and mtime catch a file rewritten in
 * place.
 */
static int make_key(const struct sym_binary *bin, struct bin_key *ret)
{
	struct sym_file_id id;
	int r;

	*ret = (struct bin_key){};
	if (bin->build_id_len > 0 && (!bin->build_id || bin->build_id_len > 64))
		return -EINVAL;
	if (bin->file_id)
		id = *bin->file_id;
	else if (bin->fd < 0)
		return -EBADF;
	else if ((r = sym_file_id_from_fd(bin->fd, &id)) < 0)
		return r;
	ret->kind = bin->build_id_len > 0 ? KEY_BUILD_ID : KEY_FILE;
	memcpy(ret->bytes, &id, sizeof(id));
	if (bin->build_id_len > 0)
		memcpy(ret->bytes + sizeof(id), bin->build_id, bin->build_id_len);
	ret->len = (uint8_t)(sizeof(id) + bin->build_id_len);
	return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

static uint64_t entry_hash(const struct sym_bin *b, uint64_t offset, bool inlines)
{
	return mix64((uint64_t)(uintptr_t)b * 0x9e3779b97f4a7c15ull ^ offset ^
		     ((uint64_t)inlines << 63));
}

static struct centry **entry_slot(struct sym_cache *c, const struct centry *e)
{
	struct centry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hash_next;
	return pp;
}

static void entry_free(struct sym_cache *c, struct centry *e)
{
	struct centry **pp = entry_slot(c, e);

	if (*pp)
		*pp = e->hash_next;
	list_del(&e->lru);
	list_del(&e->bin_link);
	c->n_results--;
	c->result_bytes -= e->bytes;
	free(e);
}

static struct centry *entry_find(struct sym_cache *c, const struct sym_bin *b, uint64_t offset,
				 bool inlines)
{
	if (!c->n_buckets)
		return NULL;
	uint64_t h = entry_hash(b, offset, inlines);
	for (struct centry *e = c->buckets[h & (c->n_buckets - 1)]; e; e = e->hash_next)
		if (e->hash == h && e->bin == b && e->offset == offset && e->inlines == inlines)
			return e;
	return NULL;
}

static int buckets_grow(struct sym_cache *c)
{
	size_t n = c->n_buckets ? c->n_buckets * 2 : 1024;
	struct centry **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_buckets; i++)
		while (c->buckets[i]) {
			struct centry *e = c->buckets[i];
			c->buckets[i] = e->hash_next;
			e->hash_next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	free(c->buckets);
	c->buckets = nb;
	c->n_buckets = n;
	return 0;
}

/* Strings of a result, each stored once per entry (inline chains repeat file names). */
struct str_list {
	const char *s[3 * SYM_MAX_INLINE];
	uint32_t off[3 * SYM_MAX_INLINE];
	size_t n, bytes;
};

static uint32_t str_list_add(struct str_list *l, const char *s)
{
	if (!s)
		return NO_STR;
	for (size_t i = 0; i < l->n; i++)
		if (l->s[i] == s || strcmp(l->s[i], s) == 0)
			return l->off[i];
	l->s[l->n] = s;
	l->off[l->n] = (uint32_t)l->bytes;
	l->bytes += strlen(s) + 1;
	return l->off[l->n++];
}

/* A new entry holding a copy of `res`, or NULL (too big to keep, or out of memory). */
static struct centry *entry_make(struct sym_cache *c, struct sym_bin *b, uint64_t offset,
				 bool inlines, const struct sym_result *res)
{
	struct str_list sl = { .n = 0 };
	struct cframe frames[SYM_MAX_INLINE];
	size_t n = MIN(res->n_frames, (size_t)SYM_MAX_INLINE);
	size_t limit = c->max_result_bytes / MAX_ENTRY_FRACTION;

	for (size_t i = 0; i < n; i++) {
		const struct sym_frame *f = &res->frames[i];
		frames[i] = (struct cframe){
			.name = str_list_add(&sl, f->name),
			.system_name = str_list_add(&sl, f->system_name),
			.file = str_list_add(&sl, f->file),
			.line = f->line,
			.column = f->column,
			.decl_line = f->decl_line,
			.sym_start = f->sym_start,
		};
		/* Stop adding up early: names can be 64 KiB each. */
		if (sl.bytes > limit)
			return NULL;
	}
	size_t bytes = sizeof(struct centry) + n * sizeof(struct cframe) + sl.bytes;
	if (bytes > limit)
		return NULL;
	struct centry *e = malloc(bytes);
	if (!e)
		return NULL;
	*e = (struct centry){
		.bin = b,
		.offset = offset,
		.hash = entry_hash(b, offset, inlines),
		.bytes = bytes,
		.source = (uint8_t)res->source,
		.n_frames = (uint8_t)n,
		.inlines = inlines,
	};
	memcpy(e->frames, frames, n * sizeof(*frames));
	char *strs = (char *)&e->frames[n];
	for (size_t i = 0; i < sl.n; i++)
		memcpy(strs + sl.off[i], sl.s[i], strlen(sl.s[i]) + 1);
	return e;
}

static void entry_fill(const struct centry *e, struct sym_result *ret)
{
	const char *strs = (const char *)&e->frames[e->n_frames];

	ret->source = (enum sym_source)e->source;
	ret->n_frames = e->n_frames;
	for (size_t i = 0; i < e->n_frames; i++) {
		const struct cframe *f = &e->frames[i];
		ret->frames[i] = (struct sym_frame){
			.name = f->name == NO_STR ? NULL : strs + f->name,
			.system_name = f->system_name == NO_STR ? NULL : strs + f->system_name,
			.file = f->file == NO_STR ? NULL : strs + f->file,
			.line = f->line,
			.column = f->column,
			.decl_line = f->decl_line,
			.sym_start = f->sym_start,
		};
	}
}

static void entry_insert(struct sym_cache *c, struct centry *e)
{
	/* Make room first: the entry being added is never the one evicted. */
	while (c->n_results > 0 && (c->n_results + 1 > c->max_results ||
				    c->result_bytes + e->bytes > c->max_result_bytes)) {
		entry_free(c, container_of(c->results.prev, struct centry, lru));
		c->st.result_evictions++;
	}
	struct centry **bucket = &c->buckets[e->hash & (c->n_buckets - 1)];
	e->hash_next = *bucket;
	*bucket = e;
	list_add_head(&c->results, &e->lru);
	list_add_head(&e->bin->results, &e->bin_link);
	c->n_results++;
	c->result_bytes += e->bytes;
}

/* ---- binaries ----------------------------------------------------------------------------- */

static void bin_close_elf(struct sym_cache *c, struct sym_bin *b)
{
	if (!b->elf)
		return;
	sym_elf_free(b->elf);
	b->elf = NULL;
	list_del(&b->elf_lru);
	c->n_open--;
	c->st.elf_closes++;
}

static void bin_drop(struct sym_cache *c, struct sym_bin *b)
{
	while (!list_empty(&b->results))
		entry_free(c, container_of(b->results.next, struct centry, bin_link));
	bin_close_elf(c, b);

	struct sym_bin **pp = &c->bin_buckets[b->hash & (c->n_bin_buckets - 1)];
	while (*pp && *pp != b)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = b->hash_next;
	list_del(&b->lru);
	c->n_bins--;
	c->st.binaries_dropped++;
	free(b);
}

static int bin_buckets_grow(struct sym_cache *c)
{
	size_t n = c->n_bin_buckets ? c->n_bin_buckets * 2 : 256;
	struct sym_bin **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_bin_buckets; i++)
		while (c->bin_buckets[i]) {
			struct sym_bin *b = c->bin_buckets[i];
			c->bin_buckets[i] = b->hash_next;
			b->hash_next = nb[b->hash & (n - 1)];
			nb[b->hash & (n - 1)] = b;
		}
	free(c->bin_buckets);
	c->bin_buckets = nb;
	c->n_bin_buckets = n;
	return 0;
}

/* Find or add the binary for `k`, marked as used now. */
static int bin_get(struct sym_cache *c, const struct bin_key *k, struct sym_bin **ret)
{
	uint64_t h = key_hash(k);
	struct sym_bin *b;

	for (b = c->bin_buckets[h & (c->n_bin_buckets - 1)]; b; b = b->hash_next)
		if (b->hash == h && key_eq(&b->key, k))
			goto found;

	if (c->n_bins >= SYM_CACHE_MAX_BINARIES)
		bin_drop(c, container_of(c->bins.prev, struct sym_bin, lru));
	if (c->n_bins + 1 > c->n_bin_buckets && bin_buckets_grow(c) < 0)
		return -ENOMEM;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->key = *k;
	b->hash = h;
	list_init(&b->elf_lru);
	list_init(&b->results);
	list_add_head(&c->bins, &b->lru);
	b->hash_next = c->bin_buckets[h & (c->n_bin_buckets - 1)];
	c->bin_buckets[h & (c->n_bin_buckets - 1)] = b;
	c->n_bins++;
found:
	list_move_head(&c->bins, &b->lru);
	b->last_gen = c->gen;
	*ret = b;
	return 0;
}

static bool transient_error(int r)
{
	/* Worth another try later, possibly with another process's fd on the same file. */
	return r == -ENOMEM || r == -EMFILE || r == -ENFILE || r == -EBADF || r == -EINTR ||
	       r == -EAGAIN;
}

/* Record the outcome of opening b's ELF: elf on success (r == 0), else the error r. */
static void bin_set_elf(struct sym_cache *c, struct sym_bin *b, const struct sym_binary *bin,
			struct sym_elf *elf, int r)
{
	if (r < 0) {
		log_debug("symbolize: cannot open %s: %s", bin->path ? bin->path : "?",
			  strerror(-r));
		b->err = r;
		b->err_permanent = !transient_error(r);
		return;
	}
	b->elf = elf;
	b->err = 0;
	c->st.elf_opens++;
	list_add_head(&c->open_elfs, &b->elf_lru);
	c->n_open++;
	while (c->n_open > c->max_elfs) {
		/* b is at the head and max_elfs >= 1: the tail is another binary. */
		struct sym_bin *old = container_of(c->open_elfs.prev, struct sym_bin, elf_lru);
		bin_close_elf(c, old);
	}
}

/* The cache's options with the binary's own root (read-only on c: called unlocked too). */
static int open_elf(const struct sym_cache *c, const struct sym_binary *bin, struct sym_elf **ret)
{
	struct sym_elf_options o = c->elf_opts;

	o.root = bin->root;
	/* Only ever changed atomically, by the searches themselves and each new generation. */
	o.search_budget_ns = (int64_t *)&c->search_budget_ns;
	return sym_elf_open_with(bin->fd, bin->path, &o, ret);
}

/* The binary's open sym_elf (opened now if needed), or NULL with b->err set. */
static struct sym_elf *bin_elf(struct sym_cache *c, struct sym_bin *b, const struct sym_binary *bin)
{
	struct sym_elf *elf = NULL;

	if (b->elf) {
		list_move_head(&c->open_elfs, &b->elf_lru);
		return b->elf;
	}
	if (b->err_permanent)
		return NULL;
	if (bin->fd < 0) {
		b->err = -EBADF;
		return NULL;
	}
	bin_set_elf(c, b, bin, elf, open_elf(c, bin, &elf));
	return b->elf;
}

/* ---- public ------------------------------------------------------------------------------- */

void sym_cache_free(struct sym_cache *c)
{
	if (!c)
		return;
	while (!list_empty(&c->bins))
		bin_drop(c, container_of(c->bins.next, struct sym_bin, lru));
	free(c->buckets);
	free(c->bin_buckets);
	if (c->debug_dirs)
		for (char **d = c->debug_dirs; *d; d++)
			free(*d);
	free(c->debug_dirs);
	free(c);
}
DEFINE_FREEP(struct sym_cache, sym_cache_free)

int sym_cache_new(const struct sym_cache_config *cfg, struct sym_cache **ret)
{
	static const struct sym_cache_config defaults = {};

	if (!ret)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;

	_cleanup_(sym_cache_freep) struct sym_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	list_init(&c->bins);
	list_init(&c->open_elfs);
	list_init(&c->results);
	c->max_elfs = cfg->max_elfs ? cfg->max_elfs : SYM_CACHE_DEFAULT_MAX_ELFS;
	c->max_results = cfg->max_results ? cfg->max_results : SYM_CACHE_DEFAULT_MAX_RESULTS;
	c->max_result_bytes =
		cfg->max_result_bytes ? cfg->max_result_bytes : SYM_CACHE_DEFAULT_MAX_RESULT_BYTES;
	c->max_idle = cfg->max_idle_generations ? cfg->max_idle_generations
						: SYM_CACHE_DEFAULT_MAX_IDLE_GENERATIONS;

	if (cfg->debug_dirs) {
		size_t n = 0;
		while (cfg->debug_dirs[n] && n < SYM_MAX_DEBUG_DIRS)
			n++;
		c->debug_dirs = calloc(n + 1, sizeof(*c->debug_dirs));
		if (!c->debug_dirs)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			if (cfg->debug_dirs[i][0] != '/')
				return -EINVAL;
			c->debug_dirs[i] = strdup(cfg->debug_dirs[i]);
			if (!c->debug_dirs[i])
				return -ENOMEM;
		}
	}
	c->elf_opts = (struct sym_elf_options){
		.debug_dirs = (const char *const *)c->debug_dirs,
		.debuginfod = cfg->debuginfod,
		.demangle = cfg->demangle,
	};
	c->search_budget_ns = SYM_DEBUG_SEARCH_PROFILE_NS;
	if (bin_buckets_grow(c) < 0 || buckets_grow(c) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(c);
	return 0;
}

int sym_cache_lookup(struct sym_cache *c, const struct sym_binary *bin, uint64_t file_offset,
		     bool inlines, struct sym_result *ret)
{
	struct bin_key k;
	struct sym_bin *b;
	int r;

	if (!c || !bin || !ret)
		return -EINVAL;
	ret->source = SYM_SOURCE_NONE;
	ret->n_frames = 0;
	r = make_key(bin, &k);
	if (r == -EINVAL)
		return r;
	if (r < 0)
		return 0; /* nothing to key it by: no name, as when the file cannot be opened */
	r = bin_get(c, &k, &b);
	if (r < 0)
		return r;

	struct centry *e = entry_find(c, b, file_offset, inlines);
	if (e) {
		c->st.hits++;
		list_move_head(&c->results, &e->lru);
		entry_fill(e, ret);
		return 0;
	}
	c->st.misses++;

	struct sym_elf *elf = bin_elf(c, b, bin);
	if (!elf)
		return 0; /* not cached: a later call may have a usable fd */

	struct sym_result *res = &c->scratch;
	uint64_t vaddr;
	res->source = SYM_SOURCE_NONE;
	res->n_frames = 0;
	if (sym_elf_vaddr_from_offset(elf, file_offset, &vaddr) == 0) {
		r = sym_elf_lookup(elf, vaddr, inlines, res);
		if (r < 0)
			return r;
	}

	if (c->n_results + 1 > c->n_buckets && c->n_buckets < c->max_results)
		(void)buckets_grow(c); /* longer chains if it fails, nothing worse */
	e = entry_make(c, b, file_offset, inlines, res);
	if (!e) {
		/* Too big to keep (or no memory): hand out the sym_elf's own strings, which live
		 * until that ELF is closed, at the earliest by a later call. */
		*ret = *res;
		return 0;
	}
	entry_insert(c, e);
	entry_fill(e, ret);
	return 0;
}

int sym_cache_binary_info(struct sym_cache *c, const struct sym_binary *bin,
			  struct sym_binary_info *ret)
{
	struct bin_key k;
	struct sym_bin *b;
	int r;

	if (!c || !bin || !ret)
		return -EINVAL;
	*ret = (struct sym_binary_info){};
	r = make_key(bin, &k);
	if (r == -EINVAL)
		return r;
	if (r < 0) {
		ret->error = r;
		return 0;
	}
	r = bin_get(c, &k, &b);
	if (r < 0)
		return r;
	if (!b->have_info) {
		struct sym_elf *elf = bin_elf(c, b, bin);
		if (!elf) {
			ret->error = b->err;
			return 0;
		}
		b->has_symbols = sym_elf_has_symbols(elf);
		b->has_lines = sym_elf_has_lines(elf);
		b->have_info = true;
	}
	ret->has_symbols = b->has_symbols;
	ret->has_lines = b->has_lines;
	return 0;
}

int sym_cache_prepare_shared(struct sym_cache *c, const struct sym_binary *bin,
			     pthread_mutex_t *lock)
{
	struct sym_elf *elf = NULL;
	struct bin_key k;
	struct sym_bin *b;
	bool has_symbols = false, has_lines = false;
	int r;

	if (!c || !bin || !lock)
		return -EINVAL;
	r = make_key(bin, &k);
	if (r < 0)
		return r;
	pthread_mutex_lock(lock);
	r = bin_get(c, &k, &b);
	if (r == 0 && (b->elf || b->err_permanent || b->preparing))
		r = 1; /* nothing to do, or another thread is on it */
	else if (r == 0)
		b->preparing = true;
	pthread_mutex_unlock(lock);
	if (r != 0)
		return r < 0 ? r : 0;

	/* The slow part, unlocked: it touches nothing of the cache but its read-only options. */
	r = bin->fd < 0 ? -EBADF : open_elf(c, bin, &elf);
	if (r == 0) {
		sym_elf_prepare(elf);
		has_symbols = sym_elf_has_symbols(elf);
		has_lines = sym_elf_has_lines(elf);
	}

	pthread_mutex_lock(lock);
	/* Found again by key: the pointer from before may have been evicted meanwhile. */
	if (bin_get(c, &k, &b) < 0) {
		pthread_mutex_unlock(lock);
		sym_elf_free(elf);
		return -ENOMEM;
	}
	b->preparing = false;
	if (b->elf) {
		sym_elf_free(elf);
	} else {
		bin_set_elf(c, b, bin, elf, r);
		if (r == 0 && !b->have_info) {
			b->has_symbols = has_symbols;
			b->has_lines = has_lines;
			b->have_info = true;
		}
	}
	pthread_mutex_unlock(lock);
	return r;
}

void sym_cache_next_generation(struct sym_cache *c)
{
	if (!c)
		return;
	c->gen++;
	__atomic_store_n(&c->search_budget_ns, (int64_t)SYM_DEBUG_SEARCH_PROFILE_NS,
			 __ATOMIC_RELAXED);
	/* The binary list is in last-use order, so the idle ones are at its tail. */
	while (!list_empty(&c->bins)) {
		struct sym_bin *b = container_of(c->bins.prev, struct sym_bin, lru);
		if (c->gen - b->last_gen <= c->max_idle)
			break;
		bin_drop(c, b);
	}
}

void sym_cache_get_stats(const struct sym_cache *c, struct sym_cache_stats *ret)
{
	if (!ret)
		return;
	*ret = (struct sym_cache_stats){};
	if (!c)
		return;
	*ret = c->st;
	ret->n_binaries = c->n_bins;
	ret->n_open_elfs = c->n_open;
	ret->n_results = c->n_results;
	ret->result_bytes = c->result_bytes;
}

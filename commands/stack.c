// SPDX-License-Identifier: MIT
/*
 * `profd stack --core FILE`: unwind and symbolize every thread of a core dump, gdb style.
 *
 * It feeds the unwinder exactly what a live sample gives it: a thread's registers, a copy of
 * its stack from sp upwards, and an address → binary lookup (here from the core's NT_FILE
 * note, a --maps listing, or --exe placed by the auxiliary vector plus the dynamic linker's
 * library list read from the core's memory; the vdso from its dumped pages). So a backtrace
 * printed here is the backtrace a profile would contain, which is what the gdb comparison
 * tests (tests/e2e/test-stack.c) rely on.
 *
 * Binaries are opened as --exe (the main executable), SYSROOT/PATH, or PATH, skipping any
 * whose e_machine is not the core's. Everything read from the core is untrusted: the core
 * reader bounds it, and the library-list walk here is bounded and reads through core_read().
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/macro.h"
#include "commands/cli.h"
#include "sources/binaries.h"
#include "sources/core.h"
#include "pipeline/unwind/unwind-cache.h"
#include "pipeline/unwind/unwind.h"
#include "symbolize/symbolize.h"

/* Stack bytes copied per thread, from sp up: what a sample's copy would be at most. */
#define STACK_COPY_MAX (512u << 10)
#define STACK_MAX_FRAMES UNWIND_MAX_DEPTH_DEFAULT

/* One binary, shared by all the mappings of the same name. */
struct stack_binary {
	char *name; /* as the target saw it */
	char *path; /* what we opened, NULL when nothing usable was found */
	int fd;	    /* -1 when none */
	struct unwind_key key;
	struct sym_elf *sym;
	int sym_err;
	bool user_named; /* found where the user pointed (--exe, --sysroot): debug files next to it */
	bool has_code; /* some mapping of it is executable */
};

struct stack_map {
	uint64_t start, end, pgoff;
	bool exec;
	struct stack_binary *bin; /* never NULL */
};

struct stack_ctx {
	struct core *core;
	const char *exe;
	const char *sysroot;
	bool inlines;
	bool verbose;		/* also print each function's start address */
	enum sym_demangle_mode demangle;
	struct stack_map *maps; /* sorted by start */
	size_t n_maps;
	size_t cap_maps;
	struct stack_binary **bins;
	size_t n_bins, cap_bins;
	/* bins by name (id: index + 1); seeded: the names come from the core file */
	struct hash_index bin_index;
	struct hash_seed bin_seed;
	struct unwind_cache *cache;
	struct sym_root *host_root; /* "/", for binaries the user named; NULL if it cannot open */
};

static void binary_free(struct stack_binary *b)
{
	if (!b)
		return;
	sym_elf_free(b->sym);
	if (b->fd >= 0)
		close(b->fd);
	free(b->name);
	free(b->path);
	free(b);
}

DEFINE_FREEP(struct stack_binary, binary_free);

static void stack_ctx_done(struct stack_ctx *x)
{
	for (size_t i = 0; i < x->n_bins; i++)
		binary_free(x->bins[i]);
	free(x->bins);
	hash_index_free(&x->bin_index);
	free(x->maps);
	sym_root_unref(x->host_root);
	unwind_cache_free(x->cache);
	core_free(x->core);
}

/* Open path if it is a regular ELF file of the core's architecture; fills the unwind key. */
static int open_candidate(struct stack_ctx *x, const char *path, struct stack_binary *b)
{
	struct elf_ident id;
	_cleanup_close_ int fd = binaries_open_verified(path, x->core->e_machine, NULL, 0, &id, NULL, 0);
	int r;

	if (fd < 0)
		return fd;
	r = unwind_key_from_fd(fd, id.build_id, id.build_id_len, &b->key);
	if (r < 0)
		return r;
	b->path = strdup(path);
	if (!b->path)
		return -ENOMEM;
	b->fd = TAKE_FD(fd);
	return 0;
}

static bool bin_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct stack_ctx *x = ctx;

	return strcmp(x->bins[id - 1]->name, key) == 0;
}

/*
 * A new binary without a file yet, owned by x. Lookups of its name find it from now on (also
 * when an older binary of that name exists: add_vdso() does not look first).
 */
static int bins_append(struct stack_ctx *x, const char *name, struct stack_binary **ret)
{
	_cleanup_(binary_freep) struct stack_binary *b = NULL;
	struct hash_slot *slot;
	uint64_t h;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = -1;
	b->name = strdup(name);
	if (!b->name)
		return -ENOMEM;
	r = GROW_ARRAY(x->bins, x->cap_bins, x->n_bins + 1, GROW_NO_LIMIT);
	if (r < 0)
		return r;
	/* The ids are 32-bit: at most UINT32_MAX - 1 binaries (a core names far fewer). */
	r = hash_index_reserve(&x->bin_index, UINT32_MAX - 1);
	if (r < 0)
		return r;
	h = hash_bytes(&x->bin_seed, name, strlen(name));
	slot = hash_index_find(&x->bin_index, h, bin_eq, x, name);
	*ret = x->bins[x->n_bins++] = TAKE_PTR(b);
	if (slot->id)
		slot->id = (uint32_t)x->n_bins; /* the newer one answers for the name */
	else
		hash_index_insert(&x->bin_index, slot, (uint32_t)x->n_bins, h);
	return 0;
}

/*
 * Find the file for a mapping name: --exe for the main executable, then SYSROOT/name, then
 * name itself (qemu-user maps show host paths, already inside the sysroot). A candidate of
 * another architecture is skipped, so an aarch64 core never picks up the host's x86_64 libc.
 */
static int binary_get(struct stack_ctx *x, const char *name, bool is_exe, struct stack_binary **ret)
{
	uint64_t h = hash_bytes(&x->bin_seed, name, strlen(name));
	const struct hash_slot *s;
	struct stack_binary *b;
	int r = -ENOENT;

	s = x->bin_index.cap ? hash_index_find(&x->bin_index, h, bin_eq, x, name) : NULL;
	if (s && s->id) {
		*ret = x->bins[s->id - 1];
		return 0;
	}
	r = bins_append(x, name, &b);
	if (r < 0)
		return r;
	r = -ENOENT;
	if (is_exe && x->exe) {
		/* Absolute, so that the debug-file search knows the directory it is in. */
		_cleanup_free_ char *abs = realpath(x->exe, NULL);

		r = open_candidate(x, abs ? abs : x->exe, b);
		b->user_named = r >= 0;
	}
	if (r < 0 && x->sysroot && name[0] == '/') {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s%s", x->sysroot, name) < 0)
			return -ENOMEM;
		r = open_candidate(x, p, b);
		b->user_named = r >= 0;
	}
	if (r < 0 && name[0] == '/')
		r = open_candidate(x, name, b);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		log_debug_errno(r, "No usable file for %s: %m", name);
	*ret = b;
	return 0;
}

static int add_map(struct stack_ctx *x, uint64_t start, uint64_t end, uint64_t pgoff, bool exec,
		   struct stack_binary *bin)
{
	int r = GROW_ARRAY(x->maps, x->cap_maps, x->n_maps + 1, CORE_MAX_FILES);

	if (r < 0)
		return r;
	x->maps[x->n_maps++] = (struct stack_map){
		.start = start, .end = end, .pgoff = pgoff, .exec = exec, .bin = bin
	};
	return 0;
}

static int cmp_map(const void *a, const void *b)
{
	const struct stack_map *p = a, *q = b;

	return p->start < q->start ? -1 : p->start > q->start;
}

/* Sort, and drop mappings that overlap an earlier one (memory read from the core may lie). */
static void maps_sort_unique(struct stack_ctx *x)
{
	size_t n = 0;

	qsort(x->maps, x->n_maps, sizeof(*x->maps), cmp_map);
	for (size_t i = 0; i < x->n_maps; i++)
		if (n == 0 || x->maps[i].start >= x->maps[n - 1].end)
			x->maps[n++] = x->maps[i];
	x->n_maps = n;
}

static const struct stack_map *map_find(const struct stack_ctx *x, uint64_t addr)
{
	size_t lo = 0, hi = x->n_maps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->maps[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= x->maps[lo - 1].end)
		return NULL;
	return &x->maps[lo - 1];
}

/* The name of the main executable among the core's mappings: the one holding the entry point. */
static const char *exe_mapping_name(const struct stack_ctx *x)
{
	const struct core *c = x->core;
	uint64_t addr;

	if (core_auxv_get(c, AT_ENTRY, &addr) == 0 && core_find_mapping(c, addr))
		return core_find_mapping(c, addr)->name;
	if (core_auxv_get(c, AT_PHDR, &addr) == 0 && core_find_mapping(c, addr))
		return core_find_mapping(c, addr)->name;
	if (x->exe) {
		const char *base = strrchr(x->exe, '/') ? strrchr(x->exe, '/') + 1 : x->exe;

		for (size_t i = 0; i < c->n_mappings; i++) {
			const char *n = c->mappings[i].name, *s = strrchr(n, '/');

			if (strcmp(s ? s + 1 : n, base) == 0)
				return n;
		}
	}
	return NULL;
}

/* Program headers of a 64-bit little-endian ELF file (the only kind of core we read). */
#define STACK_MAX_PHDRS 4096
static int read_phdrs(int fd, Elf64_Ehdr *ret_eh, Elf64_Phdr **ret_ph)
{
	_cleanup_free_ Elf64_Phdr *ph = NULL;
	Elf64_Ehdr eh;
	size_t len;

	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > STACK_MAX_PHDRS)
		return -ENOEXEC;
	len = (size_t)eh.e_phnum * sizeof(*ph);
	ph = malloc(len);
	if (!ph)
		return -ENOMEM;
	if (pread(fd, ph, len, eh.e_phoff) != (ssize_t)len)
		return -ENOEXEC;
	*ret_eh = eh;
	*ret_ph = TAKE_PTR(ph);
	return 0;
}

/* The mappings the loader made for b's PT_LOADs at load bias `bias`. */
static int add_elf_maps(struct stack_ctx *x, struct stack_binary *b, const Elf64_Ehdr *eh,
			const Elf64_Phdr *ph, uint64_t bias, uint64_t page)
{
	for (size_t i = 0; i < eh->e_phnum; i++) {
		uint64_t s, e;
		int r;

		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		s = (bias + ph[i].p_vaddr) & ~(page - 1);
		e = (bias + ph[i].p_vaddr + ph[i].p_memsz + page - 1) & ~(page - 1);
		if (e <= s)
			continue;
		r = add_map(x, s, e, ph[i].p_offset & ~(page - 1), ph[i].p_flags & PF_X, b);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * The shared libraries, found the way gdb finds them in a core without NT_FILE: the
 * executable's DT_DEBUG entry points at the dynamic linker's struct r_debug, whose r_map
 * heads the list of struct link_map {l_addr, l_name, l_ld, l_next, l_prev} (the same layout
 * on every 64-bit Linux ABI). All of it is read from the core's memory, so it is hostile:
 * bounded walk, strings bounded, any unreadable pointer ends the walk.
 */
#define STACK_MAX_DYN 4096
#define STACK_MAX_LINK_MAPS 4096
static void add_link_map_libs(struct stack_ctx *x, uint64_t dynamic, uint64_t page)
{
	uint64_t r_debug = 0, lm, ent[2];
	char name[CORE_MAX_NAME];

	for (size_t i = 0; i < STACK_MAX_DYN; i++) {
		if (core_read(x->core, dynamic + 16 * i, ent, sizeof(ent)) != sizeof(ent) ||
		    ent[0] == DT_NULL)
			break;
		if (ent[0] == DT_DEBUG)
			r_debug = ent[1];
	}
	if (!r_debug || core_read(x->core, r_debug + 8, &lm, sizeof(lm)) != sizeof(lm))
		return;
	for (size_t i = 0; i < STACK_MAX_LINK_MAPS && lm; i++) {
		uint64_t l[4]; /* l_addr, l_name, l_ld, l_next */
		_cleanup_free_ Elf64_Phdr *ph = NULL;
		struct stack_binary *b;
		Elf64_Ehdr eh;
		size_t n;

		if (core_read(x->core, lm, l, sizeof(l)) != sizeof(l))
			break;
		lm = l[3];
		n = l[1] ? core_read(x->core, l[1], name, sizeof(name) - 1) : 0;
		name[n] = '\0';
		/*
		 * The executable has an empty name, the vdso a name without a path; a name
		 * without its NUL in what could be read is not a name.
		 */
		if (name[0] != '/' || strnlen(name, n) == n)
			continue;
		if (binary_get(x, name, false, &b) < 0 || b->fd < 0)
			continue;
		if (read_phdrs(b->fd, &eh, &ph) < 0)
			continue;
		if (add_elf_maps(x, b, &eh, ph, l[0], page) < 0)
			break;
	}
}

/*
 * No NT_FILE and no --maps: place --exe where the auxiliary vector says the kernel loaded it
 * (AT_PHDR is the address of its program headers, AT_ENTRY of its entry point), then the
 * libraries from the dynamic linker's list in memory.
 */
static int maps_from_exe(struct stack_ctx *x)
{
	_cleanup_free_ Elf64_Phdr *ph = NULL;
	struct stack_binary *b;
	uint64_t at_phdr, at_entry, page = 4096, bias = 0;
	bool have_bias = false;
	Elf64_Ehdr eh;
	int r;

	if (!x->exe)
		return 0;
	r = binary_get(x, x->exe, true, &b);
	if (r < 0)
		return log_oom();
	if (b->fd < 0)
		return log_error_errno(-ENOENT, "Cannot use %s as the executable of this %s core.",
				       x->exe, x->core->arch_name);
	r = read_phdrs(b->fd, &eh, &ph);
	if (r == -ENOMEM)
		return log_oom();
	if (r < 0)
		return log_error_errno(r, "%s: unreadable ELF program headers.", x->exe);
	(void)core_auxv_get(x->core, AT_PAGESZ, &page);
	if (page == 0 || (page & (page - 1)))
		page = 4096;

	if (core_auxv_get(x->core, AT_PHDR, &at_phdr) == 0) {
		for (size_t i = 0; i < eh.e_phnum && !have_bias; i++)
			if (ph[i].p_type == PT_PHDR) {
				bias = at_phdr - ph[i].p_vaddr;
				have_bias = true;
			}
		for (size_t i = 0; i < eh.e_phnum && !have_bias; i++)
			if (ph[i].p_type == PT_LOAD && eh.e_phoff >= ph[i].p_offset &&
			    eh.e_phoff - ph[i].p_offset < ph[i].p_filesz) {
				bias = at_phdr - (ph[i].p_vaddr + eh.e_phoff - ph[i].p_offset);
				have_bias = true;
			}
	}
	if (!have_bias && core_auxv_get(x->core, AT_ENTRY, &at_entry) == 0) {
		bias = at_entry - eh.e_entry;
		have_bias = true;
	}
	if (!have_bias && eh.e_type != ET_EXEC)
		return log_error_errno(
		    -ENODATA, "The core has no auxiliary vector to place %s; use --maps.", x->exe);
	r = add_elf_maps(x, b, &eh, ph, bias, page);
	if (r < 0)
		return log_oom();
	for (size_t i = 0; i < eh.e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC) {
			add_link_map_libs(x, bias + ph[i].p_vaddr, page);
			break;
		}
	maps_sort_unique(x);
	return 0;
}

/*
 * The vdso is not in NT_FILE or a maps file's paths, but the kernel dumps its pages: give it
 * to the unwinder and symbolizer as an in-memory file, so frames in it (signal trampolines,
 * clock_gettime) unwind by its CFI and have names.
 */
static int add_vdso(struct stack_ctx *x)
{
	const struct core_segment *s;
	struct stack_binary *b;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	struct elf_ident id;
	uint64_t base;
	int r;

	if (core_auxv_get(x->core, AT_SYSINFO_EHDR, &base) < 0 || base == 0)
		return 0;
	s = core_find_segment(x->core, base);
	if (!s || s->vaddr != base || s->avail != s->memsz || s->memsz > (64u << 20) ||
	    map_find(x, base))
		return 0;
	buf = malloc(s->memsz);
	if (!buf)
		return -ENOMEM;
	if (core_read(x->core, base, buf, s->memsz) != s->memsz)
		return 0;
	fd = memfd_create("vdso", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, buf, s->memsz) != (ssize_t)s->memsz)
		return 0;
	if (elf_identify_fd(fd, &id) < 0 || id.e_machine != x->core->e_machine)
		return 0;
	r = bins_append(x, "[vdso]", &b);
	if (r < 0)
		return r;
	b->path = strdup("[vdso]");
	if (!b->path)
		return -ENOMEM;
	r = unwind_key_from_fd(fd, id.build_id, id.build_id_len, &b->key);
	if (r < 0)
		return 0;
	b->fd = TAKE_FD(fd);
	return add_map(x, s->vaddr, s->vaddr + s->memsz, 0, true, b);
}

static int build_maps(struct stack_ctx *x)
{
	const struct core *c = x->core;
	const char *exe_name;
	int r;

	if (c->n_mappings == 0) {
		r = maps_from_exe(x);
		if (r < 0)
			return r;
	} else {
		exe_name = exe_mapping_name(x);
		for (size_t i = 0; i < c->n_mappings; i++) {
			const struct core_mapping *m = &c->mappings[i];
			struct stack_binary *b;

			r = binary_get(x, m->name, exe_name && strcmp(exe_name, m->name) == 0, &b);
			if (r < 0)
				return log_oom();
			r = add_map(x, m->start, m->end, m->pgoff, m->exec, b);
			if (r < 0)
				return log_oom();
		}
	}
	maps_sort_unique(x);
	r = add_vdso(x);
	if (r < 0)
		return log_oom();
	maps_sort_unique(x);

	for (size_t j = 0; j < x->n_maps; j++)
		x->maps[j].bin->has_code |= x->maps[j].exec;
	for (size_t i = 0; i < x->n_bins; i++)
		if (x->bins[i]->fd < 0 && x->bins[i]->has_code)
			log_warning(
			    "No %s ELF file found for %s (tried%s%s%s and the path itself): "
			    "its frames have no names and are unwound by frame pointers only.",
			    c->arch_name, x->bins[i]->name, x->sysroot ? " " : "",
			    x->sysroot ? x->sysroot : "", x->sysroot ? "/..." : "");
	return 0;
}

static int find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	struct stack_ctx *x = userdata;
	const struct stack_map *m = map_find(x, pc);
	const struct core_segment *seg;

	if (!m) {
		/*
		 * Executable memory with no known file (JIT code, qemu's signal trampoline page,
		 * a library no listing told us about): a mapping without CFI, like an anonymous
		 * executable mapping of a live process.
		 */
		seg = core_find_segment(x->core, pc);
		if (!seg || !(seg->flags & PF_X))
			return -ENOENT;
		*ret = (struct unwind_module){ .start = seg->vaddr, .end = seg->vaddr + seg->memsz };
		return 0;
	}
	if (!m->exec)
		return -ENOENT;
	*ret = (struct unwind_module){ .start = m->start, .end = m->end };
	if (m->bin->fd >= 0 && unwind_cache_module(x->cache, &m->bin->key, m->bin->fd, m->start,
						   m->end, m->pgoff, ret) < 0)
		/* No usable table: the frame-pointer fallback still applies. */
		*ret = (struct unwind_module){ .start = m->start, .end = m->end };
	return 0;
}

/* Print one unwound frame: one line per function, inlined callees first, numbered on. */
static void print_frame(struct stack_ctx *x, const struct unwind_frame *f, unsigned *num,
			struct sym_result *res)
{
	uint64_t look = f->pc - (f->is_return ? 1 : 0), off, vaddr = 0;
	const struct stack_map *m = map_find(x, look);
	const char *module = m ? m->bin->name : NULL;

	res->n_frames = 0;
	if (m && m->bin->fd >= 0) {
		if (!m->bin->sym && m->bin->sym_err == 0) {
			/* A file the core named (its process chose the path): debug dirs only. */
			struct sym_elf_options so = {
				.demangle = x->demangle,
				.root = m->bin->user_named ? x->host_root : NULL,
			};
			int r = sym_elf_open_with(m->bin->fd, m->bin->path, &so, &m->bin->sym);

			if (r < 0)
				m->bin->sym_err = r;
		}
		off = look - m->start + m->pgoff;
		if (m->bin->sym && sym_elf_vaddr_from_offset(m->bin->sym, off, &vaddr) == 0)
			(void)sym_elf_lookup(m->bin->sym, vaddr, x->inlines, res);
	}
	if (res->n_frames == 0) {
		printf("#%-3u 0x%016" PRIx64 " in ?? ()", (*num)++, f->pc);
		if (m)
			printf(" from %s+0x%" PRIx64, module, look - m->start + m->pgoff);
		putchar('\n');
		return;
	}
	for (size_t i = 0; i < res->n_frames && i < SYM_MAX_INLINE; i++) {
		const struct sym_frame *s = &res->frames[i];

		printf("#%-3u 0x%016" PRIx64 " in %s ()%s", (*num)++, f->pc, s->name,
		       i + 1 < res->n_frames ? " [inlined]" : "");
		if (s->file)
			printf(" at %s:%u", s->file, s->line);
		printf(" from %s", module);
		/* The function's start as a process address: tells aliases of one symbol apart. */
		if (x->verbose && s->sym_start && s->sym_start <= vaddr)
			printf(" [fn 0x%" PRIx64 "]", look - (vaddr - s->sym_start));
		putchar('\n');
	}
}

static int stack_thread(struct stack_ctx *x, size_t idx, uint8_t *buf, struct unwind_frame *frames,
			struct sym_result *res)
{
	const struct core_thread *t = &x->core->threads[idx];
	struct unwind_result ur = { .frames = frames, .max_frames = STACK_MAX_FRAMES };
	unsigned num = 0;
	int r;
	/*
	 * From sp up to the end of the dumped memory holding it (adjacent PT_LOADs included),
	 * at most STACK_COPY_MAX: like a sample's copy, which ends at the stack's top or its cap.
	 */
	size_t len = core_read(x->core, t->regs.sp, buf, STACK_COPY_MAX);
	struct unwind_input in = {
		.e_machine = x->core->e_machine,
		.regs = t->regs,
		.stack = buf,
		.stack_start = t->regs.sp,
		.stack_len = len,
		.find_module = find_module,
		.userdata = x,
	};

	printf("Thread %zu (LWP %" PRIu32 ")", idx + 1, t->tid);
	if (t->signo)
		printf(" signal %" PRIu32, t->signo);
	printf(":\n");
	r = unwind_stack(&in, &ur);
	if (r < 0)
		return log_error_errno(r, "Unwinding thread %" PRIu32 " failed: %m", t->tid);
	for (size_t i = 0; i < ur.n_frames; i++)
		print_frame(x, &ur.frames[i], &num, res);
	printf("[unwind stopped: %s%s, %zu bytes of stack]\n\n", unwind_stop_name(ur.stop),
	       ur.complete ? ", complete" : "", len);
	return 0;
}

static const char *core_error(int r)
{
	switch (r) {
	case -ENOEXEC:
		return "not an ELF core file";
	case -EOPNOTSUPP:
		return "unsupported core (only 64-bit little-endian x86_64 and aarch64 cores are)";
	case -EBADMSG:
		return "malformed or truncated core file";
	case -E2BIG:
		return "core file exceeds profd's limits";
	case -EINVAL:
		return "not a regular file";
	default:
		return NULL;
	}
}

/* What the command line asks for; copied into the stack_ctx once parsed. */
struct stack_args {
	const char *core_path, *maps, *exe;
	char *sysroot; /* owned; "" or NULL: none */
	bool inlines, verbose;
	enum sym_demangle_mode demangle;
};

static int opt_path(const struct cli_option *opt, const char *arg, void *opts)
{
	*(const char **)((char *)opts + opt->offset) = arg;
	return 0;
}

static int opt_sysroot(const struct cli_option *opt, const char *arg, void *opts)
{
	struct stack_args *a = opts;

	free(a->sysroot);
	a->sysroot = strdup(arg);
	if (!a->sysroot)
		return log_oom();
	/* "DIR/" + "/lib/..." would work too, but keep printed paths tidy. */
	binaries_sysroot_trim(a->sysroot);
	return 0;
}

static int opt_demangle(const struct cli_option *opt, const char *arg, void *opts)
{
	struct stack_args *a = opts;

	return cli_parse_demangle(arg, &a->demangle);
}

static const struct cli_option stack_options[] = {
	{ CLI_CALL, "core", 'c', true, "FILE", "the core dump", .apply = opt_path,
	  .offset = offsetof(struct stack_args, core_path) },
	{ CLI_CALL, "exe", 'e', true, "PATH",
	  "the main executable (for cores without file\n"
	  "names, and when it is no longer at the path the\n"
	  "core records)", .apply = opt_path,
	  .offset = offsetof(struct stack_args, exe) },
	{ CLI_CALL, "sysroot", 's', true, "DIR",
	  "look for the core's files under DIR\n"
	  "(e.g. /usr/aarch64-linux-gnu)",
	  .apply = opt_sysroot },
	{ CLI_CALL, "maps", 'm', true, "FILE",
	  "the process's mappings, in /proc/PID/maps\n"
	  "format (qemu-user cores have no NT_FILE note)", .apply = opt_path,
	  .offset = offsetof(struct stack_args, maps) },
	{ CLI_FALSE, "no-inline", 0, .help = "do not show inlined functions as frames",
	  .offset = offsetof(struct stack_args, inlines) },
	{ CLI_CALL, "demangle", 0, true, "MODE",
	  "C++/Rust names: simple (default: no parameters\n"
	  "or template arguments), templates, full or none\n"
	  "(mangled), as pprof's -symbolize=demangle=MODE\n"
	  "and profd record", .apply = opt_demangle },
	{ CLI_TRUE, "verbose", 'v', .help = "also show each function's start address\n([fn 0x...])",
	  .offset = offsetof(struct stack_args, verbose) },
	{ CLI_HELP, "help", 'h', .help = "show this help" },
};

static const struct cli_command stack_command = {
	.name = "stack",
	.usage = "Usage: profd stack --core FILE [OPTIONS]\n"
		 "\n"
		 "Unwind and symbolize every thread of an ELF core dump (x86_64 or aarch64, on any\n"
		 "host) with profd's unwinder, and print a gdb-like backtrace per thread.\n"
		 "\n",
	.options = stack_options,
	.n_options = ARRAY_SIZE(stack_options),
};

/* 1 after --help, 0, or -errno (logged). */
static int parse_args(int argc, char **argv, struct stack_args *a)
{
	int r = cli_parse(&stack_command, argc, argv, a, NULL);

	if (r != 0)
		return r;
	if (!a->core_path)
		return log_error_errno(-EINVAL,
				       "--core FILE is required. Try 'profd stack --help'.");
	return 0;
}

/* The core, its mappings (NT_FILE, --maps or --exe) and the binaries behind them. */
static int load_core(struct stack_ctx *x, const char *core_path, const char *maps)
{
	int r;

	r = core_open(core_path, &x->core);
	if (r < 0) {
		const char *why = core_error(r);

		if (why)
			return log_error_errno(r, "%s: %s.", core_path, why);
		return log_error_errno(r, "Cannot read core file %s: %m", core_path);
	}
	if (x->core->truncated)
		log_warning("%s is truncated: some memory was not dumped; stacks may end early.",
			    core_path);
	if (maps) {
		r = core_load_maps(x->core, maps);
		if (r < 0)
			return log_error_errno(r, "Cannot use maps file %s: %s", maps,
					       r == -EBADMSG
						   ? "no /proc/PID/maps lines, or overlapping ones"
						   : strerror(-r));
	}
	r = unwind_cache_new(0, &x->cache);
	if (r < 0)
		return log_oom();
	r = build_maps(x);
	if (r < 0)
		return r;
	if (x->n_maps == 0)
		log_warning("No mappings known (the core has no NT_FILE note): pass --maps FILE or "
			    "--exe PATH to get names and CFI.");
	return 0;
}

/* A backtrace of every thread, with one buffer for the stack copies. */
static int print_threads(struct stack_ctx *x, const char *core_path)
{
	_cleanup_free_ uint8_t *buf = malloc(STACK_COPY_MAX);
	_cleanup_free_ struct unwind_frame *frames = calloc(STACK_MAX_FRAMES, sizeof(*frames));
	_cleanup_free_ struct sym_result *res = malloc(sizeof(*res));
	int r;

	if (!buf || !frames || !res)
		return log_oom();
	printf("Core %s: %s, pid %" PRIu32 "%s%s%s, %zu thread%s\n\n", core_path, x->core->arch_name,
	       x->core->pid, x->core->comm[0] ? " \"" : "", x->core->comm,
	       x->core->comm[0] ? "\"" : "", x->core->n_threads, x->core->n_threads == 1 ? "" : "s");
	for (size_t i = 0; i < x->core->n_threads; i++) {
		r = stack_thread(x, i, buf, frames, res);
		if (r < 0)
			return r;
	}
	return 0;
}

int cmd_stack(int argc, char **argv)
{
	struct stack_args a = { .inlines = true };
	struct stack_ctx x = {};
	int r;

	hash_seed_init(&x.bin_seed);
	r = parse_args(argc, argv, &a);
	if (r != 0) {
		free(a.sysroot);
		return r > 0 ? 0 : r;
	}
	x.exe = a.exe;
	x.inlines = a.inlines;
	x.verbose = a.verbose;
	x.demangle = a.demangle;
	x.sysroot = a.sysroot && a.sysroot[0] ? a.sysroot : NULL;
	(void)sym_root_open("/", &x.host_root); /* without it: debug dirs only */

	r = load_core(&x, a.core_path, a.maps);
	if (r >= 0)
		r = print_threads(&x, a.core_path);
	fflush(stdout);
	stack_ctx_done(&x);
	free(a.sysroot);
	return r < 0 ? r : 0;
}

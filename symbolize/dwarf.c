/* SPDX-License-Identifier: MIT */
/*
 * struct sym_elf: one binary opened with libdwfl, offline, at bias 0 so that dwfl addresses
 * are the ELF virtual addresses callers pass in. libdwfl brings MiniDebugInfo (.gnu_debugdata)
 * and the symtab/dynsym merge; the separate-debug-file search is ours (find_debuginfo below):
 * libdwfl's standard one opens candidates with a blocking open() (a FIFO next to a binary in
 * /tmp would hang the daemon), searches only the global debug path and always asks debuginfod
 * when DEBUGINFOD_URLS is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <zlib.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/safeopen.h"
#include "common/util.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

/* Real binaries have 2–6 PT_LOADs; more than this is junk we do not need to honour. */
#define SYM_MAX_LOAD_SEGMENTS 256
/* CUs probed by sym_elf_has_lines() before deciding there is no line table. */
#define HAS_LINES_MAX_CUS 64
/* Per lookup: nesting depth of scopes containing one pc, DIEs examined, imported units
 * followed. Real code nests a few dozen deep; big C++ CUs have ~1e5 top-level DIEs. */
#define SCOPE_MAX_DEPTH 256
#define SCOPE_MAX_VISIT (4u << 20)
#define SCOPE_MAX_IMPORTS 64

struct sym_elf;

/*
 * The concrete nesting of scopes containing pc, outermost first. This is what
 * dwarf_getscopes() + dwarf_getscopes_die() compute, in one pass and with limits: libdw 0.188's
 * dwarf_getscopes() also leaks its array when an inlined instance's abstract origin does not
 * resolve, which hostile DWARF can arrange on every lookup.
 */
struct scope_walk {
	struct sym_elf *e; /* whose scope index to use */
	Dwarf_Addr pc;
	bool outer_only;  /* stop at the first inlined instance (or entry point) */
	Dwarf_Die chain[SCOPE_MAX_DEPTH];
	int tags[SCOPE_MAX_DEPTH];
	uint32_t refs[SCOPE_MAX_DEPTH]; /* the range entry each was found through, or NO_REF */
	int n;
	unsigned imports; /* DW_TAG_imported_unit references followed (dwz partial units) */
	size_t visited;   /* DIEs looked at */
};

/*
 * Scope index: for a scope DIE (a CU, a function, a lexical block, an inlined instance), the
 * pc ranges of its child scopes (through imported units), sorted, so that each step down a
 * lookup is a binary search instead of a walk over every child DIE (a CU has hundreds of
 * top-level DIEs, mostly types and declarations; a function its parameters, variables and
 * call sites). It is built the first time a lookup goes into the scope, and kept with the
 * range entry that led there (CUs: in a hash table), so going down costs no search but the
 * binary ones; a scope found by walking has no entry, and is walked too. A scope whose
 * children overlap, or that hits a walk limit, is walked as before, so the index never
 * changes an answer. Range entries also keep what frames need from their DIE (fn_info) and
 * where their pcs are in the line table. Bounded: near SYM_MAX_INDEXED_CUS CUs or
 * SYM_MAX_SCOPE_RANGES ranges it starts over (88 bytes a range, 24 a CU slot).
 */

/* The index of one scope's children. */
struct scope_kids {
	uint32_t first, n; /* their ranges in sym_elf.ranges */
	int state;
};

enum { KIDS_NEW = 0, KIDS_INDEXED, KIDS_WALK };

/* Where a scope's scope_kids live: a range entry's index, or CU_REF | a CU's index in cus. */
#define NO_REF UINT32_MAX
#define CU_REF 0x80000000u
#define LINES_SEEN (UINT32_MAX - 1)

struct scope_range {
	Dwarf_Addr lo, hi; /* CU-relative, as dwarf_ranges() gives them */
	Dwarf_Die die;
	int tag;
	struct scope_kids kids; /* of die */
	uint32_t fn;            /* die's fn_info in sym_elf.fns, NO_REF until read */
	/* The CU's line rows that can hold a pc in [lo, hi): [line_first, line_last], found on
	 * the second line lookup here (line_first NO_REF until the first, LINES_SEEN until
	 * the second: a range looked up once is cheaper to search whole). */
	uint32_t line_first, line_last;
};

struct cu_node {
	const void *key; /* the CU DIE's address in the mapped DWARF */
	struct scope_kids kids;
};

/*
 * What a frame needs from a function DIE (subprogram or inlined instance). Reading it costs a
 * dozen attribute lookups through abstract origins and specifications, so it is read once per
 * range entry of the scope index and kept in sym_elf.fns, at most FN_INFO_MAX (3 MiB; past
 * that, read on every lookup until the index starts over).
 */
#define FN_INFO_MAX (SYM_MAX_SCOPE_RANGES / 4)

struct fn_info {
	const char *raw;       /* DWARF name (linkage name first), NULL if none */
	const char *name;      /* display_name(raw) */
	const char *call_file; /* DW_AT_call_file of an inlined instance, or NULL */
	Dwarf_Addr pc;         /* DW_AT_entry_pc, else DW_AT_low_pc (CU-relative): has_pc */
	uint32_t decl_line, call_line, call_column;
	bool has_pc;
};

struct load_segment {
	uint64_t offset, filesz, vaddr;
};

struct sym_elf {
	Dwfl *dwfl;
	Dwfl_Module *mod; /* owned by dwfl */
	Elf *elf;         /* main file, owned by dwfl */
	Dwarf_Addr bias;  /* dwfl address = ELF vaddr + bias; 0 as reported */

	struct load_segment *loads;
	size_t n_loads;

	bool main_has_symtab;
	int has_lines; /* -1 until computed */

	struct str_pool pool;    /* demangled names; raw names live in libelf/libdw memory */
	struct demangle_buf dm;  /* scratch for the demangler */
	struct scope_walk *walk; /* scratch for lookup_dwarf(), 10 KiB: kept off the stack */
	struct func_table *funcs; /* sorted function symbols, built on the first symbol lookup */
	int funcs_err;            /* why they could not be: dwfl_module_addrinfo() instead */
	struct cu_node *cus;        /* indexed CUs, in the order first seen */
	size_t n_cus, cap_cus;
	struct hash_index cu_index; /* CU DIE address -> cus index + 1 */
	struct scope_range *ranges; /* of every indexed scope, each one's contiguous */
	Dwarf_Addr *range_lo;       /* ranges[i].lo: what the binary searches read, packed */
	size_t n_ranges, cap_ranges;
	struct fn_info *fns;        /* of function DIEs of the ranges, read on first need */
	size_t n_fns, cap_fns;

	/* Separate debug file search (find_debuginfo). */
	char *path;               /* the binary's name in the target */
	char **debug_dirs;        /* absolute, NULL-terminated */
	bool debuginfod;
	enum sym_demangle_mode demangle;
	bool debug_searched; /* libdwfl asked for the module's debug file */
	bool debug_located;  /* our local search ran (locate_debug_file) */
	int debug_fd;	     /* what it found, < 0: nothing; libdwfl gets a dup */
	char *debug_name;
	dev_t main_dev;
	ino_t main_ino;
	uid_t main_uid;
	struct sym_root *root; /* where path is named (reference), NULL: unknown */
	uint64_t search_deadline_ns; /* CLOCK_MONOTONIC end of the debug-file search */
	int64_t *search_budget_ns;   /* shared with the sym_cache's other binaries, or NULL */
};

static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink,
			  GElf_Word crc, char **ret_name);

/*
 * Only find_debuginfo() reads debuginfo_path, through dwfl_standard_find_debuginfo() when
 * debuginfod is on: a directory that cannot exist (procfs refuses creation, ENOENT) turns that
 * function's local search into nothing, leaving only its debuginfod query. Our own search has
 * already run by then.
 */
static char *no_local_search = (char *)"/proc/self/.profd-no-debug-search";

static const Dwfl_Callbacks offline_callbacks = {
	.find_elf = dwfl_build_id_find_elf, /* unused: every module is reported with its fd */
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &no_local_search,
};

static const char *const default_debug_dirs[] = { SYM_DEFAULT_DEBUG_DIR, NULL };

void sym_elf_free(struct sym_elf *e)
{
	if (!e)
		return;
	if (e->dwfl)
		dwfl_end(e->dwfl); /* closes our dup of the fd and any debug files */
	str_pool_done(&e->pool);
	demangle_buf_done(&e->dm);
	free(e->walk);
	func_table_free(e->funcs);
	free(e->cus);
	hash_index_free(&e->cu_index);
	free(e->ranges);
	free(e->range_lo);
	free(e->fns);
	free(e->loads);
	free(e->path);
	if (e->debug_fd >= 0)
		close(e->debug_fd);
	free(e->debug_name);
	if (e->debug_dirs)
		for (char **d = e->debug_dirs; *d; d++)
			free(*d);
	free(e->debug_dirs);
	sym_root_unref(e->root);
	free(e);
}
DEFINE_FREEP(struct sym_elf, sym_elf_free)

/* Check magic and type ourselves so libdwfl never sees compressed or relocatable input. */
static int check_header(int fd)
{
	unsigned char h[EI_NIDENT + 2];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(h) || memcmp(h, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	if (h[EI_CLASS] != ELFCLASS32 && h[EI_CLASS] != ELFCLASS64)
		return -ENOEXEC;

	uint16_t type;
	if (h[EI_DATA] == ELFDATA2LSB)
		type = (uint16_t)(h[EI_NIDENT] | h[EI_NIDENT + 1] << 8);
	else if (h[EI_DATA] == ELFDATA2MSB)
		type = (uint16_t)(h[EI_NIDENT] << 8 | h[EI_NIDENT + 1]);
	else
		return -ENOEXEC;
	/* Executables and shared objects only: relocatable objects have no vaddrs to look up
	 * and cores carry no symbols. */
	if (type != ET_EXEC && type != ET_DYN)
		return -ENOEXEC;
	return 0;
}

static int collect_loads(struct sym_elf *e)
{
	size_t phnum;
	if (elf_getphdrnum(e->elf, &phnum) < 0)
		return -ENOEXEC;

	e->loads = calloc(MIN(phnum, (size_t)SYM_MAX_LOAD_SEGMENTS) + 1, sizeof(*e->loads));
	if (!e->loads)
		return -ENOMEM;

	for (size_t i = 0; i < phnum && e->n_loads < SYM_MAX_LOAD_SEGMENTS; i++) {
		GElf_Phdr mem, *ph = gelf_getphdr(e->elf, (int)i, &mem);
		if (!ph || ph->p_type != PT_LOAD || ph->p_filesz == 0)
			continue;
		uint64_t end;
		if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &end))
			continue;
		e->loads[e->n_loads++] = (struct load_segment){
			.offset = ph->p_offset,
			.filesz = ph->p_filesz,
			.vaddr = ph->p_vaddr,
		};
	}
	return 0;
}

static bool elf_has_section_type(Elf *elf, GElf_Word type)
{
	Elf_Scn *scn = NULL;
	/* Bounded by the section count libelf validated against the file size. */
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		if (sh && sh->sh_type == type)
			return true;
	}
	return false;
}

static int copy_debug_dirs(struct sym_elf *e, const char *const *dirs)
{
	size_t n = 0;

	if (!dirs)
		dirs = default_debug_dirs;
	e->debug_dirs = calloc(SYM_MAX_DEBUG_DIRS + 1, sizeof(*e->debug_dirs));
	if (!e->debug_dirs)
		return -ENOMEM;
	for (; *dirs && n < SYM_MAX_DEBUG_DIRS; dirs++) {
		if ((*dirs)[0] != '/')
			continue; /* relative to what? the target's cwd is not ours */
		e->debug_dirs[n] = strdup(*dirs);
		if (!e->debug_dirs[n])
			return -ENOMEM;
		n++;
	}
	return 0;
}

int sym_elf_open(int fd, const char *path, struct sym_elf **ret)
{
	return sym_elf_open_with(fd, path, NULL, ret);
}

int sym_elf_open_with(int fd, const char *path, const struct sym_elf_options *opts,
		      struct sym_elf **ret)
{
	if (fd < 0 || !ret)
		return -EINVAL;
	if (!path)
		path = "";

	_cleanup_close_ int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return -errno;

	struct stat st;
	if (fstat(dfd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > SYM_MAX_FILE_SIZE)
		return -EFBIG;

	int r = check_header(dfd);
	if (r < 0)
		return r;
	/* DWARF in the binary itself, compressed (-gz): libdw reads an inflated copy. */
	int ifd;
	if (sym_inflate_debug_sections(dfd, &ifd) == 0) {
		close(dfd);
		dfd = ifd;
	}

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOTSUP;

	_cleanup_(sym_elf_freep) struct sym_elf *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->has_lines = -1;
	e->debug_fd = -1;
	e->main_dev = st.st_dev;
	e->main_ino = st.st_ino;
	e->main_uid = st.st_uid;
	e->root = sym_root_ref(opts ? opts->root : NULL);
	e->search_budget_ns = opts ? opts->search_budget_ns : NULL;
	e->debuginfod = opts && opts->debuginfod;
	e->demangle = opts ? opts->demangle : SYM_DEMANGLE_SIMPLE;
	if ((unsigned)e->demangle > SYM_DEMANGLE_NONE)
		return -EINVAL;
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	r = copy_debug_dirs(e, opts ? opts->debug_dirs : NULL);
	if (r < 0)
		return r;
	str_pool_init(&e->pool, SYM_MAX_STRING_BYTES);
	e->dm.max = SYM_DEMANGLE_MAX_OUTPUT + 1;
	e->walk = malloc(sizeof(*e->walk));
	if (!e->walk)
		return -ENOMEM;

	e->dwfl = dwfl_begin(&offline_callbacks);
	if (!e->dwfl)
		return -ENOMEM;

	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;

	dwfl_report_begin(e->dwfl);
	/* base 0 with add_p_vaddr: the module sits at its own p_vaddr, bias 0, for ET_DYN too. */
	e->mod = dwfl_report_elf(e->dwfl, base, path, dfd, 0, true);
	if (!e->mod) {
		log_debug("symbolize: %s: %s", path, dwfl_errmsg(-1));
		return -ENOEXEC;
	}
	/* The module owns the fd now; dwfl_end() closes it. */
	TAKE_FD(dfd);
	if (dwfl_report_end(e->dwfl, NULL, NULL) != 0)
		return -ENOEXEC;
	/* find_debuginfo() gets the module's userdata slot: point it at us. */
	void **ud = NULL;
	if (!dwfl_module_info(e->mod, &ud, NULL, NULL, NULL, NULL, NULL, NULL) || !ud)
		return -ENOEXEC;
	*ud = e;

	e->elf = dwfl_module_getelf(e->mod, &e->bias);
	if (!e->elf)
		return -ENOEXEC;

	r = collect_loads(e);
	if (r < 0)
		return r;
	e->main_has_symtab = elf_has_section_type(e->elf, SHT_SYMTAB);

	*ret = TAKE_PTR(e);
	return 0;
}

/* ---- separate debug files ---------------------------------------------------------------- */

/*
 * CRC-32 of the whole file as .gnu_debuglink records it (zlib's polynomial, seed 0); -ETIME
 * past the search's deadline.
 */
static int file_crc32(struct sym_elf *e, int fd, uint64_t size, uint32_t *ret)
{
	static const size_t chunk = 1u << 16;
	_cleanup_free_ unsigned char *buf = malloc(chunk);
	uLong crc = crc32(0, Z_NULL, 0);
	uint64_t off = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		/* Every 4 MiB: a few clock reads for 256 MiB. */
		if ((off & ((4u << 20) - 1)) == 0 && mono_ns() > e->search_deadline_ns)
			return -ETIME;
		ssize_t n = pread(fd, buf, (size_t)MIN((uint64_t)chunk, size - off), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* truncated meanwhile: the CRC will not match */
		crc = crc32(crc, buf, (uInt)n);
		off += (uint64_t)n;
	}
	*ret = (uint32_t)crc;
	return 0;
}

/* Whether a candidate may be read whole for its CRC (see SYM_DEBUGLINK_CRC_MAX_BYTES). */
static bool crc_candidate_ok(const struct stat *st)
{
	uint64_t size = (uint64_t)st->st_size, allocated = (uint64_t)st->st_blocks * 512;

	return size <= SYM_DEBUGLINK_CRC_MAX_BYTES &&
	       allocated >= size / SYM_DEBUGLINK_SPARSE_RATIO;
}

/*
 * An fd on candidate `name`, looked up below `rootfd` with safe_open_in_root(`flags`), if it is
 * the debug file for `e`; else safe_open_in_root()'s -errno, or -ENOENT (not the debug file).
 */
static int try_debug_file(struct sym_elf *e, int rootfd, const char *name, unsigned flags,
			  const uint8_t *build_id, size_t build_id_len, GElf_Word crc)
{
	struct stat st;
	int fd = safe_open_in_root(rootfd, name, flags, SYM_MAX_FILE_SIZE, &st);

	if (fd < 0) {
		if (fd != -ENOENT)
			log_debug_errno(fd, "symbolize: %s: %s not opened: %m", e->path, name);
		return fd;
	}
	if (st.st_dev == e->main_dev && st.st_ino == e->main_ino)
		goto reject;
	/* Root reads it on the binary's behalf: only what the binary's owner could read anyway
	 * (theirs, or everybody's), never a root-only file a link or mount put in the way. */
	if (st.st_uid != e->main_uid && !(st.st_mode & S_IROTH)) {
		log_debug("symbolize: %s: %s belongs to uid %u and is not world-readable, ignored",
			  e->path, name, (unsigned)st.st_uid);
		goto reject;
	}

	if (build_id_len > 0) {
		/* A binary with a build-id: only a debug file with the same build-id is its. */
		struct elf_ident id;
		if (elf_identify_fd(fd, &id) < 0 || id.build_id_len != build_id_len ||
		    memcmp(id.build_id, build_id, build_id_len) != 0) {
			log_debug("symbolize: %s: %s has another build-id, ignored", e->path, name);
			goto reject;
		}
	} else {
		/* Without a build-id the debuglink CRC is the only proof; no CRC, no proof. */
		uint32_t c = 0;
		int r;
		if (crc == 0)
			goto reject;
		if (!crc_candidate_ok(&st)) {
			log_debug("symbolize: %s: %s is too large or sparse for a CRC proof "
				  "(%llu bytes, %llu allocated), ignored",
				  e->path, name, (unsigned long long)st.st_size,
				  (unsigned long long)st.st_blocks * 512);
			goto reject;
		}
		r = file_crc32(e, fd, (uint64_t)st.st_size, &c);
		if (r < 0 || c != crc) {
			log_debug("symbolize: %s: %s fails the debuglink CRC%s, ignored", e->path,
				  name, r == -ETIME ? " (search time budget spent)" : "");
			goto reject;
		}
	}
	return fd;
reject:
	close(fd);
	return -ENOENT;
}

static int try_debug_path(struct sym_elf *e, int rootfd, const char *name, unsigned flags,
			  const uint8_t *build_id, size_t build_id_len, GElf_Word crc,
			  char **ret_name)
{
	int fd = try_debug_file(e, rootfd, name, flags, build_id, build_id_len, crc);
	if (fd >= 0) {
		/* libdwfl frees the name with the module; without it we still have the fd. */
		*ret_name = strdup(name);
		log_debug("symbolize: %s: debug info from %s", e->path, name);
	}
	return fd;
}

static bool valid_debuglink(const char *link)
{
	size_t n = link ? strnlen(link, NAME_MAX + 1) : 0;

	/* A file name, not a path: a debuglink is a basename by definition. */
	return n > 0 && n <= NAME_MAX && !strchr(link, '/') && strcmp(link, ".") != 0 &&
	       strcmp(link, "..") != 0;
}

/*
 * Search the local debug dirs by build-id, next to the binary (in its root only), then the
 * debug dirs by debuglink name. `hostfd` is "/": the debug dirs are host paths. The fd, or
 * -ENOENT when no candidate is the debug file.
 */
static int find_local_debuginfo(struct sym_elf *e, int hostfd, const uint8_t *build_id,
				size_t build_id_len, const char *debuglink, GElf_Word crc,
				char **ret_name)
{
	char name[PATH_MAX];
	int fd;

	if (build_id_len >= 2) {
		char hex[2 * 64 + 1];
		if (build_id_to_hex(build_id, build_id_len, hex, sizeof(hex)) > 0)
			for (char **d = e->debug_dirs; *d; d++) {
				if (snprintf(name, sizeof(name), "%s/.build-id/%.2s/%s.debug", *d,
					     hex, hex + 2) >= (int)sizeof(name))
					continue;
				fd = try_debug_path(e, hostfd, name, 0, build_id, build_id_len,
						    crc, ret_name);
				if (fd >= 0)
					return fd;
			}
	}

	const char *slash = strrchr(e->path, '/');
	if (!valid_debuglink(debuglink) || !slash || e->path[0] != '/')
		return -ENOENT;
	int dirlen = (int)MIN((size_t)(slash - e->path), (size_t)PATH_MAX);
	const char *dir = e->path;

	/* Next to the binary and in its .debug/: names the target chose, in its root only and
	 * with no symlink on the way. */
	if (e->root) {
		int rootfd = sym_root_fd(e->root);

		if (snprintf(name, sizeof(name), "%.*s/%s", dirlen, dir, debuglink) <
		    (int)sizeof(name)) {
			fd = try_debug_path(e, rootfd, name, SAFE_OPEN_NO_SYMLINKS, build_id,
					    build_id_len, crc, ret_name);
			if (fd >= 0)
				return fd;
		}
		if (snprintf(name, sizeof(name), "%.*s/.debug/%s", dirlen, dir, debuglink) <
		    (int)sizeof(name)) {
			fd = try_debug_path(e, rootfd, name, SAFE_OPEN_NO_SYMLINKS, build_id,
					    build_id_len, crc, ret_name);
			if (fd >= 0)
				return fd;
		}
	}
	for (char **d = e->debug_dirs; *d; d++) {
		if (snprintf(name, sizeof(name), "%s%.*s/%s", *d, dirlen, dir, debuglink) >=
		    (int)sizeof(name))
			continue;
		fd = try_debug_path(e, hostfd, name, 0, build_id, build_id_len, crc, ret_name);
		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

/*
 * The local search for the module's debug file, once per sym_elf: by libdwfl's request
 * (find_debuginfo) or earlier, when sym_elf_has_lines() wants to look at its section headers
 * without libdw reading (and decompressing) its DWARF. The same build-id and debuglink libdwfl
 * would pass.
 */
static void locate_debug_file(struct sym_elf *e)
{
	const unsigned char *bits = NULL;
	GElf_Addr bits_vaddr;
	GElf_Word crc = 0;
	size_t build_id_len = 0;
	char *name = NULL;

	if (e->debug_located)
		return;
	e->debug_located = true;
	int n = dwfl_module_build_id(e->mod, &bits, &bits_vaddr);
	if (n > 0 && n <= 64)
		build_id_len = (size_t)n;
	const char *link = e->elf ? dwelf_elf_gnu_debuglink(e->elf, &crc) : NULL;
	_cleanup_close_ int hostfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (hostfd < 0)
		return;
	/* This binary's own cap, and what is left of the budget it shares (a profile's). */
	uint64_t start = mono_ns(), allow = SYM_DEBUG_SEARCH_MAX_NS;
	if (e->search_budget_ns) {
		int64_t left = __atomic_load_n(e->search_budget_ns, __ATOMIC_RELAXED);

		allow = left > 0 ? MIN(allow, (uint64_t)left) : 0;
	}
	e->search_deadline_ns = start + allow;
	e->debug_fd = find_local_debuginfo(e, hostfd, bits, build_id_len, link, crc, &name);
	if (e->search_budget_ns)
		__atomic_sub_fetch(e->search_budget_ns, (int64_t)(mono_ns() - start),
				   __ATOMIC_RELAXED);
	if (e->debug_fd >= 0)
		e->debug_name = name;
	else
		free(name);
}

/*
 * Whether libdwfl asks for the module's own debug file (with the main file's debuglink, or
 * none) rather than for a dwz alternate file (named by .gnu_debugaltlink).
 */
static bool is_main_debug_request(struct sym_elf *e, const char *debuglink, GElf_Word crc)
{
	GElf_Word main_crc = 0;
	const char *main_link = e->elf ? dwelf_elf_gnu_debuglink(e->elf, &main_crc) : NULL;

	if (!debuglink || !main_link)
		return !debuglink && !main_link;
	return crc == main_crc && strcmp(debuglink, main_link) == 0;
}

/*
 * libdwfl's find_debuginfo callback. It calls it for the module's debug file (possibly more
 * than once: for the symbol table and for DWARF) and for a dwz alternate file. We search once
 * per sym_elf for the former, and leave the latter to libdw (it finds alternate files next to
 * the debug file and under /usr/lib/debug/.build-id, and checks their build-id).
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name, const char *debuglink,
			  GElf_Word crc, char **ret_name)
{
	struct sym_elf *e = userdata ? *userdata : NULL;
	const unsigned char *bits = NULL;
	GElf_Addr bits_vaddr;
	size_t build_id_len = 0;
	int fd;

	/* -1 with errno 0 reads as "nothing found" (DWFL_E_CB): libdwfl then still tries
	 * MiniDebugInfo and .dynsym; any errno would end its symbol search. */
	errno = 0;
	if (!e || e->debug_searched || !is_main_debug_request(e, debuglink, crc))
		return -1;
	e->debug_searched = true;

	locate_debug_file(e);
	if (e->debug_fd >= 0) {
		/* libdwfl owns what it gets: a dup (or an inflated copy), so sym_elf_has_lines()
		 * keeps its own. */
		if (sym_inflate_debug_sections(e->debug_fd, &fd) < 0)
			fd = fcntl(e->debug_fd, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0 && e->debug_name)
			*ret_name = strdup(e->debug_name);
		errno = 0;
		return fd;
	}

	int n = dwfl_module_build_id(mod, &bits, &bits_vaddr);
	if (n > 0 && n <= 64)
		build_id_len = (size_t)n;
	errno = 0;
	if (!e->debuginfod || build_id_len == 0)
		return -1;

	/* With debuginfod on: libdwfl's standard search, whose local part finds nothing (see
	 * no_local_search), so what it returns came from a server. Check it like the rest. */
	char *dname = NULL;
	fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name, debuglink, crc,
					  &dname);
	free(dname);
	errno = 0;
	if (fd < 0)
		return -1;
	struct elf_ident id;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > SYM_MAX_FILE_SIZE || elf_identify_fd(fd, &id) < 0 ||
	    id.build_id_len != build_id_len || memcmp(id.build_id, bits, build_id_len) != 0) {
		close(fd);
		errno = 0;
		return -1;
	}
	log_debug("symbolize: %s: debug info from debuginfod", e->path);
	return fd;
}

int sym_elf_vaddr_from_offset(struct sym_elf *e, uint64_t file_offset, uint64_t *ret_vaddr)
{
	if (!e || !ret_vaddr)
		return -EINVAL;
	for (size_t i = 0; i < e->n_loads; i++) {
		const struct load_segment *l = &e->loads[i];
		if (file_offset >= l->offset && file_offset - l->offset < l->filesz) {
			*ret_vaddr = file_offset - l->offset + l->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

/* The name to show for a raw symbol: demangled and pooled, or `raw` itself. */
static const char *display_name(struct sym_elf *e, const char *raw)
{
	if (!raw || raw[0] != '_' || (raw[1] != 'Z' && raw[1] != 'R') ||
	    e->demangle == SYM_DEMANGLE_NONE)
		return raw;

	const char *v = str_pool_map_get(&e->pool, raw);
	if (v)
		return v;

	v = raw;
	if (demangle_into(raw, e->demangle, &e->dm) >= 0) {
		const char *d = str_pool_strndup(&e->pool, e->dm.buf, e->dm.len);
		/* Out of string budget: show the raw name rather than fail. */
		if (!d)
			return raw;
		v = d;
	}
	/* Negative results are cached too, so a name that does not demangle is tried once. */
	(void)str_pool_map_put(&e->pool, raw, v);
	return v;
}

static const char *die_linkage_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	/* Integrate: inlined instances name nothing themselves, their abstract origin (and its
	 * declaration, via DW_AT_specification) does. */
	const char *name =
		dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	return name && name[0] ? name : NULL;
}

static const char *die_plain_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
	return name && name[0] ? name : NULL;
}

/* ---- qualified names (symbolize.h, "Names") -------------------------------------------------- */

/* Bounds for hostile DWARF: reference hops, nesting of named scopes, output length. */
#define QUAL_MAX_HOPS 8
#define QUAL_MAX_DEPTH 4
#define QUAL_MAX_LEN 4096
#define QUAL_MAX_NEST 8 /* put_qualified() calls in progress: types of lambdas in scopes ... */

struct qbuf {
	char s[QUAL_MAX_LEN];
	size_t len;
	bool overflow;
	unsigned nest; /* of put_qualified(), carried into the buffers of nested names */
};

static void qb_put(struct qbuf *q, const char *s)
{
	size_t n = strlen(s);
	if (q->overflow || n >= sizeof(q->s) - q->len) {
		q->overflow = true;
		return;
	}
	memcpy(q->s + q->len, s, n + 1);
	q->len += n;
}

/* Where a DIE's name and scope are: through abstract origin, then specification. */
static void die_declaration(Dwarf_Die *die, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Die next;

	*ret = *die;
	for (int hop = 0; hop < QUAL_MAX_HOPS; hop++) {
		if (dwarf_formref_die(dwarf_attr(ret, DW_AT_abstract_origin, &attr), &next) ||
		    dwarf_formref_die(dwarf_attr(ret, DW_AT_specification, &attr), &next))
			*ret = next;
		else
			break;
	}
}

static bool lang_has_scopes(Dwarf_Die *die)
{
	Dwarf_Die cu;
	if (!dwarf_diecu(die, &cu, NULL, NULL))
		return false;
	switch (dwarf_srclang(&cu)) {
	case DW_LANG_C_plus_plus:
	case DW_LANG_C_plus_plus_03:
	case DW_LANG_C_plus_plus_11:
	case DW_LANG_C_plus_plus_14:
	case DW_LANG_Rust:
	case DW_LANG_D:
		return true;
	default:
		return false;
	}
}

static void put_qualified(struct sym_elf *e, Dwarf_Die *die, struct qbuf *q, int depth);

/* A type as the demangler spells it (for a lambda's signature); false when unsure. */
static bool put_type(struct sym_elf *e, Dwarf_Die *type, struct qbuf *q, int depth)
{
	static const struct {
		const char *dwarf, *demangled;
	} base[] = {
		{ "long int", "long" },
		{ "long unsigned int", "unsigned long" },
		{ "long long int", "long long" },
		{ "long long unsigned int", "unsigned long long" },
		{ "short int", "short" },
		{ "short unsigned int", "unsigned short" },
		{ "_Bool", "bool" },
	};
	Dwarf_Attribute attr;
	Dwarf_Die inner;
	const char *name;

	if (depth > 16)
		return false;
	switch (dwarf_tag(type)) {
	case DW_TAG_base_type:
		name = die_plain_name(type);
		if (!name)
			return false;
		for (size_t i = 0; i < ARRAY_SIZE(base); i++)
			if (!strcmp(name, base[i].dwarf))
				name = base[i].demangled;
		qb_put(q, name);
		return true;
	case DW_TAG_typedef:
		/* Mangled names carry the type, not its alias. */
		return dwarf_formref_die(dwarf_attr(type, DW_AT_type, &attr), &inner) &&
		       put_type(e, &inner, q, depth + 1);
	case DW_TAG_pointer_type:
	case DW_TAG_reference_type:
	case DW_TAG_rvalue_reference_type:
	case DW_TAG_const_type:
	case DW_TAG_volatile_type: {
		int tag = dwarf_tag(type);
		if (!dwarf_formref_die(dwarf_attr(type, DW_AT_type, &attr), &inner)) {
			if (tag != DW_TAG_pointer_type)
				return false;
			qb_put(q, "void");
		} else if (!put_type(e, &inner, q, depth + 1)) {
			return false;
		}
		qb_put(q, tag == DW_TAG_pointer_type		? "*"
			  : tag == DW_TAG_reference_type	? "&"
			  : tag == DW_TAG_rvalue_reference_type ? "&&"
			  : tag == DW_TAG_const_type		? " const"
								: " volatile");
		return true;
	}
	case DW_TAG_structure_type:
	case DW_TAG_class_type:
	case DW_TAG_union_type:
	case DW_TAG_enumeration_type:
		if (!die_plain_name(type))
			return false;
		put_qualified(e, type, q, QUAL_MAX_DEPTH - 1);
		return true;
	default:
		return false;
	}
}

/* A lambda's operator(): "(PARAMS)" from its explicit parameters. */
static bool put_params(struct sym_elf *e, Dwarf_Die *fn, struct qbuf *q)
{
	Dwarf_Attribute attr;
	Dwarf_Die child, type;
	bool first = true;

	qb_put(q, "(");
	if (dwarf_child(fn, &child) == 0) {
		do {
			if (dwarf_tag(&child) != DW_TAG_formal_parameter)
				continue;
			if (dwarf_hasattr(&child, DW_AT_artificial))
				continue;
			if (!dwarf_formref_die(dwarf_attr(&child, DW_AT_type, &attr), &type))
				return false;
			if (!first)
				qb_put(q, ", ");
			first = false;
			if (!put_type(e, &type, q, 0))
				return false;
		} while (dwarf_siblingof(&child, &child) == 0);
	}
	qb_put(q, ")");
	return !q->overflow;
}

/* The operator() of a closure type (an unnamed class whose ctor GCC names "<lambda>"). */
static bool closure_operator(Dwarf_Die *cls, Dwarf_Die *ret)
{
	Dwarf_Die child;
	bool lambda = false, found = false;
	unsigned n = 0;

	if (dwarf_child(cls, &child) != 0)
		return false;
	do {
		if (++n > 256)
			break;
		if (dwarf_tag(&child) != DW_TAG_subprogram)
			continue;
		const char *nm = die_plain_name(&child);
		if (!nm)
			continue;
		if (!strncmp(nm, "<lambda", 7))
			lambda = true;
		else if (!strcmp(nm, "operator()") && !found) {
			*ret = child;
			found = true;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return lambda && found;
}

/* "{lambda(PARAMS)#N}" for closure type `cls` whose parent is `parent`. */
static bool put_lambda(struct sym_elf *e, Dwarf_Die *cls, Dwarf_Die *parent, struct qbuf *q)
{
	struct qbuf sig = { .nest = q->nest }, other = { .nest = q->nest };
	Dwarf_Die op, child;
	unsigned n = 1, seen = 0;
	char num[32];

	if (!closure_operator(cls, &op) || !put_params(e, &op, &sig))
		return false;
	if (dwarf_child(parent, &child) == 0) {
		do {
			if (++seen > 4096 || dwarf_dieoffset(&child) == dwarf_dieoffset(cls))
				break;
			int tag = dwarf_tag(&child);
			if ((tag != DW_TAG_structure_type && tag != DW_TAG_class_type) ||
			    die_plain_name(&child) || !closure_operator(&child, &op))
				continue;
			other.len = 0;
			other.overflow = false;
			other.s[0] = '\0';
			if (put_params(e, &op, &other) && !strcmp(other.s, sig.s))
				n++;
		} while (dwarf_siblingof(&child, &child) == 0);
	}
	snprintf(num, sizeof(num), "#%u}", n);
	qb_put(q, "{lambda");
	qb_put(q, sig.s);
	qb_put(q, num);
	return true;
}

/*
 * The scopes enclosing `decl` (a declaration DIE), outermost first, each followed by "::".
 * A function scope is written whole (its demangled linkage name with parameters) and ends
 * the walk outwards.
 */
static void put_scopes(struct sym_elf *e, Dwarf_Die *decl, struct qbuf *q, int depth)
{
	Dwarf_Die *scopes = NULL;
	int n = dwarf_getscopes_die(decl, &scopes);
	int outer = n - 1;

	if (n <= 1) {
		free(scopes);
		return;
	}
	/* scopes[0] is decl, then its parents up to the CU; find where to start. */
	for (int i = 1; i < n; i++) {
		int tag = dwarf_tag(&scopes[i]);
		Dwarf_Attribute attr;
		if (tag == DW_TAG_subprogram ||
		    ((tag == DW_TAG_structure_type || tag == DW_TAG_class_type ||
		      tag == DW_TAG_union_type) &&
		     dwarf_hasattr(&scopes[i], DW_AT_specification)) ||
		    (tag == DW_TAG_subprogram && dwarf_attr(&scopes[i], DW_AT_abstract_origin, &attr))) {
			outer = i;
			break;
		}
	}
	for (int i = outer; i >= 1; i--) {
		Dwarf_Die *s = &scopes[i];
		const char *nm = die_plain_name(s);
		switch (dwarf_tag(s)) {
		case DW_TAG_namespace:
			qb_put(q, nm ? nm : "(anonymous namespace)");
			break;
		case DW_TAG_structure_type:
		case DW_TAG_class_type:
		case DW_TAG_union_type:
			if (dwarf_hasattr(s, DW_AT_specification) && depth < QUAL_MAX_DEPTH) {
				put_qualified(e, s, q, depth + 1);
			} else if (nm) {
				qb_put(q, nm);
			} else if (i + 1 >= n || !put_lambda(e, s, &scopes[i + 1], q)) {
				qb_put(q, "{unnamed type#1}");
			}
			break;
		case DW_TAG_subprogram: {
			const char *link = die_linkage_name(s);
			if (link && demangle_into(link, SYM_DEMANGLE_FULL, &e->dm) >= 0)
				qb_put(q, e->dm.buf);
			else if (depth < QUAL_MAX_DEPTH)
				put_qualified(e, s, q, depth + 1);
			else
				qb_put(q, nm ? nm : "??");
			break;
		}
		default:
			continue; /* CU, lexical blocks: not part of a name */
		}
		qb_put(q, "::");
	}
	free(scopes);
}

/* DW_AT_name of `die` qualified by its scopes, into q. */
static void put_qualified(struct sym_elf *e, Dwarf_Die *die, struct qbuf *q, int depth)
{
	Dwarf_Die decl;
	const char *nm;

	/* Hostile DWARF can make a name part of itself (a lambda taking a type declared in it):
	 * too deep a nesting makes the whole name fail (overflow), and the plain name is used. */
	if (q->nest >= QUAL_MAX_NEST) {
		q->overflow = true;
		return;
	}
	q->nest++;
	die_declaration(die, &decl);
	nm = die_plain_name(&decl);
	put_scopes(e, &decl, q, depth);
	if (nm) {
		qb_put(q, nm);
	} else if (dwarf_tag(&decl) == DW_TAG_namespace) {
		qb_put(q, "(anonymous namespace)");
	} else {
		qb_put(q, "??");
	}
	q->nest--;
}

/*
 * The name of a function DIE without a linkage name: its qualified DW_AT_name, simplified
 * as the mode says, pooled once per declaration DIE. NULL: the DIE has no name.
 */
static const char *qualified_name(struct sym_elf *e, Dwarf_Die *die)
{
	const char *plain = die_plain_name(die);
	Dwarf_Die decl;
	char key[40];

	if (!plain)
		return NULL;
	if (!lang_has_scopes(die))
		return plain;
	die_declaration(die, &decl);
	snprintf(key, sizeof(key), "\001%p", (void *)decl.addr);
	const char *v = str_pool_map_get(&e->pool, key);
	if (v)
		return v;

	struct qbuf *q = malloc(sizeof(*q));
	if (!q)
		return plain;
	q->len = 0;
	q->overflow = false;
	q->nest = 0;
	q->s[0] = '\0';
	put_qualified(e, die, q, 0);
	if (q->overflow) {
		free(q);
		return plain;
	}
	if (e->demangle == SYM_DEMANGLE_SIMPLE)
		q->len = demangle_strip_templates(q->s, q->len);
	v = str_pool_strndup(&e->pool, q->s, q->len);
	const char *k = v ? str_pool_strndup(&e->pool, key, strlen(key)) : NULL;
	free(q);
	if (!v || !k)
		return plain;
	(void)str_pool_map_put(&e->pool, k, v);
	return v;
}

static uint32_t clamp_u32(Dwarf_Word v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Where the function is declared: on the DIE, its abstract origin or its specification. */
static uint32_t decl_line(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	Dwarf_Word val;

	if (dwarf_formudata(dwarf_attr_integrate(die, DW_AT_decl_line, &attr), &val) == 0)
		return clamp_u32(val);
	return 0;
}

/* The place in the caller where inlined instance `inl` was called from. */
static void call_site(Dwarf_Die *inl, struct fn_info *f)
{
	Dwarf_Attribute attr;
	Dwarf_Word val;
	Dwarf_Die cu;
	Dwarf_Files *files;

	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &val) == 0 &&
	    dwarf_diecu(inl, &cu, NULL, NULL) && dwarf_getsrcfiles(&cu, &files, NULL) == 0)
		f->call_file = dwarf_filesrc(files, val, NULL, NULL); /* NULL if out of range */
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &val) == 0)
		f->call_line = clamp_u32(val);
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_column, &attr), &val) == 0)
		f->call_column = clamp_u32(val);
}

static void fn_info_read(struct sym_elf *e, Dwarf_Die *d, struct fn_info *f)
{
	Dwarf_Addr pc;

	*f = (struct fn_info){ .raw = die_linkage_name(d), .decl_line = decl_line(d) };
	if (f->raw) {
		f->name = display_name(e, f->raw);
	} else {
		/* No mangled name: system_name is the DWARF name as it is. That it differs from
		 * the qualified name also keeps pprof from "simplifying" ours (it rewrites a name
		 * equal to its system_name that looks like C++). */
		f->raw = die_plain_name(d);
		f->name = qualified_name(e, d);
	}
	if (dwarf_entrypc(d, &pc) == 0 || dwarf_lowpc(d, &pc) == 0) {
		f->pc = pc;
		f->has_pc = true;
	}
	call_site(d, f);
}

/*
 * What the frames of function DIE `d` need from it: kept with range entry `ri` (NO_REF: read
 * into `scratch`). The pointer is valid until the next call.
 */
static const struct fn_info *fn_info_of(struct sym_elf *e, Dwarf_Die *d, uint32_t ri,
					struct fn_info *scratch)
{
	if (ri == NO_REF) {
		fn_info_read(e, d, scratch);
		return scratch;
	}
	if (e->ranges[ri].fn != NO_REF)
		return &e->fns[e->ranges[ri].fn];
	if (GROW_ARRAY(e->fns, e->cap_fns, e->n_fns + 1, FN_INFO_MAX) < 0) {
		fn_info_read(e, d, scratch);
		return scratch;
	}
	struct fn_info *f = &e->fns[e->n_fns];
	fn_info_read(e, d, f);
	e->ranges[ri].fn = (uint32_t)e->n_fns++;
	return f;
}

static Dwarf_Addr row_addr(Dwarf_Lines *lines, size_t i)
{
	Dwarf_Addr a = 0;
	(void)dwarf_lineaddr(dwarf_onesrcline(lines, i), &a);
	return a;
}

/* The last of rows [l, u] at or below pc, else l: dwarf_getsrc_die()'s search, on a part. */
static size_t rows_search(Dwarf_Lines *lines, size_t l, size_t u, Dwarf_Addr pc)
{
	while (l < u) {
		size_t i = u - (u - l) / 2;
		if (pc < row_addr(lines, i))
			u = i - 1;
		else
			l = i;
	}
	return l;
}

/*
 * The row dwarf_getsrc_die(cudie, pc) returns. With `r`, the index range entry holding pc,
 * only the rows that can hold an address of r are searched: the rows are sorted by address,
 * so the last one at or below pc lies between the last one at or below r->lo and the last one
 * below r->hi, which are found once per entry (on its second line lookup).
 */
static Dwarf_Line *row_at(Dwarf_Die *cudie, Dwarf_Addr pc, struct scope_range *r)
{
	Dwarf_Lines *lines;
	size_t n;

	if (r && r->line_first == NO_REF) {
		r->line_first = LINES_SEEN;
		r = NULL;
	}
	if (!r || dwarf_getsrclines(cudie, &lines, &n) != 0 || n == 0 || n >= LINES_SEEN)
		return dwarf_getsrc_die(cudie, pc);
	if (r->line_first == LINES_SEEN || r->line_last >= n) {
		r->line_first = (uint32_t)rows_search(lines, 0, n - 1, r->lo);
		r->line_last = (uint32_t)rows_search(lines, 0, n - 1, r->hi - 1);
	}
	size_t i = rows_search(lines, r->line_first, r->line_last, pc);
	Dwarf_Line *l = dwarf_onesrcline(lines, i);
	bool end = true;
	Dwarf_Addr a;
	/* As dwarf_getsrc_die(): not past the end of a sequence, nor before the first row. */
	if (!l || dwarf_lineendsequence(l, &end) != 0 || end || dwarf_lineaddr(l, &a) != 0 ||
	    a > pc)
		return NULL;
	return l;
}

/* Line-table row for the innermost frame, from the CU already found (pc CU-relative): what
 * line_at() gives, without looking up the CU again. */
static void line_in_cu(Dwarf_Die *cudie, Dwarf_Addr pc, struct scope_range *r,
		       struct sym_frame *f)
{
	Dwarf_Line *l = row_at(cudie, pc, r);
	int line = 0, col = 0;
	const char *file = l ? dwarf_linesrc(l, NULL, NULL) : NULL;

	if (!file)
		return;
	(void)dwarf_lineno(l, &line);
	(void)dwarf_linecol(l, &col);
	f->file = file;
	f->line = line > 0 ? (uint32_t)line : 0;
	f->column = col > 0 ? (uint32_t)col : 0;
}

/* Line-table row for the innermost frame. */
static void line_at(struct sym_elf *e, Dwarf_Addr addr, struct sym_frame *f)
{
	Dwfl_Line *l = dwfl_module_getsrc(e->mod, addr);
	if (!l)
		return;
	Dwarf_Addr la;
	int line = 0, col = 0;
	const char *file = dwfl_lineinfo(l, &la, &line, &col, NULL, NULL);
	if (!file)
		return;
	f->file = file;
	f->line = line > 0 ? (uint32_t)line : 0;
	f->column = col > 0 ? (uint32_t)col : 0;
}

struct elf_sym {
	const char *name;
	uint64_t start; /* ELF vaddr */
	bool from_symtab;
};

/* Symbols from another Elf (debug file, MiniDebugInfo), or from a main file that has .symtab,
 * came from a full symbol table; else from .dynsym. */
static bool from_symtab(struct sym_elf *e, Elf *sym_elf)
{
	return sym_elf != e->elf || e->main_has_symtab;
}

/* libdwfl's own search: a scan of the whole symbol table per call. */
static bool symtab_find_slow(struct sym_elf *e, Dwarf_Addr addr, struct elf_sym *ret)
{
	GElf_Off off;
	GElf_Sym sym;
	GElf_Word shndx;
	Elf *sym_elf = NULL;
	Dwarf_Addr sym_bias;

	const char *name =
		dwfl_module_addrinfo(e->mod, addr, &off, &sym, &shndx, &sym_elf, &sym_bias);
	if (!name || !name[0])
		return false;
	*ret = (struct elf_sym){
		.name = name,
		.start = addr - off - e->bias,
		.from_symtab = from_symtab(e, sym_elf),
	};
	return true;
}

static void build_funcs(struct sym_elf *e)
{
	if (!e->funcs && e->funcs_err == 0) {
		int r = func_table_build(e->mod, SYM_MAX_FUNC_SYMBOLS, &e->funcs);
		if (r < 0) {
			/* Over the cap (or out of memory): slow, but still right. */
			log_debug("symbolize: %s: no sorted symbol table: %s", e->path,
				  strerror(-r));
			e->funcs_err = r;
		}
	}
}

static bool symtab_find(struct sym_elf *e, Dwarf_Addr addr, struct elf_sym *ret)
{
	build_funcs(e);
	if (!e->funcs)
		return symtab_find_slow(e, addr, ret);

	int ndx;
	uint64_t start;
	GElf_Sym sym;
	GElf_Addr value;
	Elf *sym_elf = NULL;
	if (!func_table_find(e->funcs, addr, &ndx, &start))
		return false;
	const char *name = dwfl_module_getsym_info(e->mod, ndx, &sym, &value, NULL, &sym_elf, NULL);
	if (!name || !name[0])
		return false;
	*ret = (struct elf_sym){
		.name = name,
		.start = start - e->bias,
		.from_symtab = from_symtab(e, sym_elf),
	};
	return true;
}

static bool is_function_tag(int tag)
{
	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
	       tag == DW_TAG_entry_point;
}

/* DIEs that can carry code addresses and nest further scopes. */
static bool is_scope_tag(int tag)
{
	switch (tag) {
	case DW_TAG_subprogram:
	case DW_TAG_inlined_subroutine:
	case DW_TAG_entry_point:
	case DW_TAG_lexical_block:
	case DW_TAG_try_block:
	case DW_TAG_catch_block:
	case DW_TAG_with_stmt:
	case DW_TAG_module:
		return true;
	default:
		return false;
	}
}

static int find_scopes(struct scope_walk *w, Dwarf_Die *parent, uint32_t ref);

/*
 * pc is in scope `d`: add it to the chain and look further down. `ri`: the range entry it was
 * found through (which holds the index of d's children), NO_REF when found by a walk. 1, or
 * -E2BIG.
 */
static int enter_scope(struct scope_walk *w, Dwarf_Die *d, int tag, uint32_t ri)
{
	if (w->n >= SCOPE_MAX_DEPTH)
		return -E2BIG;
	w->chain[w->n] = *d;
	w->refs[w->n] = ri;
	w->tags[w->n++] = tag;
	/* Its callees do not change the containing function nor the line in it. */
	if (w->outer_only && (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_entry_point))
		return 1;
	int r = find_scopes(w, d, ri);
	return r < 0 ? r : 1;
}

/* The unit a DW_TAG_imported_unit names, within the walk's cap on imports (which also ends
 * reference cycles). */
static bool imported_unit(Dwarf_Die *imp, unsigned *imports, Dwarf_Die *ret)
{
	Dwarf_Attribute attr;

	if (*imports >= SCOPE_MAX_IMPORTS ||
	    !dwarf_formref_die(dwarf_attr(imp, DW_AT_import, &attr), ret))
		return false;
	(*imports)++;
	return true;
}

/* 1: pc is inside a child of parent (chain extended), 0: it is not, -E2BIG: over a limit. */
static int walk_scopes(struct scope_walk *w, Dwarf_Die *parent)
{
	Dwarf_Die child;
	if (dwarf_child(parent, &child) != 0)
		return 0;
	do {
		if (++w->visited > SCOPE_MAX_VISIT)
			return -E2BIG;
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_imported_unit) {
			/* The imported unit's children count as children of this scope. */
			Dwarf_Die unit;
			if (imported_unit(&child, &w->imports, &unit)) {
				int r = walk_scopes(w, &unit);
				if (r != 0)
					return r;
			}
			continue;
		}
		/* Sibling scopes do not overlap: the first one with pc is the way down. */
		if (is_scope_tag(tag) && dwarf_haspc(&child, w->pc) > 0)
			return enter_scope(w, &child, tag, NO_REF);
	} while (dwarf_siblingof(&child, &child) == 0);
	return 0;
}

/* ---- scope index -------------------------------------------------------------------------- */

static int push_range(struct sym_elf *e, Dwarf_Addr lo, Dwarf_Addr hi, Dwarf_Die *die, int tag)
{
	if (e->n_ranges == e->cap_ranges) {
		/* Two arrays, one capacity: range_lo is grown to what ranges got. */
		size_t cap = e->cap_ranges, cap_lo = e->cap_ranges;
		int r = GROW_ARRAY(e->ranges, cap, e->n_ranges + 1, SYM_MAX_SCOPE_RANGES);

		if (r < 0)
			return r;
		r = GROW_ARRAY(e->range_lo, cap_lo, cap, SYM_MAX_SCOPE_RANGES);
		if (r < 0)
			return r;
		e->cap_ranges = cap;
	}
	e->ranges[e->n_ranges++] = (struct scope_range){
		.lo = lo,
		.hi = hi,
		.die = *die,
		.tag = tag,
		.fn = NO_REF,
		.line_first = NO_REF,
	};
	return 0;
}

/* Every range of every scope walk_scopes() would try among parent's children. */
static int index_children(struct sym_elf *e, Dwarf_Die *parent, unsigned *imports,
			  size_t *visited)
{
	Dwarf_Die child;
	if (dwarf_child(parent, &child) != 0)
		return 0;
	do {
		if (++*visited > SCOPE_MAX_VISIT)
			return -E2BIG;
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_imported_unit) {
			Dwarf_Die unit;
			if (imported_unit(&child, imports, &unit)) {
				int r = index_children(e, &unit, imports, visited);
				if (r < 0)
					return r;
			}
			continue;
		}
		if (!is_scope_tag(tag))
			continue;
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;
		/* A DIE whose ranges do not read has no pc for dwarf_haspc() either. */
		while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
			if (lo >= hi)
				continue;
			int r = push_range(e, lo, hi, &child, tag);
			if (r < 0)
				return r;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct scope_range *x = a, *y = b;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

/* The children index `ref` names. Valid until the ranges grow or the CU table is rehashed. */
static struct scope_kids *kids_at(struct sym_elf *e, uint32_t ref)
{
	return ref & CU_REF ? &e->cus[ref & ~CU_REF].kids : &e->ranges[ref].kids;
}

/* Index parent's children into kids_at(ref), or mark it to be walked. */
static void index_scope(struct sym_elf *e, Dwarf_Die *parent, uint32_t ref)
{
	unsigned imports = 0;
	size_t visited = 0, first = e->n_ranges;

	kids_at(e, ref)->state = KIDS_WALK;
	if (index_children(e, parent, &imports, &visited) < 0 || e->n_ranges - first > UINT32_MAX) {
		e->n_ranges = first;
		return;
	}
	size_t n = e->n_ranges - first;
	struct scope_range *r = n ? e->ranges + first : NULL;
	if (n > 1)
		qsort(r, n, sizeof(*r), range_cmp);
	/* Sorted by lo, any overlap shows between neighbours. */
	for (size_t i = 1; i < n; i++)
		if (r[i].lo < r[i - 1].hi) {
			/* Overlapping siblings: which one the walk takes depends on DIE order. */
			e->n_ranges = first;
			return;
		}
	for (size_t i = 0; i < n; i++)
		e->range_lo[first + i] = r[i].lo;
	*kids_at(e, ref) = (struct scope_kids){
		.first = (uint32_t)first,
		.n = (uint32_t)n,
		.state = KIDS_INDEXED,
	};
}

static bool cu_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct sym_elf *e = ctx;

	return e->cus[id - 1].key == key;
}

/* The reference of CU DIE `cudie`'s index, added if new; NO_REF past SYM_MAX_INDEXED_CUS or
 * without memory. */
static uint32_t cu_ref(struct sym_elf *e, Dwarf_Die *cudie)
{
	const void *key = cudie->addr;
	uint64_t h = hash_u64((uint64_t)(uintptr_t)key); /* libdw's addresses, not a file's */
	struct hash_slot *s;

	if (e->cu_index.cap) {
		s = hash_index_find(&e->cu_index, h, cu_eq, e, key);
		if (s->id)
			return CU_REF | (s->id - 1);
	}
	if (e->n_cus >= SYM_MAX_INDEXED_CUS)
		return NO_REF;
	if (hash_index_reserve(&e->cu_index, SYM_MAX_INDEXED_CUS) < 0 ||
	    GROW_ARRAY(e->cus, e->cap_cus, e->n_cus + 1, SYM_MAX_INDEXED_CUS) < 0)
		return NO_REF;
	s = hash_index_find(&e->cu_index, h, cu_eq, e, key);
	e->cus[e->n_cus] = (struct cu_node){ .key = key };
	hash_index_insert(&e->cu_index, s, (uint32_t)e->n_cus + 1, h);
	return CU_REF | (uint32_t)e->n_cus++;
}

/* Near a cap: start over. Only between lookups, as a lookup holds references into both. */
static void scope_index_trim(struct sym_elf *e)
{
	if (e->n_cus < SYM_MAX_INDEXED_CUS / 4 * 3 && e->n_ranges < SYM_MAX_SCOPE_RANGES / 4 * 3 &&
	    e->n_fns < FN_INFO_MAX / 4 * 3)
		return;
	hash_index_clear(&e->cu_index);
	e->n_cus = 0;
	e->n_ranges = 0;
	e->n_fns = 0;
}

/* walk_scopes(w, parent), through the index of parent's children kids_at(ref) if it has one. */
static int find_scopes(struct scope_walk *w, Dwarf_Die *parent, uint32_t ref)
{
	struct sym_elf *e = w->e;

	if (ref == NO_REF)
		return walk_scopes(w, parent);
	if (kids_at(e, ref)->state == KIDS_NEW)
		index_scope(e, parent, ref);
	const struct scope_kids k = *kids_at(e, ref);
	if (k.state != KIDS_INDEXED)
		return walk_scopes(w, parent);
	if (k.n == 0)
		return 0;

	const Dwarf_Addr *key = e->range_lo + k.first;
	size_t lo = 0, hi = k.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key[mid] <= w->pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	uint32_t ri = (uint32_t)(k.first + lo - 1);
	const struct scope_range *r = &e->ranges[ri];
	if (w->pc >= r->hi)
		return 0;
	/* A copy: going down may grow (move) the ranges. */
	Dwarf_Die d = r->die;
	return enter_scope(w, &d, r->tag, ri);
}

/*
 * Fill `ret` from DWARF scopes. false: no DWARF function covers addr. Without `inlines` only
 * the containing function's frame is made, and the walk stops at the first inlined instance
 * in it: that instance's call site is the frame's line, whatever is inlined further down.
 * (A GNU C nested function whose parent was inlined is the one case that walk would miss;
 * GCC does not emit its DIE inside the inlined instance.)
 */
static bool lookup_dwarf(struct sym_elf *e, Dwarf_Addr addr, bool inlines,
			 struct sym_result *ret)
{
	Dwarf_Addr cu_bias;
	Dwarf_Die *cudie = dwfl_module_addrdie(e->mod, addr, &cu_bias);
	if (!cudie)
		return false;

	scope_index_trim(e);
	struct scope_walk *w = e->walk;
	w->e = e;
	w->pc = addr - cu_bias;
	w->outer_only = !inlines;
	w->n = 0;
	w->imports = 0;
	w->visited = 0;
	if (find_scopes(w, cudie, cu_ref(e, cudie)) <= 0)
		return false;

	/* Function scopes, innermost first, up to and including the containing subprogram
	 * (a GNU C nested function's parent is not on the stack with it). */
	int fn[SCOPE_MAX_DEPTH];
	int nf = 0;
	bool found_subprogram = false;
	for (int i = w->n - 1; i >= 0; i--) {
		int tag = w->tags[i];
		if (!is_function_tag(tag))
			continue;
		fn[nf++] = i;
		if (tag == DW_TAG_subprogram) {
			found_subprogram = true;
			break;
		}
	}
	if (!found_subprogram)
		return false;

	/* Past the limit keep the outermost frames: they continue the stack, and each frame's
	 * line still comes from its own (dropped) callee's call site. */
	int first = !inlines ? nf - 1 : nf > SYM_MAX_INLINE ? nf - SYM_MAX_INLINE : 0;
	for (int k = first; k < nf; k++) {
		struct fn_info scratch, scratch_in;
		const struct fn_info *fi =
			fn_info_of(e, &w->chain[fn[k]], w->refs[fn[k]], &scratch);
		struct sym_frame *f = &ret->frames[k - first];
		const char *raw = fi->raw, *name = fi->name;

		*f = (struct sym_frame){ .decl_line = fi->decl_line };
		if (fi->has_pc)
			f->sym_start = fi->pc + cu_bias - e->bias;
		/* The symbol table only when DWARF lacks the name or the start (a function in
		 * DW_AT_ranges, e.g. split into hot and cold parts: the part's symbol). */
		if (k == nf - 1 && (!raw || !fi->has_pc)) {
			struct elf_sym es;
			if (symtab_find(e, addr, &es)) {
				if (!raw) {
					raw = es.name;
					name = display_name(e, raw);
				}
				f->sym_start = es.start;
			}
		}
		if (!raw)
			raw = name = "??";
		f->system_name = raw;
		f->name = name;

		if (k == 0) {
			uint32_t ri = w->refs[w->n - 1];
			line_in_cu(cudie, w->pc, ri == NO_REF ? NULL : &e->ranges[ri], f);
		} else {
			/* fi may be overwritten by this lookup: nothing of it is used below. */
			int in_k = fn[k - 1];
			const struct fn_info *in =
				fn_info_of(e, &w->chain[in_k], w->refs[in_k], &scratch_in);
			f->file = in->call_file;
			f->line = in->call_line;
			f->column = in->call_column;
		}
	}
	ret->n_frames = (size_t)(nf - first);
	ret->source = SYM_SOURCE_DWARF;
	return true;
}

int sym_elf_lookup(struct sym_elf *e, uint64_t vaddr, bool inlines, struct sym_result *ret)
{
	if (!e || !ret)
		return -EINVAL;

	ret->source = SYM_SOURCE_NONE;
	ret->n_frames = 0;
	Dwarf_Addr addr = vaddr + e->bias;

	if (lookup_dwarf(e, addr, inlines, ret))
		return 0;

	struct elf_sym es;
	if (!symtab_find(e, addr, &es))
		return 0;

	ret->frames[0] = (struct sym_frame){
		.name = display_name(e, es.name),
		.system_name = es.name,
		.sym_start = es.start,
	};
	/* Code without DWARF functions (assembly built with -g) may still have line rows. */
	line_at(e, addr, &ret->frames[0]);
	ret->n_frames = 1;
	ret->source = es.from_symtab ? SYM_SOURCE_SYMTAB : SYM_SOURCE_DYNSYM;
	return 0;
}

bool sym_elf_has_symbols(struct sym_elf *e)
{
	/* Entry 0 is the null symbol. */
	return e && dwfl_module_getsymtab(e->mod) > 1;
}

/* A .debug_line section with contents (compressed or not: its size is not looked into). */
static bool elf_has_line_section(Elf *elf)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
		return false;
	/* Bounded by the section count libelf validated against the file size. */
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		const char *name = sh ? elf_strptr(elf, shstrndx, sh->sh_name) : NULL;

		if (name && (!strcmp(name, ".debug_line") || !strcmp(name, ".zdebug_line")) &&
		    sh->sh_type != SHT_NOBITS && sh->sh_size > 0)
			return true;
	}
	return false;
}

/* The old way: let libdw load the DWARF (and decompress all of it) and probe CUs. */
static bool dwarf_has_lines(struct sym_elf *e)
{
	Dwarf_Addr b;
	if (!dwfl_module_getdwarf(e->mod, &b))
		return false;
	/* The first CUs can be line-less (crt files, assembly); probe a few. */
	Dwarf_Die *cu = NULL;
	for (int n = 0; n < HAS_LINES_MAX_CUS && (cu = dwfl_module_nextcu(e->mod, cu, &b)); n++) {
		Dwarf_Lines *lines;
		size_t nl;
		if (dwarf_getsrclines(cu, &lines, &nl) == 0 && nl > 0)
			return true;
	}
	return false;
}

bool sym_elf_has_lines(struct sym_elf *e)
{
	if (!e)
		return false;
	if (e->has_lines >= 0)
		return e->has_lines;

	/*
	 * From section headers: libdw would decompress every DWARF section of the file (60 ms
	 * for glibc's debug file) just to answer this. A file with a .debug_line has lines.
	 */
	bool has = elf_has_line_section(e->elf);
	if (!has) {
		locate_debug_file(e);
		if (e->debug_fd >= 0) {
			Elf *d = elf_begin(e->debug_fd, ELF_C_READ_MMAP, NULL);
			has = d && elf_kind(d) == ELF_K_ELF && elf_has_line_section(d);
			if (d)
				elf_end(d);
		} else if (e->debuginfod) {
			/* Only libdwfl can ask debuginfod for the file. */
			has = dwarf_has_lines(e);
		}
	}
	e->has_lines = has;
	return has;
}

void sym_elf_prepare(struct sym_elf *e)
{
	Dwarf_Addr bias;

	if (!e)
		return;
	(void)sym_elf_has_symbols(e); /* the symbol table, and so the debug file search */
	build_funcs(e);
	(void)sym_elf_has_lines(e);
	/* DWARF (decompressed here) and libdwfl's address → CU table, which the first lookup of
	 * an address in the module builds. */
	if (dwfl_module_getdwarf(e->mod, &bias) && e->n_loads > 0)
		(void)dwfl_module_addrdie(e->mod, e->loads[0].vaddr + e->bias, &bias);
}

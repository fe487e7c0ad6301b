/* SPDX-License-Identifier: MIT */
/*
 * profd symbolizer: (binary, address) → chain of frames (inlined callees first, then the
 * containing function), each with a name and, when known, file and line.
 *
 * Pieces:
 *   struct sym_elf      — one ELF (+ its separate debug info), opened from an fd the caller
 *                         passes; sym_elf_lookup(): one address → struct sym_result
 *   struct sym_cache    — one sym_elf per file opened (LRU-bounded), shared by the processes
 *                         that map that very file, and a per-(file, file offset) result cache
 *                         that outlives profiles
 *   struct kallsyms     — /proc/kallsyms (kernel + modules)
 *   struct perfmap      — a JIT's /tmp/perf-PID.map
 *   struct sym_warmer   — a thread preparing binaries in a sym_cache ahead of lookups
 *
 * Addresses: sym_elf_lookup() takes an ELF virtual address (what `nm` and `eu-addr2line -e`
 * use). Convert a process address first: file offset = addr - mapping start + mapping pgoff,
 * then sym_elf_vaddr_from_offset() applies the PT_LOAD headers. sym_cache_lookup() takes the
 * file offset and does that itself.
 *
 * Strings in sym_elf results point into storage owned by the sym_elf / kallsyms / perfmap and
 * stay valid until it is freed; sym_cache results until the next call on that cache (see
 * there). Failures to find a name are data (SYM_SOURCE_NONE), not errors. Functions return 0
 * or -errno; the library never logs above debug and keeps no global state.
 *
 * Limits: SYM_MAX_INLINE frames per address; files larger than SYM_MAX_FILE_SIZE are refused
 * with -EFBIG. Compressed (zlib) DWARF is inflated by the library itself into a memfd, at most
 * SYM_MAX_INFLATED_BYTES per file (beyond that, or for anything it does not understand, libdw
 * inflates it as it always does). Each sym_elf keeps at most SYM_MAX_STRING_BYTES of its own strings (demangled
 * names); past that, names are returned undemangled. Demangling is tried only for names up to
 * SYM_DEMANGLE_MAX_INPUT bytes with results up to SYM_DEMANGLE_MAX_OUTPUT bytes.
 * Lookup indexes, built on first need and kept with the sym_elf: the symbol table is searched
 * through a sorted copy of its function symbols, at most SYM_MAX_FUNC_SYMBOLS entries of 24
 * bytes (96 MiB, and never more than the ELF symbol table it comes from: 24 bytes a symbol);
 * a binary with more falls back to libdwfl's linear search (dwfl_module_addrinfo(), whose
 * answers differ only in the corner cases listed in functab.c). DWARF scopes (CUs, functions,
 * blocks, inlined instances) looked into get a sorted index of the pc ranges of their child
 * scopes, with what frames need from each function, for at most SYM_MAX_INDEXED_CUS CUs and
 * SYM_MAX_SCOPE_RANGES ranges (29 MiB in all; near a cap the index starts over); a scope
 * without an index is walked DIE by DIE, with the same answers. kallsyms keeps at most KALLSYMS_MAX_ENTRIES text symbols (-E2BIG beyond) and rejects
 * lines longer than KALLSYMS_MAX_LINE (-EBADMSG). Perf maps and the cache: see their sections
 * below.
 *
 * Names (one rule for every frame, inlined or not, C++ and Rust alike): a function is named
 * from its linkage name, DW_AT_linkage_name (or DW_AT_MIPS_linkage_name) of its DIE or of the
 * DIEs its DW_AT_abstract_origin / DW_AT_specification lead to, or, without DWARF, the ELF
 * symbol; that mangled name is system_name and name is its demangling under the sym_elf's
 * enum sym_demangle_mode (libiberty, as c++filt; Rust hashes dropped; clone suffixes such as
 * ".constprop.0" dropped except in NONE). A function with no linkage name anywhere (GCC emits
 * none for lambdas' operator() and for template instances that were only ever inlined, nor
 * for C) is named DW_AT_name qualified by the DIEs enclosing its declaration (after
 * abstract origin and specification), outermost first, joined by "::": namespaces
 * ("(anonymous namespace)" when unnamed), classes, structures and unions by their DW_AT_name
 * (following their own DW_AT_specification), an enclosing function by its demangled linkage
 * name with parameters as c++filt prints local names, and a lambda's closure type as
 * "{lambda(PARAMS)#N}" (PARAMS from the operator's parameter types, N counting earlier
 * closures of the same signature in that scope, as the Itanium mangling does). Such a name's
 * system_name is the plain DW_AT_name (there is no mangled one; pprof leaves a name alone when
 * it differs from its system_name), and it is simplified like a demangled one;
 * it never carries the function's own parameter list, and template arguments in it are
 * spelled as DWARF spells them ("long int" where c++filt says "long"): only in the default
 * SIMPLE mode, where both lose their template arguments, are the two spellings equal. Names in
 * C compilation units are DW_AT_name as is.
 *
 * Threads: a sym_elf and a sym_cache are not thread-safe (libdw caches are filled lazily); use
 * each one from one thread at a time (a sym_warmer hands its cache over to its thread). A
 * loaded kallsyms or perfmap is read-only and may be shared.
 *
 * Input is hostile: every parser here bounds-checks what it reads. The files are mmapped by
 * libelf; a file truncated while open can still fault the reader (SIGBUS), as with any
 * mmap-based ELF reader.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/elf.h"

#define SYM_MAX_INLINE 32
#define SYM_MAX_FILE_SIZE (4ull << 30)
#define SYM_MAX_INFLATED_BYTES (1ull << 30) /* compressed DWARF inflated by profd per file */
#define SYM_MAX_STRING_BYTES (64u << 20)
#define SYM_DEMANGLE_MAX_INPUT 8192 /* libiberty builds its tree on the stack: ~600 KiB */
#define SYM_DEMANGLE_MAX_OUTPUT 65536
#define SYM_MAX_FUNC_SYMBOLS (1u << 22) /* sorted function symbols per sym_elf, 24 B each */
#define SYM_MAX_INDEXED_CUS (1u << 16)  /* DWARF CUs indexed per sym_elf */
#define SYM_MAX_SCOPE_RANGES (1u << 18) /* DWARF scope pc ranges indexed per sym_elf */

#define KALLSYMS_MAX_ENTRIES (4u << 20)
#define KALLSYMS_MAX_LINE 1024               /* KSYM_NAME_LEN (512) + module + address */
#define KALLSYMS_MAX_STRING_BYTES (256u << 20)
#define KALLSYMS_LAST_SYMBOL_SIZE 4096       /* span given to the highest symbol */
#define KALLSYMS_MAX_FILE_BYTES (256u << 20) /* kallsyms_load_for() */

enum sym_source {
	SYM_SOURCE_NONE = 0, /* nothing found: caller uses module+0xoffset */
	SYM_SOURCE_DYNSYM,
	SYM_SOURCE_SYMTAB,
	SYM_SOURCE_DWARF,
	SYM_SOURCE_KALLSYMS,
	SYM_SOURCE_PERFMAP,
};

struct sym_frame {
	const char *name;        /* demangled when possible; never NULL when source != NONE */
	const char *system_name; /* raw (mangled) symbol name, or same as name */
	const char *file;        /* source file or NULL */
	uint32_t line;           /* 0 when unknown */
	uint32_t column;         /* 0 when unknown */
	uint32_t decl_line;      /* line the function is declared at (DW_AT_decl_line), 0 if unknown */
	uint64_t sym_start;      /* start address of the symbol (ELF vaddr), 0 if unknown */
};

struct sym_result {
	enum sym_source source;
	size_t n_frames;                        /* 0 when nothing was found */
	struct sym_frame frames[SYM_MAX_INLINE]; /* frames[0] is the innermost (leaf) */
};

/*
 * How frame names are simplified; the modes of pprof's -symbolize=demangle=MODE (its
 * demangler's options in brackets), applied by libiberty's demangler:
 *   SIMPLE    (pprof's default [NoParams, NoTemplateParams]): no parameter list, no return
 *             type, no template arguments: "std::vector::_M_realloc_insert". Lambdas keep
 *             their enclosing function's parameters: "f(int)::{lambda(int)#1}::operator()".
 *   TEMPLATES ("templates" [NoParams]): no parameter list or return type, template
 *             arguments kept, as `c++filt -p`.
 *   FULL      ("full" [NoClones]): as `c++filt`, without clone suffixes.
 *   NONE      ("none"): the mangled linkage name as is.
 * SIMPLE is profd's default: it is the only mode in which a function reads the same whether
 * it was inlined (often named from DWARF without a linkage name, see "Names" above) or not,
 * and the one in which pprof merges a template's instances into one function.
 */
enum sym_demangle_mode {
	SYM_DEMANGLE_SIMPLE = 0,
	SYM_DEMANGLE_TEMPLATES,
	SYM_DEMANGLE_FULL,
	SYM_DEMANGLE_NONE,
};

/* "simple", "templates", "full", "none" <-> the mode. from_string: 0 or -EINVAL. */
int sym_demangle_mode_from_string(const char *s, enum sym_demangle_mode *ret);
const char *sym_demangle_mode_to_string(enum sym_demangle_mode mode);

struct sym_elf;

#define SYM_DEFAULT_DEBUG_DIR "/usr/lib/debug"
#define SYM_MAX_DEBUG_DIRS 16
/*
 * Caps on proving a debug file by its .gnu_debuglink CRC (binaries without a build-id), the one
 * proof that reads a candidate whole: a candidate larger than SYM_DEBUGLINK_CRC_MAX_BYTES, or
 * sparse (fewer than 1/SYM_DEBUGLINK_SPARSE_RATIO of its bytes allocated on disk), is refused
 * unread; and one binary's debug-file search stops hashing, refusing the candidate, once it has
 * run SYM_DEBUG_SEARCH_MAX_NS. So a debuglink a process aims at a huge or sparse file costs the
 * caller at most that long, not the time to read gigabytes of zeros. The binaries a sym_cache
 * opens share a budget besides: together they search for at most SYM_DEBUG_SEARCH_PROFILE_NS per
 * generation (one profile, sym_cache_next_generation()), so many such binaries cannot stall a
 * profile either (past it, candidates that need a CRC proof are refused; build-id lookups go on).
 */
#define SYM_DEBUGLINK_CRC_MAX_BYTES (256ull << 20)
#define SYM_DEBUGLINK_SPARSE_RATIO 8
#define SYM_DEBUG_SEARCH_MAX_NS (500ull * 1000 * 1000)
#define SYM_DEBUG_SEARCH_PROFILE_NS (2000ull * 1000 * 1000)

/*
 * struct sym_root: the root directory a binary's path is named in (a process's /proc/PID/root,
 * a --sysroot, or "/"), for the debug-file search next to the binary. It holds one O_PATH
 * directory fd, shared by reference: callers keep one sym_root per distinct root and hand the
 * same one with every binary from it, and each sym_elf opened with it takes a reference, so the
 * number of fds is that of distinct roots, not of binaries. Reference counting is atomic (a
 * sym_warmer's threads take references); the fd is not otherwise touched.
 *
 * sym_root_new() takes ownership of `dirfd` (a directory, O_PATH is enough) on success: 0,
 * -EINVAL, -ENOTDIR, -ENOMEM, fstat's -errno. sym_root_open() opens `dir` itself (O_PATH |
 * O_DIRECTORY). sym_root_fd(): the fd, -EBADF for NULL. sym_root_refs(): the current count,
 * for callers that drop roots nobody else references any more.
 */
struct sym_root;
int sym_root_new(int dirfd, struct sym_root **ret);
int sym_root_open(const char *dir, struct sym_root **ret);
struct sym_root *sym_root_ref(struct sym_root *r);
void sym_root_unref(struct sym_root *r);
int sym_root_fd(const struct sym_root *r);
unsigned sym_root_refs(const struct sym_root *r);

struct sym_elf_options {
	/*
	 * Roots searched for separate debug files, NULL-terminated (at most SYM_MAX_DEBUG_DIRS
	 * are used, absolute paths only). NULL: { SYM_DEFAULT_DEBUG_DIR }.
	 */
	const char *const *debug_dirs;
	/*
	 * Ask debuginfod servers (DEBUGINFOD_URLS, through libdwfl and the libdebuginfod it
	 * loads) when no local debug file was found. Off: no debuginfod code runs, whatever the
	 * environment says.
	 */
	bool debuginfod;
	/* Frame names, see "Names" above. 0 is SYM_DEMANGLE_SIMPLE. */
	enum sym_demangle_mode demangle;
	/*
	 * The root the binary's `path` is named in (the sym_elf takes a reference). NULL: not
	 * known, and then no file next to the binary is ever opened (see sym_elf_open_with()).
	 */
	struct sym_root *root;
	/*
	 * A search-time budget shared with other binaries (nanoseconds left, decremented
	 * atomically by each debug-file search; none left: no CRC proof is attempted). NULL: only
	 * SYM_DEBUG_SEARCH_MAX_NS per binary. A sym_cache passes its per-generation budget.
	 */
	int64_t *search_budget_ns;
};

/*
 * Open a binary for symbolization from `fd` (duplicated internally; the caller keeps its fd).
 * `path` is the name the binary had in the target (for messages and debug-file search).
 * `opts` may be NULL (defaults); it is copied.
 *
 * Only ET_EXEC and ET_DYN ELF files are accepted. Errors: -EFBIG (larger than
 * SYM_MAX_FILE_SIZE), -ENOEXEC (not ELF, other ELF type, or unreadable headers), -EISDIR /
 * -EINVAL (not a regular file), -ENOMEM, or the -errno of dup/fstat/pread.
 *
 * Separate debug info is searched lazily, on the first lookup that needs it, in this order:
 * <dir>/.build-id/xx/yyyy.debug for each debug dir (by GNU build-id); then, by the
 * .gnu_debuglink name (a file name; one with a '/' is ignored), next to `path` and in its
 * .debug/ (only with opts->root, see below), then under <dir>/<directory of path>.
 *
 * Where candidates are opened: every one through safe_open_in_root() (common/safeopen.h), O_PATH
 * first, so nothing but a regular file no larger than SYM_MAX_FILE_SIZE is ever opened for
 * reading (a FIFO, a device, a socket on a search path is refused unopened). The debug dirs
 * are host directories (root's own: /usr/lib/debug), resolved from "/". The directory of the
 * binary and its .debug/ are the target's: they are searched only inside opts->root (symlinks
 * resolve inside it, magic links refused) and with no symlink at all on the way
 * (SAFE_OPEN_NO_SYMLINKS: a debuglink named "shadow" next to a link to /etc/shadow opens
 * nothing), and never when the root is not known (opts NULL or opts->root NULL: e.g. binaries
 * named by a recording or a core file, whose paths were chosen by the process that was
 * recorded). Callers that open a file the user named (profd stack --exe) pass a root of "/".
 *
 * What is accepted: a candidate owned by the binary's owner or readable by everybody (S_IROTH),
 * so root never lends a process the contents of a file its owner could not read; and then only
 * if its build-id equals the binary's (binaries with a build-id) or its CRC-32 equals the
 * debuglink's (binaries without; bounded by the SYM_DEBUGLINK_* caps above); anything else is
 * rejected. Then, with opts->debuginfod, debuginfod is asked by build-id. MiniDebugInfo
 * (.gnu_debugdata) is used for symbols; dwz alternate files (.gnu_debugaltlink) are found by
 * libdw itself (next to the debug file and under /usr/lib/debug/.build-id).
 */
int sym_elf_open_with(int fd, const char *path, const struct sym_elf_options *opts,
		      struct sym_elf **ret);
/* sym_elf_open_with() with default options. */
int sym_elf_open(int fd, const char *path, struct sym_elf **ret);
void sym_elf_free(struct sym_elf *e);

/*
 * Map a file offset (addr - mapping start + mapping pgoff) to an ELF vaddr via the PT_LOAD
 * headers: the first PT_LOAD with p_offset <= off < p_offset + p_filesz gives
 * off - p_offset + p_vaddr. -ENOENT when no PT_LOAD holds the offset.
 */
int sym_elf_vaddr_from_offset(struct sym_elf *e, uint64_t file_offset, uint64_t *ret_vaddr);

/*
 * Look up one ELF virtual address. Returns 0 (result may have source NONE) or -EINVAL.
 * For a return address pass pc - 1, so a call at the end of an inlined block is attributed
 * to that block and not to the code after it.
 *
 * With DWARF (source DWARF): frames[0] is the innermost inlined function with file:line from
 * the line table; each outer frame has the call site (DW_AT_call_file/line/column) of the
 * frame inside it; the last frame is the containing function. Names are DW_AT_linkage_name
 * (demangled) or the qualified DW_AT_name, by the rule under "Names" above. More than
 * SYM_MAX_INLINE levels keep the outermost ones. With `inlines` false only the containing
 * function is returned, exactly as the last frame with `inlines` true: at the call site of the
 * outermost inlined call at vaddr (or the line-table line if nothing was inlined there). It is
 * the cheaper lookup: nothing below that outermost inlined call is read.
 * Without a DWARF function at vaddr: one frame from .symtab (SYMTAB: also the debug file's or
 * MiniDebugInfo's) or .dynsym (DYNSYM), with file:line if a line table covers vaddr. The symbol
 * is the one `eu-addr2line -f` names: among STT_FUNC, STT_GNU_IFUNC and STT_NOTYPE symbols, the
 * closest start whose [start, start + size) covers vaddr, a non-local one before a local one;
 * aliases by binding (global, unique, weak, local); a zero-size symbol covers up to the next
 * symbol or the end of its section, unless it lies inside a sized one. An address in a gap
 * between functions has no name. (Mapping symbols such as AArch64's $x name nothing.)
 * sym_start: DW_AT_entry_pc, else DW_AT_low_pc, of the function; for the containing function
 * without either (e.g. only DW_AT_ranges) or without a DWARF name, the covering symbol's start.
 * decl_line: DW_AT_decl_line of the function (through abstract origin / specification); 0
 * without DWARF.
 */
int sym_elf_lookup(struct sym_elf *e, uint64_t vaddr, bool inlines, struct sym_result *ret);

/*
 * Whether the binary had DWARF line info / symbols (for pprof mapping has_* flags), counting
 * separate debug files. has_lines looks for a non-empty .debug_line section header in the
 * binary or its separate debug file (searched on first call); it does not read the DWARF
 * itself (libdw would decompress all of it). With debuginfod on and no local debug file, it
 * loads the DWARF through libdwfl, which may ask the server.
 */
bool sym_elf_has_symbols(struct sym_elf *e);
bool sym_elf_has_lines(struct sym_elf *e);

struct kallsyms;
/*
 * Parse a kallsyms file (normally "/proc/kallsyms"): lines "addr type name [module]"; text
 * symbols (t, T, w, W) are kept, one per address (global before weak before local, then by
 * name). Lines not in that shape are ignored. Errors: -EACCES when all addresses are 0
 * (kptr_restrict), -ENODATA when no text symbol was found, -EBADMSG for a line longer than
 * KALLSYMS_MAX_LINE, -E2BIG past KALLSYMS_MAX_ENTRIES, -ENOMEM, or fopen's -errno.
 */
int kallsyms_load(const char *path, struct kallsyms **ret);
/*
 * kallsyms_load() for a known set of addresses (e.g. the kernel frames of a recording): the
 * file is read whole (at most KALLSYMS_MAX_FILE_BYTES, -EFBIG beyond) and only the symbols that
 * answer lookups of `addrs` are kept, each address's covering symbol and the one after it.
 * kallsyms_lookup() of any of `addrs` then answers exactly as after kallsyms_load(); other
 * addresses may not. With `find`, *ret_find_addr gets the address of the first kernel (not
 * module) text symbol of that name, 0 if there is none. Same errors as kallsyms_load(), plus
 * -EFBIG.
 */
int kallsyms_load_for(const char *path, const uint64_t *addrs, size_t n_addrs, const char *find,
		      uint64_t *ret_find_addr, struct kallsyms **ret);
void kallsyms_free(struct kallsyms *k);
/*
 * name is "func" or "func [module]", valid until kallsyms_free(). A symbol spans up to the next
 * symbol's start; the highest one KALLSYMS_LAST_SYMBOL_SIZE bytes. Returns -ENOENT when addr
 * is not covered. ret_name and ret_start may be NULL.
 */
int kallsyms_lookup(const struct kallsyms *k, uint64_t addr, const char **ret_name,
		    uint64_t *ret_start);

/*
 * Demangle an Itanium C++ (_Z...) or Rust (legacy _ZN...17h<hash>E, v0 _R...) name into buf,
 * the way `eu-addr2line -C` / __cxa_demangle prints it (parameters included, standard
 * substitutions short: "std::string"; Rust hashes dropped). Returns the length written
 * (excluding the NUL), -EINVAL when `name` is not a mangled name or does not demangle,
 * -E2BIG when it is longer than SYM_DEMANGLE_MAX_INPUT, -ENOBUFS when the result does not fit.
 */
int sym_demangle(const char *name, char *buf, size_t buf_size);
/*
 * The same under `mode` (see enum sym_demangle_mode), as frames are named: clone suffixes
 * dropped; SYM_DEMANGLE_NONE gives -EINVAL (the name stays as it is).
 */
int sym_demangle_as(const char *name, enum sym_demangle_mode mode, char *buf, size_t buf_size);

/* struct elf_ident, elf_identify_fd() and build_id_to_hex() are in common/elf.h. */

/* ---- JIT perf maps ---------------------------------------------------------------------- */

/*
 * A perf map (/tmp/perf-PID.map, written by JITs: V8 --perf-basic-prof, the JVM's
 * perf-map-agent, .NET, LuaJIT, ...): one "START SIZE name" per line, START and SIZE in hex
 * (an optional 0x is accepted), the name being the rest of the line. The file is appended to
 * as code is compiled, so a later line wins where ranges overlap (a code address reused for a
 * newer function).
 *
 * Limits: lines longer than PERFMAP_MAX_LINE bytes are skipped (as are lines not in that
 * shape, empty ranges and ranges that wrap); at most PERFMAP_MAX_ENTRIES entries (-E2BIG
 * beyond), PERFMAP_MAX_STRING_BYTES of names, a copy per line (-E2BIG). At most
 * PERFMAP_MAX_FILE_BYTES are read per map: of a larger file only its last
 * PERFMAP_MAX_FILE_BYTES (from the first whole line in them), the lines a JIT wrote last, which
 * win anyway where ranges overlap; bytes appended while it is read are left for the next load.
 * The figure: the maps of real JITs are kilobytes to a few MiB (a JVM with perf-map-agent
 * writes ~100 bytes per compiled method, tens of thousands of them; V8's --perf-basic-prof
 * grows with the process's life, and its last lines are the live code). Parsing 32 MiB (333k
 * lines) takes 0.7-1 s on a small VM (bench: the issue 26 report); a hostile 1 GiB (sparse)
 * map costs no more than that.
 */
#define PERFMAP_MAX_LINE 4096
#define PERFMAP_MAX_ENTRIES (1u << 22)
#define PERFMAP_MAX_STRING_BYTES (256u << 20)
#define PERFMAP_MAX_FILE_BYTES (32ull << 20)

struct perfmap;

/*
 * Parse the perf map open at `fd` (read from its current position, or its last
 * PERFMAP_MAX_FILE_BYTES; not closed). Errors: -EINVAL (not a regular file), -ENODATA (no valid
 * entry), the limits above, -ENOMEM, or read's -errno. Opening the file, and deciding whether
 * its contents may be trusted (owner, where it lives), is the caller's business: see
 * pipeline/jitmap.h for a live process's map.
 */
int perfmap_load_fd(int fd, struct perfmap **ret);
/*
 * Open `path` and parse it as perfmap_load_fd(). Only a regular file is opened for reading:
 * the path is opened with O_PATH and O_NOFOLLOW first (a symlink is -ELOOP, a FIFO, socket or
 * device -EINVAL, never opened), then reopened read-only. The owner is not checked: for files
 * the caller trusts as given (`profd convert --perf-map-dir`).
 */
int perfmap_load(const char *path, struct perfmap **ret);
void perfmap_free(struct perfmap *m);
/* name valid until perfmap_free(). -ENOENT when addr is not covered. ret_* may be NULL. */
int perfmap_lookup(const struct perfmap *m, uint64_t addr, const char **ret_name,
		   uint64_t *ret_start);
/* Distinct address ranges after overlaps were resolved (for tests and stats). */
size_t perfmap_n_ranges(const struct perfmap *m);
/* Bytes of the file that were read (at most PERFMAP_MAX_FILE_BYTES + 1). */
uint64_t perfmap_bytes(const struct perfmap *m);

/* ---- shared cache ----------------------------------------------------------------------- */

/*
 * struct sym_cache: what a long-running profiler keeps between profiles.
 *
 * Binaries are keyed by what was actually opened: the identity of the file at the caller's fd
 * (struct sym_file_id: device, inode, size and mtime, as fstat() gives them) together with the
 * GNU build-id the caller read from it (none: the file identity alone). So one file is opened
 * once however many processes, mount namespaces or paths map it, and a file serves only the
 * lookups of that very file: two files with one build-id are two binaries, whoever made them.
 * A build-id is a claim made by the file's author, not a proof of its contents: a user's copy
 * of a library with the library's build-id and renamed functions must not name the processes
 * that map the genuine one, nor its debug-file search (next to its path) serve them. An ELF
 * that cannot be opened (-ENOEXEC, -EFBIG, ...) is remembered as failed for that file only; a
 * file rewritten in place (new size or mtime) is a new binary. The cost: identical copies of
 * a library on different inodes (containers whose images do not share the layer holding it)
 * are parsed and cached once each, within the same bounds. The first fd, path and root seen
 * for a key are used to open it (the same file; path and root only matter to the debug-file
 * search). At most max_elfs are open at once (least recently used closed first; reopened from
 * the fd of a later lookup).
 *
 * Results are cached per (binary, file offset, inlines), with their strings copied into the
 * entry, so closing a sym_elf never invalidates them. At most max_results entries and
 * max_result_bytes bytes (entry headers, frames and strings counted); the least recently used
 * go first. A single result larger than max_result_bytes / 64 is not cached.
 *
 * Generations: sym_cache_next_generation() (once per profile) closes the ELFs and drops the
 * results of binaries not looked up in the last max_idle_generations generations.
 *
 * Memory bound: max_elfs open sym_elfs (each holding what libdw mapped and parsed, plus at
 * most SYM_MAX_STRING_BYTES of names and the lookup indexes bounded above), max_result_bytes
 * of results, and at most SYM_CACHE_MAX_BINARIES small per-binary records (least recently used
 * dropped first).
 */
#define SYM_CACHE_DEFAULT_MAX_ELFS 256
#define SYM_CACHE_DEFAULT_MAX_RESULTS (1u << 20)
#define SYM_CACHE_DEFAULT_MAX_RESULT_BYTES (256u << 20)
#define SYM_CACHE_DEFAULT_MAX_IDLE_GENERATIONS 4
#define SYM_CACHE_MAX_BINARIES 65536

struct sym_cache_config {
	size_t max_elfs;                /* 0: SYM_CACHE_DEFAULT_MAX_ELFS */
	size_t max_results;             /* 0: SYM_CACHE_DEFAULT_MAX_RESULTS */
	size_t max_result_bytes;        /* 0: SYM_CACHE_DEFAULT_MAX_RESULT_BYTES */
	unsigned max_idle_generations;  /* 0: SYM_CACHE_DEFAULT_MAX_IDLE_GENERATIONS */
	const char *const *debug_dirs;  /* as struct sym_elf_options; copied */
	bool debuginfod;                /* as struct sym_elf_options */
	enum sym_demangle_mode demangle; /* as struct sym_elf_options */
};

/* The identity of an open file, as fstat() gives it: what the caches key a binary by. */
struct sym_file_id {
	uint64_t dev, ino, size, mtime_ns;
};

/* fstat(fd) into *ret: 0, -EINVAL (NULL ret), or fstat's -errno. */
int sym_file_id_from_fd(int fd, struct sym_file_id *ret);

/* What the caller knows about a binary; nothing here is kept past the call. */
struct sym_binary {
	const uint8_t *build_id; /* GNU build-id read from the file at fd, or NULL */
	size_t build_id_len;     /* 0: keyed by the file identity alone */
	int fd;                  /* the file; dup'ed when the ELF must be (re)opened; -1: none */
	const char *path;        /* name in the target (debuglink search, messages) */
	struct sym_root *root;   /* the root path is named in, NULL: unknown (sym_elf_options) */
	/*
	 * The identity of the file at fd, from sym_file_id_from_fd() (callers that look up one
	 * file many times keep it, saving an fstat() per call); NULL: the cache fstat()s fd. It
	 * must be fd's own: it is the key. Neither (fd -1, NULL): no binary, no name.
	 */
	const struct sym_file_id *file_id;
};

struct sym_binary_info {
	int error;        /* 0, or why the ELF could not be opened (-ENOEXEC, -EBADF: no fd, ...) */
	bool has_symbols; /* as sym_elf_has_symbols() */
	bool has_lines;   /* as sym_elf_has_lines() */
};

struct sym_cache_stats {
	size_t n_binaries, n_open_elfs, n_results, result_bytes;
	uint64_t hits, misses, elf_opens, elf_closes, result_evictions, binaries_dropped;
};

struct sym_cache;

/* cfg may be NULL (defaults). -ENOMEM, -EINVAL (a debug dir that is not absolute). */
int sym_cache_new(const struct sym_cache_config *cfg, struct sym_cache **ret);
void sym_cache_free(struct sym_cache *c);

/*
 * Symbolize file offset `file_offset` of `bin` (offset of the instruction: for a return
 * address, of pc - 1). Returns 0 with *ret filled (source NONE when nothing was found,
 * including when the ELF cannot be opened or no PT_LOAD holds the offset), -EINVAL for bad
 * arguments, -ENOMEM. Strings in *ret stay valid until the next sym_cache_* call on `c`
 * that can evict (lookup, binary_info, next_generation, free): copy what must live longer.
 */
int sym_cache_lookup(struct sym_cache *c, const struct sym_binary *bin, uint64_t file_offset,
		     bool inlines, struct sym_result *ret);

/* Mapping flags for `bin` (opens its ELF if needed). 0, or -EINVAL / -ENOMEM. */
int sym_cache_binary_info(struct sym_cache *c, const struct sym_binary *bin,
			  struct sym_binary_info *ret);

/* Start a new generation and drop what was idle too long (see above). */
void sym_cache_next_generation(struct sym_cache *c);

void sym_cache_get_stats(const struct sym_cache *c, struct sym_cache_stats *ret);

/*
 * struct sym_warmer: prepares binaries in a cache from threads of its own (one per CPU, at
 * most SYM_WARMER_THREADS, binaries in parallel) while the caller
 * does something else (`profd convert` reading and unwinding a recording): for each binary
 * given to sym_warmer_add(), it opens the ELF in the cache and reads what lookups will need,
 * the symbol table, the separate debug file and its DWARF (which libdw decompresses whole on
 * first use: about 60 ms for glibc's debug file). Lookups then answer exactly as without it,
 * only sooner. From sym_warmer_new() to sym_warmer_finish() the cache belongs to the warmer:
 * the caller must not use it. sym_warmer_finish() prepares what is still queued, stops the
 * thread and frees the warmer; the prepared binaries stay in the cache (bounded as usual).
 *
 * sym_warmer_add() copies what it needs (dup of the fd, build-id, path, a reference to the
 * root, the file's identity, so a binary is prepared under the key its lookups will use): 0,
 * -EINVAL, -ENOMEM, the
 * -errno of the dup or fstat, or -E2BIG past SYM_WARMER_MAX binaries (those are opened on
 * their first lookup as usual). sym_warmer_new(): 0, -EINVAL, -ENOMEM or pthread_create()'s
 * error (the caller goes on without one).
 */
#define SYM_WARMER_MAX 4096
#define SYM_WARMER_THREADS 2
struct sym_warmer;
int sym_warmer_new(struct sym_cache *c, struct sym_warmer **ret);
int sym_warmer_add(struct sym_warmer *w, const struct sym_binary *bin);
void sym_warmer_finish(struct sym_warmer *w);

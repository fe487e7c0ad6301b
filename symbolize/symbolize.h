/* SPDX-License-Identifier: MIT */
/*
 * profd symbolizer: (binary, address) → chain of frames (inlined callees first, then the
 * containing function), each with a name and, when known, file and line.
 *
 * Layers:
 *   struct symbolizer   — owns one struct sym_elf per opened binary (by caller-provided key)
 *   struct sym_elf      — one ELF (+ its debug info), opened from an fd the caller passes
 *   sym_elf_lookup()    — one address → struct sym_result
 *   struct kallsyms     — /proc/kallsyms (kernel + modules)
 *
 * Addresses: sym_elf_lookup() takes an ELF virtual address (what `nm` and `eu-addr2line -e`
 * use). Convert a process address first: file offset = addr - mapping start + mapping pgoff,
 * then sym_elf_vaddr_from_offset() applies the PT_LOAD headers.
 *
 * Strings in results point into storage owned by the sym_elf / kallsyms and stay valid until
 * it is freed. Failures to find a name are data (SYM_SOURCE_NONE), not errors. Functions
 * return 0 or -errno; the library never logs above debug.
 *
 * Limits: SYM_MAX_INLINE frames per address; files larger than SYM_MAX_FILE_SIZE are refused
 * with -EFBIG. Each sym_elf keeps at most SYM_MAX_STRING_BYTES of its own strings (demangled
 * names); past that, names are returned undemangled. Demangling is tried only for names up to
 * SYM_DEMANGLE_MAX_INPUT bytes with results up to SYM_DEMANGLE_MAX_OUTPUT bytes. kallsyms keeps
 * at most KALLSYMS_MAX_ENTRIES text symbols (-E2BIG beyond) and rejects lines longer than
 * KALLSYMS_MAX_LINE (-EBADMSG).
 *
 * Threads: a sym_elf is not thread-safe (libdw caches are filled lazily); use each one from one
 * thread at a time. A loaded kallsyms is read-only and may be shared.
 *
 * Input is hostile: every parser here bounds-checks what it reads. The files are mmapped by
 * libelf; a file truncated while open can still fault the reader (SIGBUS), as with any
 * mmap-based ELF reader.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYM_MAX_INLINE 32
#define SYM_MAX_FILE_SIZE (4ull << 30)
#define SYM_MAX_STRING_BYTES (64u << 20)
#define SYM_DEMANGLE_MAX_INPUT 8192 /* libiberty builds its tree on the stack: ~600 KiB */
#define SYM_DEMANGLE_MAX_OUTPUT 65536

#define KALLSYMS_MAX_ENTRIES (4u << 20)
#define KALLSYMS_MAX_LINE 1024               /* KSYM_NAME_LEN (512) + module + address */
#define KALLSYMS_MAX_STRING_BYTES (256u << 20)
#define KALLSYMS_LAST_SYMBOL_SIZE 4096       /* span given to the highest symbol */

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
	uint64_t sym_start;      /* start address of the symbol (ELF vaddr), 0 if unknown */
};

struct sym_result {
	enum sym_source source;
	size_t n_frames;                        /* 0 when nothing was found */
	struct sym_frame frames[SYM_MAX_INLINE]; /* frames[0] is the innermost (leaf) */
};

struct sym_elf;

/*
 * Open a binary for symbolization from `fd` (duplicated internally; the caller keeps its fd).
 * `path` is the name the binary had in the target (for messages and debug-file search).
 *
 * Only ET_EXEC and ET_DYN ELF files are accepted. Errors: -EFBIG (larger than
 * SYM_MAX_FILE_SIZE), -ENOEXEC (not ELF, other ELF type, or unreadable headers), -EISDIR /
 * -EINVAL (not a regular file), -ENOMEM, or the -errno of dup/fstat/pread.
 *
 * Separate debug info is found lazily, on the first lookup, through libdwfl's standard search:
 * /usr/lib/debug/.build-id/xx/yyyy.debug by GNU build-id, then .gnu_debuglink next to `path`,
 * in its .debug/ and under /usr/lib/debug/<dir of path>; MiniDebugInfo (.gnu_debugdata) is used
 * for symbols. If the environment sets DEBUGINFOD_URLS, libdwfl also asks those servers.
 */
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
 * (demangled) or DW_AT_name, following DW_AT_abstract_origin/DW_AT_specification. More than
 * SYM_MAX_INLINE levels keep the outermost ones. With `inlines` false only the containing
 * function is returned, at the line of the call site in it (or the line-table line if nothing
 * was inlined there).
 * Without a DWARF function at vaddr: one frame from .symtab (SYMTAB: also the debug file's or
 * MiniDebugInfo's) or .dynsym (DYNSYM), with file:line if a line table covers vaddr.
 * sym_start: the ELF symbol's start when one covers vaddr, else DW_AT_entry_pc/low_pc.
 */
int sym_elf_lookup(struct sym_elf *e, uint64_t vaddr, bool inlines, struct sym_result *ret);

/*
 * Whether the binary had DWARF line info / symbols (for pprof mapping has_* flags), counting
 * separate debug files. has_lines looks for DWARF (and so for debug files) on first call.
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

/* What the process table needs to key a mapping: architecture, type and GNU build-id. */
struct elf_ident {
	uint16_t e_machine;      /* EM_* */
	uint16_t e_type;         /* ET_* */
	uint8_t build_id[64];
	size_t build_id_len;     /* 0: no NT_GNU_BUILD_ID note (or one longer than 64 bytes) */
};

/*
 * Read the ELF header and GNU build-id of the file open at `fd` (not consumed; its file
 * position is not used). The note is searched in PT_NOTE segments first, then in SHT_NOTE
 * sections; at most 1 MiB and 256 notes per segment/section are examined. Returns 0, or
 * -ENOEXEC when the file is not ELF, -EINVAL for bad arguments or a non-regular file.
 */
int elf_identify_fd(int fd, struct elf_ident *ret);

/*
 * Lower-case hex of a build-id into buf (NUL-terminated). Returns the number of characters
 * written (2 * len), -ENOBUFS when buf_size < 2 * len + 1, -EINVAL for NULL arguments.
 */
int build_id_to_hex(const uint8_t *id, size_t len, char *buf, size_t buf_size);

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
 * with -EFBIG.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYM_MAX_INLINE 32
#define SYM_MAX_FILE_SIZE (4ull << 30)

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
 */
int sym_elf_open(int fd, const char *path, struct sym_elf **ret);
void sym_elf_free(struct sym_elf *e);

/* Map a file offset (addr - mapping start + mapping pgoff) to an ELF vaddr via PT_LOAD. */
int sym_elf_vaddr_from_offset(struct sym_elf *e, uint64_t file_offset, uint64_t *ret_vaddr);

/* Look up one ELF virtual address. Returns 0 (result may have source NONE) or -errno. */
int sym_elf_lookup(struct sym_elf *e, uint64_t vaddr, bool inlines, struct sym_result *ret);

/* Whether the binary had DWARF line info / symbols (for pprof mapping has_* flags). */
bool sym_elf_has_symbols(struct sym_elf *e);
bool sym_elf_has_lines(struct sym_elf *e);

struct kallsyms;
/* Parse a kallsyms file (normally "/proc/kallsyms"). -EACCES when all addresses are 0. */
int kallsyms_load(const char *path, struct kallsyms **ret);
void kallsyms_free(struct kallsyms *k);
/* name is "func" or "func [module]". Returns -ENOENT when addr is not covered. */
int kallsyms_lookup(const struct kallsyms *k, uint64_t addr, const char **ret_name,
		    uint64_t *ret_start);

/* SPDX-License-Identifier: MIT */
/*
 * ELF core-file reader: what `profd stack --core` needs to run the unwinder on a core dump of
 * any supported architecture, whatever the host: per-thread registers, the mapped files, the
 * auxiliary vector and the dumped memory.
 *
 * Supported: 64-bit little-endian ET_CORE files of EM_X86_64 and EM_AARCH64, as written by the
 * Linux kernel, by gdb's gcore and by qemu-user. The architecture-specific layouts (where pr_reg
 * sits in NT_PRSTATUS, which pr_reg slots are pc/sp/fp/lr) come from a table picked at run
 * time by e_machine (core.c), so both architectures are read on every host.
 *
 * What is read:
 *   NT_PRSTATUS  one per thread: tid (pr_pid), current signal, pc/sp/fp/lr (struct unwind_regs)
 *   NT_PRPSINFO  process id and command name (pr_fname), command line (pr_psargs)
 *   NT_AUXV      auxiliary vector (AT_PHDR, AT_ENTRY, AT_SYSINFO_EHDR, ...)
 *   NT_FILE      file mappings (start, end, file offset, name); absent in qemu-user cores,
 *                then core_load_maps() supplies them from a /proc/PID/maps listing
 *   PT_LOAD      memory by address; bytes past p_filesz (up to p_memsz) were not dumped and
 *                read as unavailable, not as zeros
 *
 * Input is hostile: every offset and size is bounds-checked against the file with overflow-safe
 * arithmetic, and every count has a limit (below). A PT_LOAD whose bytes run past the end of
 * the file (a core cut short by RLIMIT_CORE or a full disk) is kept with the part that is
 * present and sets core->truncated; notes that run past the end make the file malformed.
 *
 * Errors (core_open, core_parse): -ENOEXEC not an ELF file, or an ELF file that is not a core
 * (ET_CORE); -EOPNOTSUPP 32-bit, big-endian, or an e_machine other than x86_64/aarch64;
 * -EBADMSG malformed or truncated headers or notes (overlapping PT_LOADs, a note running past
 * its segment, no NT_PRSTATUS at all); -E2BIG a limit below exceeded; -ENOMEM; the -errno of
 * open/fstat/mmap. Nothing here logs.
 *
 * Lifetime: struct core owns everything it points to (the file is mmapped read-only for its
 * whole life); strings stay valid until core_free(). Not thread-safe for concurrent
 * core_load_maps(); reads are.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/unwind/unwind.h"

#define CORE_MAX_SEGMENTS (1u << 20)   /* program headers (e_phnum, PN_XNUM extended) */
#define CORE_MAX_NOTES (1u << 20)      /* notes parsed over all PT_NOTE segments */
#define CORE_MAX_THREADS 65536	       /* NT_PRSTATUS notes */
#define CORE_MAX_FILES (1u << 20)      /* NT_FILE entries / --maps lines kept */
#define CORE_MAX_AUXV 4096	       /* auxv (type, value) pairs */
#define CORE_MAX_NAME 4096	       /* bytes of one mapping name, NUL included */
#define CORE_MAX_MAPS_FILE (64u << 20) /* size of a --maps file */

struct core_thread {
	uint32_t tid;		 /* pr_pid of NT_PRSTATUS: the thread id */
	uint32_t signo;		 /* pr_cursig: the signal being delivered, 0 if none */
	struct unwind_regs regs; /* pc, sp, fp, lr (see unwind.h for each arch) */
};

/* One file mapping, process addresses [start, end), file offset pgoff. */
struct core_mapping {
	uint64_t start, end, pgoff;
	char *name;	 /* path as the target saw it; never NULL */
	bool exec;	 /* executable: from --maps' "x", or the PT_LOAD p_flags holding start */
	bool prot_known; /* false when neither source told (then exec is true) */
};

/* One PT_LOAD: [vaddr, vaddr + memsz) in memory, the first `avail` bytes present in the file. */
struct core_segment {
	uint64_t vaddr, memsz;
	uint64_t offset; /* file offset of the bytes */
	uint64_t avail;	 /* min(p_filesz, memsz, bytes actually in the file) */
	uint32_t flags;	 /* PF_R | PF_W | PF_X */
};

struct core {
	uint16_t e_machine;
	const char *arch_name; /* "x86_64", "aarch64" */
	uint32_t pid;	       /* NT_PRPSINFO pr_pid, else the first thread's tid */
	char comm[17];	       /* NT_PRPSINFO pr_fname, "" when absent */
	char psargs[81];       /* NT_PRPSINFO pr_psargs, "" when absent */
	bool has_prpsinfo;

	struct core_thread *threads; /* in note order: the kernel puts the dumping thread first */
	size_t n_threads;

	struct core_segment *segments; /* PT_LOADs sorted by vaddr, non-overlapping, memsz > 0 */
	size_t n_segments;

	uint64_t *auxv; /* (type, value) pairs, up to and excluding AT_NULL */
	size_t n_auxv;	/* number of pairs */

	struct core_mapping *mappings; /* sorted by start, non-overlapping */
	size_t n_mappings;
	bool has_nt_file;   /* mappings came from the core's NT_FILE note */
	uint64_t page_size; /* NT_FILE page size, 0 when there was no NT_FILE */

	bool truncated; /* some PT_LOAD bytes are missing from the file */

	/* Private. */
	const uint8_t *data;
	size_t size;
	void *map; /* mmap base to unmap, NULL for core_parse() of a caller's buffer */
};

/* mmap and parse the core file at `path`. */
int core_open(const char *path, struct core **ret);
/* Parse a core held in memory; `data` is borrowed and must outlive the returned core. */
int core_parse(const void *data, size_t size, struct core **ret);
void core_free(struct core *c);

/*
 * Copy target memory at [addr, addr + len) into buf, stopping at the first byte the core does
 * not hold (unmapped, or dumped without contents). Reads across adjacent PT_LOADs. Returns the
 * number of bytes copied (0 when addr itself is unavailable).
 */
size_t core_read(const struct core *c, uint64_t addr, void *buf, size_t len);

/* The PT_LOAD holding addr, or NULL. */
const struct core_segment *core_find_segment(const struct core *c, uint64_t addr);

/* Value of auxv entry `type` (AT_*): 0 and *ret, or -ENOENT. */
int core_auxv_get(const struct core *c, uint64_t type, uint64_t *ret);

/* The file mapping holding addr, or NULL. */
const struct core_mapping *core_find_mapping(const struct core *c, uint64_t addr);

/*
 * Replace the core's mappings with the file mappings of a /proc/PID/maps listing (lines as
 * proc_maps_parse_line() reads them; anonymous and [special] lines are skipped, as are lines
 * that do not parse or are longer than PROC_MAPS_LINE_MAX). -EBADMSG when no line parses or
 * mappings overlap, -E2BIG past CORE_MAX_FILES or CORE_MAX_MAPS_FILE bytes, -ENOMEM, or
 * fopen's -errno. On error the core's mappings are unchanged.
 */
int core_load_maps(struct core *c, const char *path);

/* SPDX-License-Identifier: MIT */
/*
 * DWARF call frame information (.eh_frame, .debug_frame) compiled into compact unwind tables.
 *
 * A table answers one question fast: "at this code address of this binary, where is the
 * caller's frame?". It is built once per binary (per build-id) from the raw CFI sections and
 * is immutable afterwards, so lookups from several threads need no locking.
 *
 * Addresses: every pc in this interface is an ELF virtual address of the binary the table was
 * built from (process address - load bias). For return addresses the caller looks up pc - 1.
 *
 * Representation: rows sorted by pc; a row is a 4-byte pc offset from the table base plus a
 * 2-byte index into a deduplicated rule array (4-byte when a binary has more than 65535
 * distinct rules), so 6 bytes per row in practice. A row with rule 0 marks a gap (no FDE).
 *
 * Supported CFI: CIE versions 1, 3, 4; 32- and 64-bit DWARF lengths; eh_frame and debug_frame
 * CIE id conventions; augmentations "z", "R", "P", "L", "S", "B", "G" and legacy "eh";
 * DW_EH_PE pointer formats absptr, (u|s)data2/4/8, (u|s)leb128, applied absolute, pcrel,
 * aligned, or datarel (only in .eh_frame_hdr, or in .eh_frame when data_base is given);
 * textrel, funcrel and indirect values make the FDE unsupported. Every DW_CFA_* opcode of
 * DWARF 5 except DW_CFA_MIPS_advance_loc8, plus DW_CFA_GNU_args_size,
 * DW_CFA_GNU_negative_offset_extended and DW_CFA_AARCH64_negate_ra_state (aarch64 only).
 * Only the CFA, the return address and the frame pointer are tracked; rules for other
 * registers are parsed and dropped. CFA expressions other than the x86_64 PLT idiom compile
 * to CFI_CFA_UNSUPPORTED, which tells the unwinding loop to fall back to the frame pointer.
 *
 * Hostile input: all parsing is bounds-checked with overflow-safe arithmetic. A malformed or
 * unsupported FDE (or one whose CIE is bad) is skipped and counted in cfi_table_stats; it
 * never fails the table. Only allocation failure, a limit below, or misuse fails a build.
 *
 * Errors: functions return 0 / a positive count on success and -errno on failure:
 *   -EINVAL      misuse (NULL arguments, unsupported e_machine in cfi_table_build)
 *   -EOPNOTSUPP  not a 64-bit little-endian x86_64/aarch64 ELF, or ET_REL
 *   -ENODATA     no CFI section at all (the binary needs the frame-pointer fallback)
 *   -E2BIG       a limit below was hit
 *   -EFBIG       the covered code spans more than 4 GiB
 *   -ENOMEM      allocation failure
 *   -EBADMSG     (cfi_eh_frame_hdr_parse) malformed header
 *   -ENOENT      (cfi_table_lookup) no FDE covers the address
 */
#pragma once

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/unwind/stackcopy.h"

/* Limits, so that a hostile binary can only cost a bounded amount of memory and time. */
#define CFI_MAX_FDES (1u << 21)		/* FDEs parsed per table; more → -E2BIG */
#define CFI_MAX_ROWS (1u << 24)		/* rows per table (~96 MiB); more → -E2BIG */
#define CFI_MAX_RULES (1u << 20)	/* distinct rules per table; more → -E2BIG */
#define CFI_MAX_INSNS_PER_FDE 65536	/* per CIE or FDE program; more → FDE skipped */
/*
 * CFA instructions interpreted per table, CIE programs re-run on CIE cache misses included; more
 * → -E2BIG. Without it, FDEs that alternate between CIEs colliding in the cache, each with a long
 * program, cost CFI_MAX_FDES * CFI_MAX_INSNS_PER_FDE. Real binaries need ~25 per FDE.
 */
#define CFI_MAX_INSNS_TOTAL (1u << 26)
#define CFI_MAX_REMEMBER_DEPTH 64	/* DW_CFA_remember_state nesting; deeper → FDE skipped */
#define CFI_CIE_CACHE_SIZE 64		/* parsed CIEs kept while building (direct-mapped) */
#define CFI_MAX_SECTION_SIZE (1u << 30) /* larger (decompressed) CFI sections are refused */

/* One CFI section: its bytes and the ELF virtual address of data[0] (sh_addr). */
struct cfi_section {
	const uint8_t *data; /* NULL when absent; borrowed, only read during cfi_table_build */
	size_t size;
	uint64_t addr; /* needed for pcrel encodings; ignored for .debug_frame */
};

struct cfi_sections {
	struct cfi_section eh_frame_hdr; /* optional: checked against .eh_frame, counted in stats */
	struct cfi_section eh_frame;	 /* optional */
	struct cfi_section debug_frame;	 /* optional, may come from a separate debug file */
	/* Base of DW_EH_PE_datarel inside .eh_frame (i386-style GOT); 0 = such FDEs unsupported. */
	uint64_t data_base;
	/*
	 * Code range [pc_lo, pc_hi) of the binary (executable PT_LOADs). When pc_hi > pc_lo, FDEs
	 * not entirely inside it are dropped, so a hostile FDE cannot stretch the table.
	 */
	uint64_t pc_lo, pc_hi;
};

/* How to compute the CFA (the caller's stack pointer). */
enum cfi_cfa_kind {
	CFI_CFA_NONE = 0, /* gap row: no FDE covers the address (never returned by lookup) */
	CFI_CFA_SP,	  /* CFA = sp + cfa_offset */
	CFI_CFA_FP,	  /* CFA = fp + cfa_offset (x86_64 rbp, aarch64 x29) */
	/* x86_64 lazy PLT: CFA = sp + cfa_offset + ((pc & 15) >= cfa_plt_threshold ? 8 : 0) */
	CFI_CFA_PLT_X86_64,
	CFI_CFA_UNSUPPORTED, /* expression or other register: use the frame-pointer fallback */
};

/* Where the return address (the caller's pc) is. */
enum cfi_ra_kind {
	CFI_RA_UNSUPPORTED = 0, /* register/expression rule: cannot unwind with CFI */
	CFI_RA_CFA_OFFSET,	/* saved in memory at CFA + ra_offset */
	CFI_RA_LR,		/* aarch64: still in x30; only meaningful for the sampled frame */
	CFI_RA_UNDEFINED,	/* DW_CFA_undefined: the outermost frame (end of stack) */
};

/* How to recover the caller's frame pointer. */
enum cfi_fp_kind {
	CFI_FP_SAME = 0,    /* unchanged (not saved, or DW_CFA_same_value) */
	CFI_FP_CFA_OFFSET,  /* saved in memory at CFA + fp_offset */
	CFI_FP_VAL_OFFSET,  /* the value CFA + fp_offset itself */
	CFI_FP_UNDEFINED,   /* DW_CFA_undefined: caller's fp unknown, cfi_step sets it to 0 */
	CFI_FP_UNSUPPORTED, /* register/expression rule: cfi_step sets it to 0 */
};

enum cfi_rule_flags {
	/* aarch64: the saved return address is signed (pointer authentication): strip it. */
	CFI_RULE_RA_SIGNED = 1 << 0,
	/*
	 * The FDE is a signal trampoline ("S"): the pc recovered through this frame is where the
	 * interrupted code was, so the caller looks it up as is, not at pc - 1.
	 */
	CFI_RULE_SIGNAL_FRAME = 1 << 1,
};

/* One unwind rule. Fields not used by a kind are 0, so rules compare with memcmp. */
struct cfi_rule {
	int32_t cfa_offset;
	int32_t ra_offset;
	int32_t fp_offset;
	uint8_t cfa_kind;	   /* enum cfi_cfa_kind */
	uint8_t ra_kind;	   /* enum cfi_ra_kind */
	uint8_t fp_kind;	   /* enum cfi_fp_kind */
	uint8_t flags;		   /* enum cfi_rule_flags */
	uint8_t cfa_plt_threshold; /* CFI_CFA_PLT_X86_64 only: 10 or 11 */
	uint8_t reserved[3];
};

/* What a build saw. FDE counters partition n_fdes. */
struct cfi_table_stats {
	size_t n_cies;		    /* CIEs parsed (cache misses included) */
	size_t n_fdes;		    /* FDE entries found */
	size_t n_fdes_used;	    /* contributed rows */
	size_t n_fdes_malformed;    /* bad bytes, bad CIE pointer, bad encoding, limits: skipped */
	size_t n_fdes_unsupported;  /* valid but unsupported (textrel, indirect, CIE version...) */
	size_t n_fdes_overlap;	    /* fully covered by an earlier FDE, or a .debug_frame FDE
				       overlapping .eh_frame (.eh_frame wins) */
	size_t n_fdes_empty;	    /* zero-length, outside [pc_lo, pc_hi), or discarded (pc 0) */
	size_t n_entries_truncated; /* sections whose walk stopped at a length past the end */
	size_t n_rows;
	size_t n_rules;		    /* distinct rules, the gap rule included */
	size_t n_rules_unsupported; /* rules with CFI_CFA_UNSUPPORTED */
	uint64_t hdr_fde_count;	    /* FDE count claimed by .eh_frame_hdr (0 without one) */
	bool hdr_mismatch;	    /* .eh_frame_hdr points elsewhere than eh_frame.addr */
};

struct cfi_table;

/*
 * Build a table from raw section bytes (a file, a core dump, memory, a test). e_machine is
 * EM_X86_64 or EM_AARCH64. The sections are only read during the call; the table copies what
 * it needs. Rows from .eh_frame win over overlapping .debug_frame FDEs. Returns 0 and a table
 * (possibly with 0 rows when every FDE was skipped), or -errno (see top).
 */
int cfi_table_build(uint16_t e_machine, const struct cfi_sections *s, struct cfi_table **ret);

/*
 * Build from an ELF file: sections by name (.eh_frame_hdr, .eh_frame, .debug_frame, compressed
 * ones included), or, without section headers, .eh_frame_hdr via PT_GNU_EH_FRAME and .eh_frame
 * from the PT_LOAD it points into. `debug_elf` (may be NULL) is a separate debug file whose
 * .debug_frame is used when `elf` has none. Use elf_memory() for an image in memory; libelf
 * may then write to the image when decompressing sections.
 */
int cfi_table_build_from_elf(Elf *elf, Elf *debug_elf, struct cfi_table **ret);
/* Same for an open file descriptor (not closed, not needed after the call). */
int cfi_table_build_from_elf_fd(int fd, struct cfi_table **ret);

/* NULL-safe. */
void cfi_table_free(struct cfi_table *t);

uint16_t cfi_table_e_machine(const struct cfi_table *t);
/* Rows, gap rows included. */
size_t cfi_table_n_rows(const struct cfi_table *t);
/* Heap bytes held by the table (struct, rows, rules). */
size_t cfi_table_size_bytes(const struct cfi_table *t);
const struct cfi_table_stats *cfi_table_get_stats(const struct cfi_table *t);

/*
 * The rule in effect at ELF address `pc`, into *ret. -ENOENT when no FDE covers pc (gaps,
 * before the first or past the last FDE). O(log rows), no allocation.
 */
int cfi_table_lookup(const struct cfi_table *t, uint64_t pc, struct cfi_rule *ret);

/* Parsed .eh_frame_hdr (version 1). */
struct cfi_eh_frame_hdr {
	uint64_t eh_frame_addr; /* ELF address of .eh_frame */
	uint64_t fde_count;	/* entries of the binary search table, 0 when it has none */
	uint8_t table_enc;	/* DW_EH_PE_* encoding of the table, DW_EH_PE_omit if none */
};
/* Parse the header of .eh_frame_hdr; datarel values are relative to hdr->addr. */
int cfi_eh_frame_hdr_parse(const struct cfi_section *hdr, struct cfi_eh_frame_hdr *ret);

/* PAC bits are removed by keeping the low 48 bits (user VA_BITS <= 48). */
#define CFI_AARCH64_PAC_MASK ((UINT64_C(1) << 48) - 1)

/*
 * Apply `rule` to *regs (the frame the rule was looked up for) to get the caller's frame:
 * caller pc = the return address (PAC-stripped when CFI_RULE_RA_SIGNED on aarch64), caller
 * sp = CFA, caller fp per the fp rule, and on aarch64 caller lr = the unstripped return
 * address. Memory is read only through unwind_read_u64(in, ...). `first` is true for the
 * sampled frame, the only one whose lr is live.
 *
 * Returns 0 with *ret_end = false and *regs updated, 0 with *ret_end = true when the rule
 * says this is the outermost frame (regs untouched), or a stop reason > 0 with regs untouched:
 *   UNWIND_STOP_TRUNCATED  the return address or saved fp lies outside the stack copy
 *   UNWIND_STOP_NO_CFI     the CFA or return address cannot be computed from this rule
 *                          (unsupported expression, CFA from fp while fp is 0, or the
 *                          return address still in lr for a frame other than the first);
 *                          the loop may fall back to the frame pointer.
 * Sanity of the result (progress, plausible pc) is the loop's business.
 */
int cfi_step(const struct cfi_rule *rule, const struct unwind_input *in, struct unwind_regs *regs,
	     bool first, bool *ret_end);

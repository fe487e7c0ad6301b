/* SPDX-License-Identifier: MIT */
/*
 * DWARF CFI → unwind rule tables. Hand-assembled CIE/FDE bytes pin every opcode, encoding
 * and edge; real binaries (the host libc, aarch64 programs built here) are checked row by row
 * against `readelf --debug-dump=frames-interp`.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "pipeline/unwind/cfi.h"
#include "pipeline/unwind/unwind-cache.h"

#define EH_ADDR 0x10000 /* where the test .eh_frame "is loaded" */
#define LIBC_PATH "/lib/x86_64-linux-gnu/libc.so.6"

/* ---- assembling CFI bytes ---------------------------------------------------------------- */

struct buf {
	uint8_t *d;
	size_t n, cap;
};

static void buf_free(struct buf *b)
{
	free(b->d);
	*b = (struct buf){};
}

static void put(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->n + n > b->cap) {
		b->cap = MAX(b->cap * 2, b->n + n + 256);
		b->d = realloc(b->d, b->cap);
		cr_assert(b->d);
	}
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}
static void u16(struct buf *b, uint16_t v)
{
	put(b, &v, 2);
}
static void u32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}
static void u64(struct buf *b, uint64_t v)
{
	put(b, &v, 8);
}
static void uleb(struct buf *b, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		u8(b, c | (v ? 0x80 : 0));
	} while (v);
}
static void sleb(struct buf *b, int64_t v)
{
	for (;;) {
		uint8_t c = v & 0x7f;
		v >>= 7;
		if ((v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40))) {
			u8(b, c);
			return;
		}
		u8(b, c | 0x80);
	}
}

#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define NONE NULL, 0

/* Entry header with a placeholder length; entry_end() patches it. */
static size_t entry_begin(struct buf *b, bool dwarf64)
{
	size_t off = b->n;
	if (dwarf64) {
		u32(b, UINT32_MAX);
		u64(b, 0);
	} else
		u32(b, 0);
	return off;
}

static void entry_end(struct buf *b, size_t off, bool dwarf64)
{
	while ((b->n - off) % 4) /* DW_CFA_nop padding, like real producers */
		u8(b, 0);
	if (dwarf64) {
		uint64_t len = b->n - off - 12;
		memcpy(b->d + off + 4, &len, 8);
	} else {
		uint32_t len = b->n - off - 4;
		memcpy(b->d + off, &len, 4);
	}
}

/* Write `value` with DW_EH_PE encoding `enc` at the current position of .eh_frame. */
static void put_encoded(struct buf *b, uint8_t enc, uint64_t value, uint64_t data_base)
{
	uint64_t field = EH_ADDR + b->n;

	if ((enc & 0x70) == 0x50)
		while (field % 8) {
			u8(b, 0);
			field++;
		}
	if ((enc & 0x70) == 0x10)
		value -= field;
	else if ((enc & 0x70) == 0x30)
		value -= data_base;
	switch (enc & 0x0f) {
	case 0x00:
	case 0x04:
	case 0x08:
	case 0x0c:
		u64(b, value);
		break;
	case 0x01:
		uleb(b, value);
		break;
	case 0x02:
	case 0x0a:
		u16(b, value);
		break;
	case 0x03:
	case 0x0b:
		u32(b, value);
		break;
	case 0x09:
		sleb(b, (int64_t)value);
		break;
	default:
		u32(b, value); /* invalid formats: any bytes */
		break;
	}
}

struct cie_desc {
	uint8_t version;
	const char *aug;
	uint64_t caf;
	int64_t daf;
	uint64_t ra;
	const uint8_t *augdata;
	size_t augdata_len;
	const uint8_t *insns;
	size_t insns_len;
	bool dwarf64;
	bool debug_frame;
};

static size_t add_cie(struct buf *b, const struct cie_desc *d)
{
	size_t off = entry_begin(b, d->dwarf64);
	uint8_t version = d->version ?: 1;

	if (d->dwarf64)
		u64(b, d->debug_frame ? UINT64_MAX : 0);
	else
		u32(b, d->debug_frame ? UINT32_MAX : 0);
	u8(b, version);
	put(b, d->aug, strlen(d->aug) + 1);
	if (strncmp(d->aug, "eh", 2) == 0)
		u64(b, 0xdeadbeef);
	if (version == 4) {
		u8(b, 8);
		u8(b, 0);
	}
	uleb(b, d->caf);
	sleb(b, d->daf);
	if (version == 1)
		u8(b, d->ra);
	else
		uleb(b, d->ra);
	if (d->aug[0] == 'z') {
		uleb(b, d->augdata_len);
		put(b, d->augdata, d->augdata_len);
	}
	put(b, d->insns, d->insns_len);
	entry_end(b, off, d->dwarf64);
	return off;
}

struct fde_desc {
	size_t cie;
	uint8_t enc; /* eh_frame pointer encoding, as the CIE's "R" says */
	uint64_t pc, len;
	bool z; /* the CIE has "z": write an augmentation length */
	const uint8_t *augdata;
	size_t augdata_len;
	const uint8_t *insns;
	size_t insns_len;
	bool dwarf64;
	bool debug_frame;
	uint64_t data_base;
};

static size_t add_fde(struct buf *b, const struct fde_desc *d)
{
	size_t off = entry_begin(b, d->dwarf64);
	size_t id_pos = b->n;

	if (d->debug_frame) {
		if (d->dwarf64)
			u64(b, d->cie);
		else
			u32(b, d->cie);
		u64(b, d->pc);
		u64(b, d->len);
	} else {
		if (d->dwarf64)
			u64(b, id_pos - d->cie);
		else
			u32(b, id_pos - d->cie);
		put_encoded(b, d->enc, d->pc, d->data_base);
		put_encoded(b, d->enc & 0x0f, d->len, 0);
	}
	if (d->z) {
		uleb(b, d->augdata_len);
		put(b, d->augdata, d->augdata_len);
	}
	put(b, d->insns, d->insns_len);
	entry_end(b, off, d->dwarf64);
	return off;
}

/* The CIE every x86_64 gcc output starts with: "zR", pcrel|sdata4, CFA = rsp+8, RA at c-8. */
static size_t x86_cie(struct buf *b)
{
	return add_cie(b, &(struct cie_desc){.aug = "zR",
					     .caf = 1,
					     .daf = -8,
					     .ra = 16,
					     .augdata = B(0x1b),
					     .insns = B(0x0c, 7, 8, 0x90, 1)});
}

/* aarch64 gcc: "zR", caf 4, daf -8, RA column x30, CFA = sp+0. */
static size_t a64_cie(struct buf *b)
{
	return add_cie(b, &(struct cie_desc){.aug = "zR",
					     .caf = 4,
					     .daf = -8,
					     .ra = 30,
					     .augdata = B(0x1b),
					     .insns = B(0x0c, 31, 0)});
}

static void fde(struct buf *b, size_t cie, uint64_t pc, uint64_t len, const uint8_t *insns,
		size_t n)
{
	add_fde(b, &(struct fde_desc){.cie = cie,
				      .enc = 0x1b,
				      .pc = pc,
				      .len = len,
				      .z = true,
				      .insns = insns,
				      .insns_len = n});
}

static int build_eh_ex(uint16_t machine, const struct buf *b, uint64_t data_base,
		       struct cfi_table **ret)
{
	struct cfi_sections s = {
	    .eh_frame = {.data = b->d, .size = b->n, .addr = EH_ADDR},
	    .data_base = data_base,
	};
	return cfi_table_build(machine, &s, ret);
}

static struct cfi_table *build_eh(uint16_t machine, const struct buf *b)
{
	struct cfi_table *t = NULL;
	int r = build_eh_ex(machine, b, 0, &t);

	cr_assert_eq(r, 0, "cfi_table_build: %s", strerror(-r));
	cr_assert(t);
	return t;
}

/* ---- checking rules ---------------------------------------------------------------------- */

struct want {
	uint8_t cfa;
	int32_t cfa_off;
	uint8_t ra;
	int32_t ra_off;
	uint8_t fp;
	int32_t fp_off;
	uint8_t flags;
};

#define expect_rule(t, pc, ...) expect_rule_at(__LINE__, t, pc, (struct want){__VA_ARGS__})
static void expect_rule_at(int line, const struct cfi_table *t, uint64_t pc, struct want w)
{
	struct cfi_rule r;
	int k = cfi_table_lookup(t, pc, &r);

	cr_assert_eq(k, 0, "line %d: lookup %#lx: %d", line, pc, k);
	cr_expect_eq(r.cfa_kind, w.cfa, "line %d pc %#lx: cfa kind %u != %u", line, pc, r.cfa_kind,
		     w.cfa);
	if (w.cfa == CFI_CFA_SP || w.cfa == CFI_CFA_FP || w.cfa == CFI_CFA_PLT_X86_64)
		cr_expect_eq(r.cfa_offset, w.cfa_off, "line %d pc %#lx: cfa off %d != %d", line, pc,
			     r.cfa_offset, w.cfa_off);
	cr_expect_eq(r.ra_kind, w.ra, "line %d pc %#lx: ra kind %u != %u", line, pc, r.ra_kind,
		     w.ra);
	if (w.ra == CFI_RA_CFA_OFFSET)
		cr_expect_eq(r.ra_offset, w.ra_off, "line %d pc %#lx: ra off %d != %d", line, pc,
			     r.ra_offset, w.ra_off);
	cr_expect_eq(r.fp_kind, w.fp, "line %d pc %#lx: fp kind %u != %u", line, pc, r.fp_kind,
		     w.fp);
	if (w.fp == CFI_FP_CFA_OFFSET || w.fp == CFI_FP_VAL_OFFSET)
		cr_expect_eq(r.fp_offset, w.fp_off, "line %d pc %#lx: fp off %d != %d", line, pc,
			     r.fp_offset, w.fp_off);
	cr_expect_eq(r.flags, w.flags, "line %d pc %#lx: flags %#x != %#x", line, pc, r.flags,
		     w.flags);
}

#define expect_none(t, pc)                                                                         \
	do {                                                                                       \
		struct cfi_rule _r;                                                                \
		cr_expect_eq(cfi_table_lookup(t, pc, &_r), -ENOENT, "pc %#lx should have no CFI",  \
			     (uint64_t)(pc));                                                      \
	} while (0)

/* The CIE rule of x86_cie(): CFA = rsp+8, RA at c-8, rbp untouched. */
#define X86_ENTRY .cfa = CFI_CFA_SP, .cfa_off = 8, .ra = CFI_RA_CFA_OFFSET, .ra_off = -8

/* ---- basic rows and lookups -------------------------------------------------------------- */

Test(cfi, x86_prologue_rows_and_edges)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	/* push %rbp; mov %rsp,%rbp; ...; pop %rbp; ret */
	fde(&b, cie, 0x1000, 0x20,
	    B(0x41, 0x0e, 16, 0x86, 2, /* +1: CFA rsp+16, rbp at c-16 */
	      0x43, 0x0d, 6,	       /* +4: CFA rbp+16 */
	      0x50, 0x0c, 7, 8));      /* +0x14: CFA rsp+8 */
	u32(&b, 0);
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_none(t, 0);
	expect_none(t, 0xfff);
	expect_rule(t, 0x1000, X86_ENTRY);
	expect_rule(t, 0x1001, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x1003, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x1004, .cfa = CFI_CFA_FP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x1013, .cfa = CFI_CFA_FP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x1014, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x101f, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_none(t, 0x1020);
	expect_none(t, UINT64_MAX);

	/* 4 rows + the closing gap row; 5 rules in all, the gap rule included. */
	cr_expect_eq(cfi_table_n_rows(t), 5);
	const struct cfi_table_stats *st = cfi_table_get_stats(t);
	cr_expect_eq(st->n_fdes, 1);
	cr_expect_eq(st->n_fdes_used, 1);
	cr_expect_eq(st->n_rules, 5);
	cr_expect_eq(st->n_cies, 1);
	cr_expect_eq(cfi_table_e_machine(t), EM_X86_64);
	cr_expect_gt(cfi_table_size_bytes(t), 5 * 6);
	cfi_table_free(t);
}

Test(cfi, gaps_sorting_and_merging)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	/* Out of order on purpose; A and B abut with the same rule and merge into one row. */
	fde(&b, cie, 0x1030, 0x10, NONE); /* C */
	fde(&b, cie, 0x1010, 0x10, NONE); /* B */
	fde(&b, cie, 0x1000, 0x10, NONE); /* A */
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1000, X86_ENTRY);
	expect_rule(t, 0x100f, X86_ENTRY);
	expect_rule(t, 0x1010, X86_ENTRY);
	expect_rule(t, 0x101f, X86_ENTRY);
	expect_none(t, 0x1020);
	expect_none(t, 0x102f);
	expect_rule(t, 0x1030, X86_ENTRY);
	expect_rule(t, 0x103f, X86_ENTRY);
	expect_none(t, 0x1040);
	cr_expect_eq(cfi_table_n_rows(t), 4); /* 0x1000, gap 0x1020, 0x1030, gap 0x1040 */
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 3);
	cfi_table_free(t);
}

Test(cfi, overlapping_fdes_first_wins)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	fde(&b, cie, 0x1000, 0x20, NONE);	 /* A */
	fde(&b, cie, 0x1010, 0x20, B(0x0e, 32)); /* B: overlaps A's tail */
	fde(&b, cie, 0x1004, 0x4, B(0x0e, 64));	 /* C: inside A, dropped */
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1004, X86_ENTRY);
	expect_rule(t, 0x101f, X86_ENTRY);
	expect_rule(t, 0x1020, .cfa = CFI_CFA_SP, .cfa_off = 32, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_rule(t, 0x102f, .cfa = CFI_CFA_SP, .cfa_off = 32, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_none(t, 0x1030);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_overlap, 1);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 2);
	cfi_table_free(t);
}

/* ---- opcodes ----------------------------------------------------------------------------- */

Test(cfi, remember_restore_state)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	fde(&b, cie, 0x1000, 0x10,
	    B(0x41, 0x0e, 16, 0x86, 2, /* 0x1001: rsp+16, rbp c-16 */
	      0x41, 0x0a,	       /* 0x1002: remember */
	      0x0e, 8, 0xc6,	       /*   rsp+8, restore rbp to the CIE's (none) */
	      0x41, 0x0a,	       /* 0x1003: remember again (nested) */
	      0x0e, 24,		       /*   rsp+24 */
	      0x41, 0x0b,	       /* 0x1004: back to rsp+8 */
	      0x41, 0x0b));	       /* 0x1005: back to rsp+16, rbp c-16 */
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1001, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x1002, X86_ENTRY);
	expect_rule(t, 0x1003, .cfa = CFI_CFA_SP, .cfa_off = 24, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_rule(t, 0x1004, X86_ENTRY);
	expect_rule(t, 0x1005, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x100f, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	cfi_table_free(t);
}

Test(cfi, restore_state_underflow_and_depth_limit_skip_fde)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);
	struct buf deep = {};

	fde(&b, cie, 0x1000, 0x10, B(0x41, 0x0b)); /* restore with nothing remembered */
	for (int i = 0; i <= CFI_MAX_REMEMBER_DEPTH; i++)
		u8(&deep, 0x0a);
	fde(&b, cie, 0x2000, 0x10, deep.d, deep.n);
	fde(&b, cie, 0x3000, 0x10, NONE); /* fine */
	buf_free(&deep);
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_none(t, 0x1000);
	expect_none(t, 0x2000);
	expect_rule(t, 0x3000, X86_ENTRY);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_malformed, 2);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 1);
	cfi_table_free(t);
}

Test(cfi, restore_to_cie_initial_rules)
{
	_cleanup_(buf_free) struct buf b = {};
	/* A CIE whose initial rules also save rbp at c-24 (so "restore" is observable). */
	size_t cie = add_cie(&b, &(struct cie_desc){.aug = "zR",
						    .caf = 1,
						    .daf = -8,
						    .ra = 16,
						    .augdata = B(0x1b),
						    .insns = B(0x0c, 7, 8, 0x90, 1, 0x86, 3)});

	fde(&b, cie, 0x1000, 0x10,
	    B(0x41, 0x86, 2,	     /* 0x1001: rbp c-16 */
	      0x41, 0x06, 6,	     /* 0x1002: restore_extended rbp → c-24 */
	      0x41, 0x07, 16,	     /* 0x1003: RA undefined */
	      0x41, 0xd0,	     /* 0x1004: restore RA → c-8 */
	      0x41, 0x86, 1, 0xc6)); /* 0x1005: rbp c-8 then restore → c-24 */
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1000, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -24);
	expect_rule(t, 0x1001, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -16);
	expect_rule(t, 0x1002, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -24);
	expect_rule(t, 0x1003, .cfa = CFI_CFA_SP, .cfa_off = 8, .ra = CFI_RA_UNDEFINED,
		    .fp = CFI_FP_CFA_OFFSET, .fp_off = -24);
	expect_rule(t, 0x1004, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -24);
	expect_rule(t, 0x1005, X86_ENTRY, .fp = CFI_FP_CFA_OFFSET, .fp_off = -24);
	/* 0x1004 and 0x1005 have equal rules: merged. 0x1000..0x1004 + gap = 6 rows. */
	cr_expect_eq(cfi_table_n_rows(t), 5 + 1);
	cfi_table_free(t);
}

Test(cfi, advance_variants_and_set_loc)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = a64_cie(&b); /* caf 4: every advance is scaled */

	fde(&b, cie, 0x100000, 0x100000,
	    B(0x41, 0x0e, 16,				/* advance_loc 1*4 → 0x100004 */
	      0x02, 0x10, 0x0e, 32,			/* advance_loc1 16*4 → 0x100044 */
	      0x03, 0x00, 0x01, 0x0e, 48,		/* advance_loc2 256*4 → 0x100444 */
	      0x04, 0x00, 0x00, 0x01, 0x00, 0x0e, 64)); /* advance_loc4 65536*4 → 0x140444 */
	struct cfi_table *t = build_eh(EM_AARCH64, &b);

	expect_rule(t, 0x100000, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_LR);
	expect_rule(t, 0x100004, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_LR);
	expect_rule(t, 0x100043, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_LR);
	expect_rule(t, 0x100044, .cfa = CFI_CFA_SP, .cfa_off = 32, .ra = CFI_RA_LR);
	expect_rule(t, 0x100444, .cfa = CFI_CFA_SP, .cfa_off = 48, .ra = CFI_RA_LR);
	expect_rule(t, 0x140443, .cfa = CFI_CFA_SP, .cfa_off = 48, .ra = CFI_RA_LR);
	expect_rule(t, 0x140444, .cfa = CFI_CFA_SP, .cfa_off = 64, .ra = CFI_RA_LR);
	expect_rule(t, 0x1fffff, .cfa = CFI_CFA_SP, .cfa_off = 64, .ra = CFI_RA_LR);
	expect_none(t, 0x200000);
	cfi_table_free(t);
}

Test(cfi, set_loc_pcrel_and_backwards)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);
	struct buf insns = {};

	/* DW_CFA_set_loc uses the FDE encoding (pcrel|sdata4): encode relative to its field. */
	size_t fde_off = b.n;
	/* length(4) id(4) pc(4) range(4) auglen(1) = 17 bytes before the instructions. */
	u8(&insns, 0x01);
	{
		uint64_t field = EH_ADDR + fde_off + 17 + 1;
		u32(&insns, (uint32_t)(0x1008 - field));
	}
	u8(&insns, 0x0e);
	u8(&insns, 24);
	fde(&b, cie, 0x1000, 0x10, insns.d, insns.n);
	buf_free(&insns);

	/* set_loc going backwards: malformed. */
	fde_off = b.n;
	u8(&insns, 0x41);
	u8(&insns, 0x01);
	{
		uint64_t field = EH_ADDR + fde_off + 17 + 2;
		u32(&insns, (uint32_t)(0x1fff - field));
	}
	fde(&b, cie, 0x2000, 0x10, insns.d, insns.n);
	buf_free(&insns);

	/* Advancing past the end ends the program: the invalid opcode after it is never seen. */
	fde(&b, cie, 0x3000, 0x10, B(0x0e, 16, 0x02, 0x40, 0xff));
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1007, X86_ENTRY);
	expect_rule(t, 0x1008, .cfa = CFI_CFA_SP, .cfa_off = 24, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_none(t, 0x2000);
	expect_rule(t, 0x300f, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_none(t, 0x3010);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_malformed, 1);
	cfi_table_free(t);
}

Test(cfi, every_register_rule_opcode)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	fde(&b, cie, 0x1000, 0x100,
	    B(0x12, 7, 0x7e,		    /* def_cfa_sf rsp, -2*-8 = 16 */
	      0x41, 0x13, 0x7d,		    /* 0x1001: def_cfa_offset_sf -3*-8 = 24 */
	      0x41, 0x05, 6, 3,		    /* 0x1002: offset_extended rbp 3*-8 */
	      0x41, 0x11, 6, 2,		    /* 0x1003: offset_extended_sf rbp 2*-8 */
	      0x41, 0x14, 6, 1,		    /* 0x1004: val_offset rbp 1*-8 */
	      0x41, 0x15, 6, 0x7f,	    /* 0x1005: val_offset_sf rbp -1*-8 */
	      0x41, 0x2f, 6, 2,		    /* 0x1006: GNU_negative_offset_extended: +16 */
	      0x41, 0x07, 6,		    /* 0x1007: undefined rbp */
	      0x41, 0x08, 6,		    /* 0x1008: same_value rbp */
	      0x41, 0x09, 6, 3,		    /* 0x1009: register rbp in rbx */
	      0x41, 0x10, 6, 2, 0x76, 0x00, /* 0x100a: expression rbp (breg6 0) */
	      0x41, 0x16, 16, 1, 0x9c,	    /* 0x100b: val_expression RA */
	      0x41, 0x90, 1, 0x09, 16, 0,   /* 0x100c: RA c-8 again; register RA in rax */
	      0x41, 0x90, 1, 0x2e, 0x20, 0x00, 0x83, 5, /* 0x100d: args_size, nop, rbx: ignored */
	      0x41, 0x0c, 10, 0,	       /* 0x100e: CFA r10+0: unsupported register */
	      0x41, 0x0f, 3, 0x76, 0x78, 0x06, /* 0x100f: CFA expression breg6 -8; deref */
	      0x41, 0x0d, 7,		       /* 0x1010: def_cfa_register keeps the offset */
	      0x41, 0x0e, 0x80, 0x80, 0x80, 0x80, 0x10)); /* 0x1011: 2^32: out of range */
	struct cfi_table *t = build_eh(EM_X86_64, &b);

#define RA8 .ra = CFI_RA_CFA_OFFSET, .ra_off = -8
	expect_rule(t, 0x1000, .cfa = CFI_CFA_SP, .cfa_off = 16, RA8);
	expect_rule(t, 0x1001, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8);
	expect_rule(t, 0x1002, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_CFA_OFFSET,
		    .fp_off = -24);
	expect_rule(t, 0x1003, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_CFA_OFFSET,
		    .fp_off = -16);
	expect_rule(t, 0x1004, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_VAL_OFFSET,
		    .fp_off = -8);
	expect_rule(t, 0x1005, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_VAL_OFFSET,
		    .fp_off = 8);
	expect_rule(t, 0x1006, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_CFA_OFFSET,
		    .fp_off = 16);
	expect_rule(t, 0x1007, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_UNDEFINED);
	expect_rule(t, 0x1008, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_SAME);
	expect_rule(t, 0x1009, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x100a, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x100b, .cfa = CFI_CFA_SP, .cfa_off = 24, .ra = CFI_RA_UNSUPPORTED,
		    .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x100c, .cfa = CFI_CFA_SP, .cfa_off = 24, .ra = CFI_RA_UNSUPPORTED,
		    .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x100d, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8, .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x100e, .cfa = CFI_CFA_UNSUPPORTED, RA8, .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x100f, .cfa = CFI_CFA_UNSUPPORTED, RA8, .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x1010, .cfa = CFI_CFA_SP, .cfa_off = 0, RA8, .fp = CFI_FP_UNSUPPORTED);
	expect_rule(t, 0x1011, .cfa = CFI_CFA_UNSUPPORTED, RA8, .fp = CFI_FP_UNSUPPORTED);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_malformed, 0);
	cfi_table_free(t);
}

Test(cfi, bad_opcodes_skip_fde)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	fde(&b, cie, 0x1000, 0x10, B(0x3f));			     /* unknown */
	fde(&b, cie, 0x2000, 0x10, B(0x1d, 0, 0, 0, 0, 0, 0, 0, 1)); /* MIPS_advance_loc8 */
	fde(&b, cie, 0x3000, 0x10, B(0x2d));			     /* negate_ra_state on x86_64 */
	fde(&b, cie, 0x4000, 0x10,
	    B(0x0e, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	      0x01)); /* 11-byte uleb */
	fde(&b, cie, 0x5000, 0x10,
	    B(0x0e, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	      0x02));					 /* 10 bytes but bit 64 set */
	fde(&b, cie, 0x6000, 0x10, B(0x0f, 0x20, 0x01)); /* block past the end */
	/* Operand cut off by the end of the FDE: 17 header bytes + 3 = no padding to hide it. */
	fde(&b, cie, 0x7000, 0x10, B(0x0e, 0x80, 0x80));
	fde(&b, cie, 0x8000, 0x10,
	    B(0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	      0x01));				 /* offset 2^64-1: not an offset */
	fde(&b, cie, 0x9000, 0x10, B(0x0e, 16)); /* fine */
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	for (uint64_t pc = 0x1000; pc <= 0x8000; pc += 0x1000)
		expect_none(t, pc);
	expect_rule(t, 0x9000, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	const struct cfi_table_stats *st = cfi_table_get_stats(t);
	cr_expect_eq(st->n_fdes_malformed, 7);
	cr_expect_eq(st->n_fdes_unsupported, 1);
	cr_expect_eq(st->n_fdes_used, 1);
	cfi_table_free(t);
}

Test(cfi, instruction_limit)
{
	_cleanup_(buf_free) struct buf b = {};
	struct buf nops = {};
	size_t cie = x86_cie(&b);

	for (int i = 0; i < CFI_MAX_INSNS_PER_FDE + 8; i++)
		u8(&nops, 0);
	fde(&b, cie, 0x1000, 0x10, nops.d, nops.n);
	fde(&b, cie, 0x2000, 0x10, nops.d, 100);
	buf_free(&nops);
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_none(t, 0x1000);
	expect_rule(t, 0x2000, X86_ENTRY);
	cfi_table_free(t);
}

/*
 * CIE thrash: two CIEs at offsets that share a slot of the direct-mapped CIE cache (slot =
 * offset / 4 % CFI_CIE_CACHE_SIZE), each with an initial program just under
 * CFI_MAX_INSNS_PER_FDE, and FDEs that alternate between them, so every FDE re-runs a whole CIE
 * program. The work grows with FDEs x CIE length, both with the file: quadratic, unless
 * CFI_MAX_INSNS_TOTAL stops it.
 */
#define THRASH_CIE_BYTES (4 * CFI_CIE_CACHE_SIZE * 235) /* 60160: same slot back to back */

static size_t thrash_cie(struct buf *b)
{
	/* 17 bytes of CIE fields + a 5-byte x86 prologue + DW_CFA_nop up to THRASH_CIE_BYTES. */
	static uint8_t insns[THRASH_CIE_BYTES - 17];
	size_t off = b->n;

	memset(insns, 0, sizeof(insns));
	memcpy(insns, (const uint8_t[]){0x0c, 7, 8, 0x90, 1}, 5);
	add_cie(b, &(struct cie_desc){.aug = "zR",
				      .caf = 1,
				      .daf = -8,
				      .ra = 16,
				      .augdata = B(0x1b),
				      .insns = insns,
				      .insns_len = sizeof(insns)});
	cr_assert_eq(b->n - off, THRASH_CIE_BYTES);
	return off;
}

/* CIE A, CIE B in the same cache slot, then n FDEs: alternating A/B, or all on A. */
static void thrash_eh(struct buf *b, size_t n, bool alternate)
{
	size_t a = thrash_cie(b), c = thrash_cie(b);

	cr_assert_eq((a / 4) % CFI_CIE_CACHE_SIZE, (c / 4) % CFI_CIE_CACHE_SIZE);
	for (size_t i = 0; i < n; i++)
		fde(b, alternate && i % 2 ? c : a, 0x100000 + 0x10 * i, 0x10, NONE);
}

/* Each CIE miss runs about this many instructions; the limit allows this many misses. */
#define THRASH_INSNS_PER_MISS (THRASH_CIE_BYTES - 17 - 5 + 2)
#define THRASH_MAX_MISSES (CFI_MAX_INSNS_TOTAL / THRASH_INSNS_PER_MISS)

Test(cfi, cie_thrash_stops_at_total_instruction_limit, .timeout = 120)
{
	_cleanup_(buf_free) struct buf b = {};
	struct cfi_table *t = NULL;
	int r;

	/* Four times what the limit allows: ~4 * 2^26 instructions without it. */
	thrash_eh(&b, 4 * THRASH_MAX_MISSES, true);
	r = build_eh_ex(EM_X86_64, &b, 0, &t);
	cr_assert_eq(r, -E2BIG, "cfi_table_build: %d (%s)", r, strerror(-r));
	cr_assert_null(t);
}

Test(cfi, cie_thrash_below_the_limit_builds, .timeout = 120)
{
	_cleanup_(buf_free) struct buf b = {};
	struct cfi_table *t;
	const struct cfi_table_stats *st;
	const size_t n = THRASH_MAX_MISSES / 2;

	/* Half the misses the limit allows: a (slow) table, every FDE a CIE cache miss. */
	thrash_eh(&b, n, true);
	t = build_eh(EM_X86_64, &b);
	st = cfi_table_get_stats(t);
	cr_expect_eq(st->n_fdes, n);
	cr_expect_eq(st->n_fdes_used, n);
	cr_expect_eq(st->n_cies, n, "every FDE should have missed the CIE cache");
	expect_rule(t, 0x100000, X86_ENTRY);
	expect_rule(t, 0x100000 + 0x10 * (n - 1), X86_ENTRY);
	cfi_table_free(t);

	/* The same CIEs with many more FDEs that all share one: one CIE run, a table. */
	buf_free(&b);
	thrash_eh(&b, 8 * THRASH_MAX_MISSES, false);
	t = build_eh(EM_X86_64, &b);
	st = cfi_table_get_stats(t);
	cr_expect_eq(st->n_fdes_used, 8 * THRASH_MAX_MISSES);
	cr_expect_eq(st->n_cies, 1);
	expect_rule(t, 0x100000 + 0x10 * (8 * THRASH_MAX_MISSES - 1), X86_ENTRY);
	cfi_table_free(t);
}

/* ---- x86_64 PLT expression --------------------------------------------------------------- */

static struct cfi_table *plt_table(uint16_t machine, uint8_t lit)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b);

	/* binutils' lazy PLT FDE: push at +6 of each 16-byte slot; .plt.sec variants use lit10. */
	fde(&b, cie, 0x2000, 0x40,
	    B(0x0e, 16, 0x46, 0x0e, 24, 0x4a, 0x0f, 11, 0x77, 8, 0x80, 0, 0x3f, 0x1a, lit, 0x2a,
	      0x33, 0x24, 0x22));
	return build_eh(machine, &b);
}

Test(cfi, plt_expression_recognised)
{
	struct cfi_table *t = plt_table(EM_X86_64, 0x3b);

	expect_rule(t, 0x2000, .cfa = CFI_CFA_SP, .cfa_off = 16, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_rule(t, 0x2006, .cfa = CFI_CFA_SP, .cfa_off = 24, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	expect_rule(t, 0x2010, .cfa = CFI_CFA_PLT_X86_64, .cfa_off = 8, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -8);
	struct cfi_rule r;
	cr_assert_eq(cfi_table_lookup(t, 0x203f, &r), 0);
	cr_expect_eq(r.cfa_plt_threshold, 11);
	cfi_table_free(t);

	t = plt_table(EM_X86_64, 0x3a);
	cr_assert_eq(cfi_table_lookup(t, 0x2010, &r), 0);
	cr_expect_eq(r.cfa_kind, CFI_CFA_PLT_X86_64);
	cr_expect_eq(r.cfa_plt_threshold, 10);
	cfi_table_free(t);

	/* Any other literal is a different expression. */
	t = plt_table(EM_X86_64, 0x3c);
	cr_assert_eq(cfi_table_lookup(t, 0x2010, &r), 0);
	cr_expect_eq(r.cfa_kind, CFI_CFA_UNSUPPORTED);
	cfi_table_free(t);
}

/* ---- augmentations ----------------------------------------------------------------------- */

Test(cfi, augmentation_personality_lsda_signal)
{
	_cleanup_(buf_free) struct buf b = {};
	struct buf aug = {};
	size_t cie_p4, cie_p8, cie_pu, cie_pa, cie_s, cie_unknown, cie_b;

	/* "zPLR": personality indirect|pcrel|sdata4, LSDA pcrel|sdata4, FDE pcrel|sdata4. */
	cie_p4 = add_cie(&b, &(struct cie_desc){.aug = "zPLR",
						.caf = 1,
						.daf = -8,
						.ra = 16,
						.augdata = B(0x9b, 1, 2, 3, 4, 0x1b, 0x1b),
						.insns = B(0x0c, 7, 8, 0x90, 1)});
	/* personality udata8 */
	cie_p8 = add_cie(&b, &(struct cie_desc){.aug = "zPR",
						.caf = 1,
						.daf = -8,
						.ra = 16,
						.augdata = B(0x04, 1, 2, 3, 4, 5, 6, 7, 8, 0x1b),
						.insns = B(0x0c, 7, 16, 0x90, 1)});
	/* personality uleb128 (3 bytes) */
	cie_pu = add_cie(&b, &(struct cie_desc){.aug = "zPR",
						.caf = 1,
						.daf = -8,
						.ra = 16,
						.augdata = B(0x01, 0x81, 0x82, 0x03, 0x1b),
						.insns = B(0x0c, 7, 24, 0x90, 1)});
	/* personality aligned: padding up to 8 relative to the address, then 8 bytes. */
	{
		/* length 4, id 4, version 1, "zPR\0" 4, caf 1, daf 1, ra 1, auglen 1, penc 1. */
		uint64_t pos = EH_ADDR + b.n + 4 + 4 + 1 + 4 + 1 + 1 + 1 + 1 + 1;
		u8(&aug, 0x50);
		while (pos % 8) {
			u8(&aug, 0xee);
			pos++;
		}
		u64(&aug, 0x1122334455667788);
		u8(&aug, 0x1b);
		cie_pa = add_cie(&b, &(struct cie_desc){.aug = "zPR",
							.caf = 1,
							.daf = -8,
							.ra = 16,
							.augdata = aug.d,
							.augdata_len = aug.n,
							.insns = B(0x0c, 7, 32, 0x90, 1)});
		buf_free(&aug);
	}
	cie_s = add_cie(&b, &(struct cie_desc){.aug = "zRS",
					       .caf = 1,
					       .daf = -8,
					       .ra = 16,
					       .augdata = B(0x1b),
					       .insns = B(0x0c, 7, 8, 0x90, 1)});
	/* An unknown letter after "R": the "z" length skips it. */
	cie_unknown = add_cie(&b, &(struct cie_desc){.aug = "zRX",
						     .caf = 1,
						     .daf = -8,
						     .ra = 16,
						     .augdata = B(0x1b, 0xaa, 0xbb),
						     .insns = B(0x0c, 7, 40, 0x90, 1)});
	cie_b = add_cie(&b, &(struct cie_desc){.aug = "zRB",
					       .caf = 1,
					       .daf = -8,
					       .ra = 16,
					       .augdata = B(0x1b),
					       .insns = B(0x0c, 7, 48, 0x90, 1)});

	add_fde(&b, &(struct fde_desc){.cie = cie_p4,
				       .enc = 0x1b,
				       .pc = 0x1000,
				       .len = 0x10,
				       .z = true,
				       .augdata = B(9, 9, 9, 9)});
	add_fde(&b, &(struct fde_desc){
			.cie = cie_p8, .enc = 0x1b, .pc = 0x2000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie_pu, .enc = 0x1b, .pc = 0x3000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie_pa, .enc = 0x1b, .pc = 0x4000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie_s, .enc = 0x1b, .pc = 0x5000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie_unknown, .enc = 0x1b, .pc = 0x6000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie_b, .enc = 0x1b, .pc = 0x7000, .len = 0x10, .z = true});
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1000, .cfa = CFI_CFA_SP, .cfa_off = 8, RA8);
	expect_rule(t, 0x2000, .cfa = CFI_CFA_SP, .cfa_off = 16, RA8);
	expect_rule(t, 0x3000, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8);
	expect_rule(t, 0x4000, .cfa = CFI_CFA_SP, .cfa_off = 32, RA8);
	expect_rule(t, 0x5000, .cfa = CFI_CFA_SP, .cfa_off = 8, RA8,
		    .flags = CFI_RULE_SIGNAL_FRAME);
	expect_rule(t, 0x6000, .cfa = CFI_CFA_SP, .cfa_off = 40, RA8);
	expect_rule(t, 0x7000, .cfa = CFI_CFA_SP, .cfa_off = 48, RA8);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 7);
	cfi_table_free(t);
}

Test(cfi, augmentation_legacy_eh_and_unknown)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie_eh, cie_bad, cie_v2;

	/* gcc 2.x "eh": an 8-byte EH data pointer, no "z", absptr FDE addresses. */
	cie_eh = add_cie(
	    &b, &(struct cie_desc){
		    .aug = "eh", .caf = 1, .daf = -8, .ra = 16, .insns = B(0x0c, 7, 8, 0x90, 1)});
	/* Without "z" an unknown augmentation hides where the instructions start. */
	cie_bad = add_cie(
	    &b, &(struct cie_desc){
		    .aug = "Q", .caf = 1, .daf = -8, .ra = 16, .insns = B(0x0c, 7, 8, 0x90, 1)});
	cie_v2 = add_cie(&b, &(struct cie_desc){.version = 2,
						.aug = "",
						.caf = 1,
						.daf = -8,
						.ra = 16,
						.insns = B(0x0c, 7, 8, 0x90, 1)});
	add_fde(&b, &(struct fde_desc){.cie = cie_eh, .enc = 0x00, .pc = 0x1000, .len = 0x10});
	add_fde(&b, &(struct fde_desc){.cie = cie_bad, .enc = 0x00, .pc = 0x2000, .len = 0x10});
	add_fde(&b, &(struct fde_desc){.cie = cie_v2, .enc = 0x00, .pc = 0x3000, .len = 0x10});
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1000, X86_ENTRY);
	expect_none(t, 0x2000);
	expect_none(t, 0x3000);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_unsupported, 2);
	cfi_table_free(t);
}

/* ---- pointer encodings ------------------------------------------------------------------- */

/* pcrel encodings get code after .eh_frame so that unsigned offsets can reach it too. */
static uint64_t encoding_pc(uint8_t enc)
{
	return (enc & 0x70) == 0x10 ? EH_ADDR + 0x4000 : 0x1000;
}

static int build_with_encoding(uint8_t enc, uint64_t data_base, struct cfi_table **ret)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = add_cie(&b, &(struct cie_desc){.aug = "zR",
						    .caf = 1,
						    .daf = -8,
						    .ra = 16,
						    .augdata = B(enc),
						    .insns = B(0x0c, 7, 8, 0x90, 1)});
	add_fde(&b, &(struct fde_desc){.cie = cie,
				       .enc = enc,
				       .pc = encoding_pc(enc),
				       .len = 0x10,
				       .z = true,
				       .data_base = data_base});
	return build_eh_ex(EM_X86_64, &b, data_base, ret);
}

Test(cfi, pointer_encodings)
{
	static const uint8_t good[] = {
	    0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x09, 0x0a, 0x0b, 0x0c, /* absolute */
	    0x10, 0x11, 0x12, 0x13, 0x14, 0x19, 0x1a, 0x1b, 0x1c,	/* pcrel */
	    0x50, 0x53,							/* aligned */
	};

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct cfi_table *t = NULL;
		cr_assert_eq(build_with_encoding(good[i], 0, &t), 0);
		uint64_t pc = encoding_pc(good[i]);
		cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 1, "encoding %#x", good[i]);
		expect_rule(t, pc, X86_ENTRY);
		expect_rule(t, pc + 0xf, X86_ENTRY);
		expect_none(t, pc + 0x10);
		expect_none(t, pc - 1);
		cfi_table_free(t);
	}

	/* datarel needs a base. */
	struct cfi_table *t = NULL;
	cr_assert_eq(build_with_encoding(0x3b, 0x800, &t), 0);
	expect_rule(t, 0x1000, X86_ENTRY);
	cfi_table_free(t);

	static const struct {
		uint8_t enc;
		bool unsupported; /* else malformed */
	} bad[] = {
	    {0x3b, true},				 /* datarel without data_base */
	    {0x23, true},				 /* textrel */
	    {0x43, true},				 /* funcrel */
	    {0x9b, true},				 /* indirect */
	    {0x05, false},				 /* no such format */
	    {0x0d, false}, {0x0f, false}, {0x63, false}, /* no such application */
	    {0xff, false},				 /* omit */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		t = NULL;
		cr_assert_eq(build_with_encoding(bad[i].enc, 0, &t), 0);
		const struct cfi_table_stats *st = cfi_table_get_stats(t);
		cr_expect_eq(st->n_fdes_used, 0, "encoding %#x", bad[i].enc);
		if (bad[i].unsupported)
			cr_expect_eq(st->n_fdes_unsupported, 1, "encoding %#x", bad[i].enc);
		else
			cr_expect_eq(st->n_fdes_malformed, 1, "encoding %#x", bad[i].enc);
		expect_none(t, 0x1000);
		cfi_table_free(t);
	}
}

Test(cfi, dwarf64_lengths)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = add_cie(&b, &(struct cie_desc){.aug = "zR",
						    .caf = 1,
						    .daf = -8,
						    .ra = 16,
						    .augdata = B(0x1b),
						    .insns = B(0x0c, 7, 8, 0x90, 1),
						    .dwarf64 = true});
	add_fde(&b, &(struct fde_desc){.cie = cie,
				       .enc = 0x1b,
				       .pc = 0x1000,
				       .len = 0x10,
				       .z = true,
				       .insns = B(0x44, 0x0e, 16),
				       .dwarf64 = true});
	/* A 32-bit FDE may use a 64-bit CIE. */
	add_fde(&b,
		&(struct fde_desc){.cie = cie, .enc = 0x1b, .pc = 0x2000, .len = 0x10, .z = true});
	struct cfi_table *t = build_eh(EM_X86_64, &b);

	expect_rule(t, 0x1003, X86_ENTRY);
	expect_rule(t, 0x1004, .cfa = CFI_CFA_SP, .cfa_off = 16, RA8);
	expect_rule(t, 0x2000, X86_ENTRY);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 2);
	cfi_table_free(t);
}

/* ---- .debug_frame ------------------------------------------------------------------------ */

Test(cfi, debug_frame_versions_and_priority)
{
	_cleanup_(buf_free) struct buf eh = {}, dbg = {};
	size_t c1, c3, c4, c64;

	fde(&eh, x86_cie(&eh), 0x1000, 0x10, NONE);

	c1 = add_cie(&dbg, &(struct cie_desc){.version = 1,
					      .aug = "",
					      .caf = 1,
					      .daf = -8,
					      .ra = 16,
					      .insns = B(0x0c, 7, 16, 0x90, 1),
					      .debug_frame = true});
	c3 = add_cie(&dbg, &(struct cie_desc){.version = 3,
					      .aug = "",
					      .caf = 1,
					      .daf = -8,
					      .ra = 16,
					      .insns = B(0x0c, 7, 24, 0x90, 1),
					      .debug_frame = true});
	c4 = add_cie(&dbg, &(struct cie_desc){.version = 4,
					      .aug = "",
					      .caf = 1,
					      .daf = -8,
					      .ra = 16,
					      .insns = B(0x0c, 7, 32, 0x90, 1),
					      .debug_frame = true});
	c64 = add_cie(&dbg, &(struct cie_desc){.version = 4,
					       .aug = "",
					       .caf = 1,
					       .daf = -8,
					       .ra = 16,
					       .insns = B(0x0c, 7, 40, 0x90, 1),
					       .debug_frame = true,
					       .dwarf64 = true});
	/* Overlaps the .eh_frame FDE: .eh_frame wins, the whole FDE is dropped. */
	add_fde(&dbg,
		&(struct fde_desc){.cie = c1, .pc = 0x1008, .len = 0x10, .debug_frame = true});
	add_fde(&dbg,
		&(struct fde_desc){.cie = c1, .pc = 0x2000, .len = 0x10, .debug_frame = true});
	add_fde(&dbg,
		&(struct fde_desc){.cie = c3, .pc = 0x3000, .len = 0x10, .debug_frame = true});
	add_fde(&dbg, &(struct fde_desc){.cie = c4,
					 .pc = 0x4000,
					 .len = 0x10,
					 .debug_frame = true,
					 .insns = B(0x41, 0x0e, 8)});
	add_fde(&dbg,
		&(struct fde_desc){
		    .cie = c64, .pc = 0x5000, .len = 0x10, .debug_frame = true, .dwarf64 = true});
	/* Discarded by the linker: address 0. */
	add_fde(&dbg, &(struct fde_desc){.cie = c1, .pc = 0, .len = 0x10, .debug_frame = true});
	/* A .eh_frame-style relative CIE pointer is wrong here: points at no CIE. */
	add_fde(&dbg, &(struct fde_desc){
			  .cie = dbg.n - c1, .pc = 0x6000, .len = 0x10, .debug_frame = true});

	struct cfi_sections s = {
	    .eh_frame = {.data = eh.d, .size = eh.n, .addr = EH_ADDR},
	    .debug_frame = {.data = dbg.d, .size = dbg.n},
	};
	struct cfi_table *t = NULL;
	cr_assert_eq(cfi_table_build(EM_X86_64, &s, &t), 0);

	expect_rule(t, 0x100f, X86_ENTRY);
	expect_none(t, 0x1010);
	expect_none(t, 0x1017);
	expect_rule(t, 0x2000, .cfa = CFI_CFA_SP, .cfa_off = 16, RA8);
	expect_rule(t, 0x3000, .cfa = CFI_CFA_SP, .cfa_off = 24, RA8);
	expect_rule(t, 0x4000, .cfa = CFI_CFA_SP, .cfa_off = 32, RA8);
	expect_rule(t, 0x4001, .cfa = CFI_CFA_SP, .cfa_off = 8, RA8);
	expect_rule(t, 0x5000, .cfa = CFI_CFA_SP, .cfa_off = 40, RA8);
	expect_none(t, 0);
	expect_none(t, 0x6000);
	const struct cfi_table_stats *st = cfi_table_get_stats(t);
	cr_expect_eq(st->n_fdes, 8);
	cr_expect_eq(st->n_fdes_used, 5);
	cr_expect_eq(st->n_fdes_overlap, 1);
	cr_expect_eq(st->n_fdes_empty, 1);
	cr_expect_eq(st->n_fdes_malformed, 1);
	cfi_table_free(t);

	/* .debug_frame alone. */
	s.eh_frame = (struct cfi_section){};
	cr_assert_eq(cfi_table_build(EM_X86_64, &s, &t), 0);
	expect_rule(t, 0x1008, .cfa = CFI_CFA_SP, .cfa_off = 16, RA8);
	cfi_table_free(t);
}

/* ---- malformed input --------------------------------------------------------------------- */

Test(cfi, malformed_sections)
{
	_cleanup_(buf_free) struct buf b = {};
	struct cfi_table *t = NULL;
	size_t cie = x86_cie(&b), good_end;

	fde(&b, cie, 0x1000, 0x10, NONE);
	good_end = b.n;

	/* Truncated CIE: nothing usable, the build still succeeds with an empty table. */
	struct buf half = {.d = b.d, .n = 10};
	cr_assert_eq(build_eh_ex(EM_X86_64, &half, 0, &t), 0);
	cr_expect_eq(cfi_table_n_rows(t), 0);
	cr_expect_eq(cfi_table_get_stats(t)->n_entries_truncated, 1);
	expect_none(t, 0x1000);
	cfi_table_free(t);

	/* A length past the end after a good FDE: the good one survives. */
	u32(&b, 0x1000);
	u32(&b, 0);
	cr_assert_eq(build_eh_ex(EM_X86_64, &b, 0, &t), 0);
	expect_rule(t, 0x1000, X86_ENTRY);
	cr_expect_eq(cfi_table_get_stats(t)->n_entries_truncated, 1);
	cfi_table_free(t);
	b.n = good_end;

	/* A 64-bit length that would wrap. */
	u32(&b, UINT32_MAX);
	u64(&b, UINT64_MAX - 4);
	cr_assert_eq(build_eh_ex(EM_X86_64, &b, 0, &t), 0);
	expect_rule(t, 0x1000, X86_ENTRY);
	cfi_table_free(t);
	b.n = good_end;

	/* Bad CIE pointers: before the section, at an FDE, into the middle of the CIE. */
	size_t f1 = b.n;
	add_fde(&b,
		&(struct fde_desc){.cie = 0, .enc = 0x1b, .pc = 0x2000, .len = 0x10, .z = true});
	{
		uint32_t id = f1 + 4 + 64; /* points before offset 0 */
		memcpy(b.d + f1 + 4, &id, 4);
	}
	add_fde(&b,
		&(struct fde_desc){.cie = f1, .enc = 0x1b, .pc = 0x3000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie + 2, .enc = 0x1b, .pc = 0x4000, .len = 0x10, .z = true});
	size_t f4 = b.n;
	add_fde(&b,
		&(struct fde_desc){.cie = 0, .enc = 0x1b, .pc = 0x5000, .len = 0x10, .z = true});
	{
		uint32_t id = 0xfffffff0; /* huge */
		memcpy(b.d + f4 + 4, &id, 4);
	}
	/* An FDE whose CIE has a zero code alignment factor, and one with an 11-byte uleb. */
	size_t c0 = add_cie(&b, &(struct cie_desc){.aug = "zR",
						   .caf = 0,
						   .daf = -8,
						   .ra = 16,
						   .augdata = B(0x1b),
						   .insns = B(0x0c, 7, 8)});
	add_fde(&b,
		&(struct fde_desc){.cie = c0, .enc = 0x1b, .pc = 0x6000, .len = 0x10, .z = true});
	/* FDE augmentation length past its end. */
	add_fde(
	    &b,
	    &(struct fde_desc){
		.cie = cie, .enc = 0x1b, .pc = 0x7000, .len = 0x10, .z = true, .augdata = B(1)});
	b.d[b.n - 4] = 0x7f; /* first byte after the FDE header: the augmentation length */
	u32(&b, 0);

	cr_assert_eq(build_eh_ex(EM_X86_64, &b, 0, &t), 0);
	expect_rule(t, 0x1000, X86_ENTRY);
	for (uint64_t pc = 0x2000; pc <= 0x7000; pc += 0x1000)
		expect_none(t, pc);
	cr_expect_geq(cfi_table_get_stats(t)->n_fdes_malformed, 6);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_used, 1);
	cfi_table_free(t);
}

Test(cfi, wrapping_range_and_pc_filter)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = add_cie(&b, &(struct cie_desc){.aug = "zR",
						    .caf = 1,
						    .daf = -8,
						    .ra = 16,
						    .augdata = B(0x04),
						    .insns = B(0x0c, 7, 8, 0x90, 1)});
	add_fde(&b, &(struct fde_desc){
			.cie = cie, .enc = 0x04, .pc = UINT64_MAX - 8, .len = 0x10, .z = true});
	add_fde(&b,
		&(struct fde_desc){.cie = cie, .enc = 0x04, .pc = 0x1000, .len = 0x10, .z = true});
	add_fde(&b, &(struct fde_desc){
			.cie = cie, .enc = 0x04, .pc = 0x7fff00000000, .len = 0x10, .z = true});
	struct cfi_sections s = {.eh_frame = {.data = b.d, .size = b.n, .addr = EH_ADDR}};
	struct cfi_table *t = NULL;

	/* Without a code range, FDEs 128 TiB apart cannot share a 32-bit row table. */
	cr_expect_eq(cfi_table_build(EM_X86_64, &s, &t), -EFBIG);
	cr_expect_null(t);

	s.pc_lo = 0x1000;
	s.pc_hi = 0x2000;
	cr_assert_eq(cfi_table_build(EM_X86_64, &s, &t), 0);
	expect_rule(t, 0x1000, X86_ENTRY);
	expect_none(t, 0x7fff00000000);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_malformed, 1); /* the wrapping range */
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_empty, 1);	   /* outside the code */
	cfi_table_free(t);
}

Test(cfi, misuse)
{
	struct cfi_sections s = {};
	struct cfi_table *t = NULL;
	uint8_t byte = 0;
	struct cfi_rule r;

	cr_expect_eq(cfi_table_build(EM_X86_64, &s, &t), -ENODATA);
	s.eh_frame = (struct cfi_section){.data = &byte, .size = 1};
	cr_expect_eq(cfi_table_build(EM_386, &s, &t), -EINVAL);
	cr_expect_eq(cfi_table_build(EM_X86_64, NULL, &t), -EINVAL);
	cr_expect_eq(cfi_table_lookup(NULL, 0, &r), -EINVAL);
	cr_expect_eq(cfi_table_n_rows(NULL), 0);
	cr_expect_eq(cfi_table_size_bytes(NULL), 0);
	cfi_table_free(NULL);
	cr_expect_eq(cfi_table_build_from_elf_fd(-1, &t), -EINVAL);

	/* An empty .eh_frame (just a terminator) gives an empty table. */
	uint32_t zero = 0;
	s.eh_frame = (struct cfi_section){.data = (const uint8_t *)&zero, .size = 4};
	cr_assert_eq(cfi_table_build(EM_X86_64, &s, &t), 0);
	cr_expect_eq(cfi_table_n_rows(t), 0);
	cr_expect_eq(cfi_table_lookup(t, 0, &r), -ENOENT);
	cfi_table_free(t);
}

Test(cfi, eh_frame_hdr)
{
	_cleanup_(buf_free) struct buf h = {};
	struct cfi_eh_frame_hdr hdr;

	/* version 1, eh_frame_ptr pcrel|sdata4, fde_count udata4, table datarel|sdata4 */
	u8(&h, 1);
	u8(&h, 0x1b);
	u8(&h, 0x03);
	u8(&h, 0x3b);
	u32(&h, (uint32_t)(EH_ADDR - (0x9000 + 4)));
	u32(&h, 2);
	struct cfi_section sec = {.data = h.d, .size = h.n, .addr = 0x9000};
	cr_assert_eq(cfi_eh_frame_hdr_parse(&sec, &hdr), 0);
	cr_expect_eq(hdr.eh_frame_addr, EH_ADDR);
	cr_expect_eq(hdr.fde_count, 2);
	cr_expect_eq(hdr.table_enc, 0x3b);

	sec.size = 6;
	cr_expect_eq(cfi_eh_frame_hdr_parse(&sec, &hdr), -EBADMSG);
	h.d[0] = 2;
	sec.size = h.n;
	cr_expect_eq(cfi_eh_frame_hdr_parse(&sec, &hdr), -EBADMSG);
	h.d[0] = 1;
	h.d[1] = 0x33; /* datarel: relative to the header itself */
	memcpy(h.d + 4, &(uint32_t){0x100}, 4);
	cr_assert_eq(cfi_eh_frame_hdr_parse(&sec, &hdr), 0);
	cr_expect_eq(hdr.eh_frame_addr, 0x9100);
	h.d[1] = 0x23; /* textrel */
	cr_expect_eq(cfi_eh_frame_hdr_parse(&sec, &hdr), -EBADMSG);

	/* Checked against the .eh_frame it comes with. */
	h.d[1] = 0x1b;
	memcpy(h.d + 4, &(uint32_t){(uint32_t)(EH_ADDR - (0x9000 + 4))}, 4);
	_cleanup_(buf_free) struct buf b = {};
	fde(&b, x86_cie(&b), 0x1000, 0x10, NONE);
	struct cfi_sections s = {
	    .eh_frame_hdr = sec,
	    .eh_frame = {.data = b.d, .size = b.n, .addr = EH_ADDR},
	};
	struct cfi_table *t = NULL;
	cr_assert_eq(cfi_table_build(EM_X86_64, &s, &t), 0);
	cr_expect_eq(cfi_table_get_stats(t)->hdr_fde_count, 2);
	cr_expect_not(cfi_table_get_stats(t)->hdr_mismatch);
	cfi_table_free(t);
	s.eh_frame.addr += 8;
	cr_assert_eq(cfi_table_build(EM_X86_64, &s, &t), 0);
	cr_expect(cfi_table_get_stats(t)->hdr_mismatch);
	cfi_table_free(t);
}

/* Deterministic mutation fuzzing: whatever the bytes, build and lookups must not misbehave. */
static uint64_t rng_state = 0x9e3779b97f4a7c15;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fuzz_one(uint16_t machine, const uint8_t *orig, size_t n, int rounds)
{
	uint8_t *m = malloc(n);

	cr_assert(m);
	for (int i = 0; i < rounds; i++) {
		size_t len = n;
		struct cfi_table *t = NULL;
		struct cfi_rule r;

		memcpy(m, orig, n);
		for (int k = 0, flips = 1 + rng() % 8; k < flips; k++)
			m[rng() % n] = rng();
		if (rng() % 4 == 0)
			len = rng() % n;
		struct cfi_sections s = {.eh_frame = {.data = m, .size = len, .addr = EH_ADDR},
					 .debug_frame = {.data = m, .size = len}};
		int ret = cfi_table_build(machine, &s, &t);
		cr_assert(ret == 0 || ret == -EFBIG || ret == -E2BIG, "build: %d", ret);
		for (int k = 0; t && k < 64; k++)
			(void)cfi_table_lookup(t, rng() % 0x10000, &r);
		cfi_table_free(t);
	}
	free(m);
}

Test(cfi, fuzz_hand_made)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = x86_cie(&b), cie2;

	fde(&b, cie, 0x1000, 0x40,
	    B(0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x0a, 0x12, 7, 0x7e, 0x0b, 0x02, 0x10, 0x0f,
	      3, 0x76, 0x78, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00));
	cie2 = add_cie(&b, &(struct cie_desc){.aug = "zPLR",
					      .caf = 1,
					      .daf = -8,
					      .ra = 16,
					      .augdata = B(0x9b, 1, 2, 3, 4, 0x1b, 0x1b),
					      .insns = B(0x0c, 7, 8, 0x90, 1)});
	add_fde(&b, &(struct fde_desc){.cie = cie2,
				       .enc = 0x1b,
				       .pc = 0x2000,
				       .len = 0x10,
				       .z = true,
				       .augdata = B(9, 9, 9, 9),
				       .insns = B(0x41, 0x0e, 16, 0x05, 6, 3, 0x2f, 6, 2)});
	fuzz_one(EM_X86_64, b.d, b.n, 20000);
	fuzz_one(EM_AARCH64, b.d, b.n, 5000);
}

/* ---- aarch64 ----------------------------------------------------------------------------- */

static struct cfi_table *a64_pac_table(void)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = a64_cie(&b);

	/*
	 * paciasp; stp x29, x30, [sp, #-32]!; mov x29, sp; ...; ldp; autiasp; ret — with a
	 * remember/restore around the epilogue as gcc emits for a mid-function return.
	 */
	fde(&b, cie, 0x2000, 0x40,
	    B(0x41, 0x2d,			   /* 0x2004: RA signed */
	      0x41, 0x0e, 32, 0x9d, 4, 0x9e, 3,	   /* 0x2008: sp+32, x29 c-32, x30 c-24 */
	      0x41, 0x0c, 29, 32,		   /* 0x200c: CFA x29+32 */
	      0x41, 0x0a, 0xde, 0xdd, 0x0c, 31, 0, /* 0x2010: remember; epilogue */
	      0x41, 0x2d,			   /* 0x2014: autiasp: RA no longer signed */
	      0x41, 0x0b));			   /* 0x2018: back to the body (signed again) */
	return build_eh(EM_AARCH64, &b);
}

Test(cfi, aarch64_lr_and_ra_sign_state)
{
	struct cfi_table *t = a64_pac_table();

	expect_rule(t, 0x2000, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_LR);
	expect_rule(t, 0x2004, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_LR,
		    .flags = CFI_RULE_RA_SIGNED);
	expect_rule(t, 0x2008, .cfa = CFI_CFA_SP, .cfa_off = 32, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -24, .fp = CFI_FP_CFA_OFFSET, .fp_off = -32,
		    .flags = CFI_RULE_RA_SIGNED);
	expect_rule(t, 0x200c, .cfa = CFI_CFA_FP, .cfa_off = 32, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -24, .fp = CFI_FP_CFA_OFFSET, .fp_off = -32,
		    .flags = CFI_RULE_RA_SIGNED);
	expect_rule(t, 0x2010, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_LR,
		    .flags = CFI_RULE_RA_SIGNED);
	expect_rule(t, 0x2014, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_LR);
	expect_rule(t, 0x2018, .cfa = CFI_CFA_FP, .cfa_off = 32, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -24, .fp = CFI_FP_CFA_OFFSET, .fp_off = -32,
		    .flags = CFI_RULE_RA_SIGNED);
	expect_rule(t, 0x203f, .cfa = CFI_CFA_FP, .cfa_off = 32, .ra = CFI_RA_CFA_OFFSET,
		    .ra_off = -24, .fp = CFI_FP_CFA_OFFSET, .fp_off = -32,
		    .flags = CFI_RULE_RA_SIGNED);
	expect_none(t, 0x2040);
	cfi_table_free(t);
}

Test(cfi, aarch64_undefined_ra_ends_stack)
{
	_cleanup_(buf_free) struct buf b = {};
	size_t cie = a64_cie(&b);

	fde(&b, cie, 0x700, 0x34, B(0x41, 0x07, 30)); /* _start: mov x29, #0; then x30 undefined */
	struct cfi_table *t = build_eh(EM_AARCH64, &b);

	expect_rule(t, 0x700, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_LR);
	expect_rule(t, 0x704, .cfa = CFI_CFA_SP, .cfa_off = 0, .ra = CFI_RA_UNDEFINED);
	cfi_table_free(t);
}

/* ---- cfi_step ---------------------------------------------------------------------------- */

#define STACK_BASE 0x7ffff000

struct fake_stack {
	uint64_t words[16];
	struct unwind_input in;
};

static void fake_stack_init(struct fake_stack *s, uint16_t machine)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < ARRAY_SIZE(s->words); i++)
		s->words[i] = 0x1000 + i;
	s->in = (struct unwind_input){
	    .e_machine = machine,
	    .stack = (const uint8_t *)s->words,
	    .stack_start = STACK_BASE,
	    .stack_len = sizeof(s->words),
	};
}

Test(cfi, step_x86_64)
{
	struct fake_stack fs;
	struct unwind_regs regs;
	bool end;
	struct cfi_rule rule = {.cfa_kind = CFI_CFA_SP,
				.cfa_offset = 16,
				.ra_kind = CFI_RA_CFA_OFFSET,
				.ra_offset = -8,
				.fp_kind = CFI_FP_CFA_OFFSET,
				.fp_offset = -16};

	fake_stack_init(&fs, EM_X86_64);
	regs = (struct unwind_regs){.pc = 0x401000, .sp = STACK_BASE, .fp = 0x1234};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, true, &end), 0);
	cr_expect_not(end);
	cr_expect_eq(regs.pc, 0x1001);
	cr_expect_eq(regs.sp, STACK_BASE + 16);
	cr_expect_eq(regs.fp, 0x1000);

	/* CFA from rbp, fp unchanged. */
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_FP,
				 .cfa_offset = 16,
				 .ra_kind = CFI_RA_CFA_OFFSET,
				 .ra_offset = -8};
	regs = (struct unwind_regs){.pc = 0x401000, .sp = STACK_BASE, .fp = STACK_BASE + 32};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect_eq(regs.pc, 0x1005);
	cr_expect_eq(regs.sp, STACK_BASE + 48);
	cr_expect_eq(regs.fp, STACK_BASE + 32);

	/* fp == 0 cannot be a CFA base. */
	regs.fp = 0;
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_NO_CFI);

	/* Reads past the copy: truncated, registers untouched. */
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_SP,
				 .cfa_offset = 136,
				 .ra_kind = CFI_RA_CFA_OFFSET,
				 .ra_offset = -8};
	regs = (struct unwind_regs){.pc = 0x401000, .sp = STACK_BASE, .fp = 7};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_TRUNCATED);
	cr_expect_eq(regs.pc, 0x401000);
	cr_expect_eq(regs.sp, STACK_BASE);
	cr_expect_eq(regs.fp, 7);
	rule.cfa_offset = 128; /* RA is the last word: readable */
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect_eq(regs.pc, 0x100f);

	/*
	 * Epilogue after `pop %rbp`: the CFI still names the save slot, now below sp. The
	 * register holds the caller's value already: keep it rather than read the dead slot.
	 */
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_SP,
				 .cfa_offset = 8,
				 .ra_kind = CFI_RA_CFA_OFFSET,
				 .ra_offset = -8,
				 .fp_kind = CFI_FP_CFA_OFFSET,
				 .fp_offset = -16};
	regs = (struct unwind_regs){.pc = 0x401000, .sp = STACK_BASE, .fp = 7};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect_eq(regs.fp, 7);

	/* Saved fp past the end of the copy: truncated, registers untouched. */
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_SP,
				 .cfa_offset = 128,
				 .ra_kind = CFI_RA_CFA_OFFSET,
				 .ra_offset = -8,
				 .fp_kind = CFI_FP_CFA_OFFSET,
				 .fp_offset = 8};
	regs = (struct unwind_regs){.pc = 0x401000, .sp = STACK_BASE, .fp = 7};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_TRUNCATED);
	cr_expect_eq(regs.fp, 7);
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_SP,
				 .cfa_offset = 8,
				 .ra_kind = CFI_RA_CFA_OFFSET,
				 .ra_offset = -8,
				 .fp_kind = CFI_FP_CFA_OFFSET,
				 .fp_offset = -16};

	/* val_offset, undefined fp */
	rule.fp_kind = CFI_FP_VAL_OFFSET;
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect_eq(regs.fp, STACK_BASE + 8 - 16);
	rule.fp_kind = CFI_FP_UNDEFINED;
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect_eq(regs.fp, 0);

	/* The outermost frame. */
	rule =
	    (struct cfi_rule){.cfa_kind = CFI_CFA_SP, .cfa_offset = 8, .ra_kind = CFI_RA_UNDEFINED};
	regs = (struct unwind_regs){.pc = 0x401000, .sp = STACK_BASE, .fp = 0};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect(end);
	cr_expect_eq(regs.pc, 0x401000);

	/* Unsupported CFA or RA: fall back. */
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_UNSUPPORTED, .ra_kind = CFI_RA_CFA_OFFSET};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_NO_CFI);
	cr_expect_not(end);
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_SP, .ra_kind = CFI_RA_UNSUPPORTED};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_NO_CFI);
	rule = (struct cfi_rule){.cfa_kind = CFI_CFA_NONE, .ra_kind = CFI_RA_CFA_OFFSET};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_NO_CFI);
}

Test(cfi, step_plt)
{
	struct fake_stack fs;
	struct unwind_regs regs;
	struct cfi_rule rule;
	bool end;
	struct cfi_table *t = plt_table(EM_X86_64, 0x3b);

	fake_stack_init(&fs, EM_X86_64);
	/* Slot 1 at 0x2010: before its push (offset < 11) only the call's RA is on the stack. */
	cr_assert_eq(cfi_table_lookup(t, 0x2015, &rule), 0);
	regs = (struct unwind_regs){.pc = 0x2015, .sp = STACK_BASE};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, true, &end), 0);
	cr_expect_eq(regs.sp, STACK_BASE + 8);
	cr_expect_eq(regs.pc, 0x1000);
	/* After "push $n" at offset 11: one more word. */
	cr_assert_eq(cfi_table_lookup(t, 0x201b, &rule), 0);
	regs = (struct unwind_regs){.pc = 0x201b, .sp = STACK_BASE};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, true, &end), 0);
	cr_expect_eq(regs.sp, STACK_BASE + 16);
	cr_expect_eq(regs.pc, 0x1001);
	cfi_table_free(t);
}

Test(cfi, step_aarch64)
{
	struct fake_stack fs;
	struct unwind_regs regs;
	struct cfi_rule rule;
	bool end;
	struct cfi_table *t = a64_pac_table();

	fake_stack_init(&fs, EM_AARCH64);
	/* Frame record at sp: x29 then x30 signed with PAC bits in the top. */
	fs.words[0] = STACK_BASE + 0x60;
	fs.words[1] = 0x002a000000401234;

	/* Entry: RA still in x30, fine for the sampled frame only. */
	cr_assert_eq(cfi_table_lookup(t, 0x2000, &rule), 0);
	regs = (struct unwind_regs){.pc = 0x2000, .sp = STACK_BASE, .fp = 0x77, .lr = 0x405678};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, true, &end), 0);
	cr_expect_eq(regs.pc, 0x405678);
	cr_expect_eq(regs.sp, STACK_BASE);
	cr_expect_eq(regs.fp, 0x77);
	regs = (struct unwind_regs){.pc = 0x2000, .sp = STACK_BASE, .fp = 0x77, .lr = 0x405678};
	cr_expect_eq(cfi_step(&rule, &fs.in, &regs, false, &end), UNWIND_STOP_NO_CFI);
	cr_expect_eq(regs.pc, 0x2000);

	/* After paciasp, the live x30 is signed: stripped. */
	cr_assert_eq(cfi_table_lookup(t, 0x2004, &rule), 0);
	regs = (struct unwind_regs){.pc = 0x2004, .sp = STACK_BASE, .lr = 0x0055000000405678};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, true, &end), 0);
	cr_expect_eq(regs.pc, 0x405678);

	/* Body, CFA from x29: the saved signed x30 is stripped, x29 restored. */
	cr_assert_eq(cfi_table_lookup(t, 0x2020, &rule), 0);
	regs = (struct unwind_regs){.pc = 0x2020, .sp = STACK_BASE, .fp = STACK_BASE};
	cr_assert_eq(cfi_step(&rule, &fs.in, &regs, false, &end), 0);
	cr_expect_eq(regs.pc, 0x401234);
	cr_expect_eq(regs.lr, 0x002a000000401234);
	cr_expect_eq(regs.sp, STACK_BASE + 32);
	cr_expect_eq(regs.fp, STACK_BASE + 0x60);
	cfi_table_free(t);
}

/* ---- real binaries against readelf ------------------------------------------------------- */

struct ref_row {
	uint64_t lo, hi;
	unsigned ra_reg; /* the CIE's return address column */
	char cfa[32], ra[32], fp[32];
};

struct ref {
	struct ref_row *rows;
	size_t n, cap;
	size_t n_fdes;
};

static void ref_add(struct ref *r, uint64_t lo, uint64_t hi, unsigned ra_reg, const char *cfa,
		    const char *ra, const char *fp)
{
	if (lo >= hi)
		return;
	if (r->n == r->cap) {
		r->cap = MAX(r->cap * 2, (size_t)1024);
		r->rows = realloc(r->rows, r->cap * sizeof(*r->rows));
		cr_assert(r->rows);
	}
	struct ref_row *row = &r->rows[r->n++];
	*row = (struct ref_row){.lo = lo, .hi = hi, .ra_reg = ra_reg};
	snprintf(row->cfa, sizeof(row->cfa), "%s", cfa);
	snprintf(row->ra, sizeof(row->ra), "%s", ra ?: "");
	snprintf(row->fp, sizeof(row->fp), "%s", fp ?: "");
}

/* One parsed "LOC CFA ..." table: column names and rows of tokens. */
struct interp_block {
	char cols[64][16];
	size_t n_cols;
	struct {
		uint64_t loc;
		char tok[64][32];
	} * rows;
	size_t n_rows, cap;
};

static const char *block_col(const struct interp_block *bl, size_t row, const char *name)
{
	for (size_t i = 2; i < bl->n_cols; i++)
		if (strcmp(bl->cols[i], name) == 0)
			return bl->rows[row].tok[i];
	return NULL;
}

/* Whitespace-separated columns; readelf's "r9 (r9)" (saved in a register) is one column. */
static size_t split(char *line, char **tok, size_t max)
{
	size_t n = 0;
	for (char *s = strtok(line, " \t\n"); s && n < max; s = strtok(NULL, " \t\n")) {
		if (s[0] == '(' && n > 0) {
			s[-1] = '_';
			continue;
		}
		tok[n++] = s;
	}
	return n;
}

/* The CIE's initial row, for FDEs that print no table of their own. */
struct cie_row {
	uint64_t off;
	unsigned ra_reg;
	char cfa[32], ra[32], fp[32];
};

/*
 * Run readelf --debug-dump=frames-interp and flatten it into [lo, hi) ranges with the CFA,
 * RA and frame-pointer column texts.
 */
static void ref_load(const char *path, const char *fp_name, struct ref *ref)
{
	char cmd[512], line[4096];
	struct cie_row cies[256];
	size_t n_cies = 0;
	struct interp_block bl = {};
	uint64_t fde_lo = 0, fde_hi = 0, fde_cie = 0;
	unsigned fde_ra_reg = 0;
	bool in_fde = false, in_cie = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "readelf -wN --debug-dump=frames-interp '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	cr_assert(f);

	/* Flush the current FDE's block into ranges. */
#define FLUSH()                                                                                    \
	do {                                                                                       \
		if (in_fde) {                                                                      \
			ref->n_fdes++;                                                             \
			if (bl.n_rows == 0) {                                                      \
				for (size_t _i = 0; _i < n_cies; _i++)                             \
					if (cies[_i].off == fde_cie)                               \
						ref_add(ref, fde_lo, fde_hi, fde_ra_reg,           \
							cies[_i].cfa, cies[_i].ra, cies[_i].fp);   \
			}                                                                          \
			for (size_t _i = 0; _i < bl.n_rows; _i++) {                                \
				uint64_t lo = bl.rows[_i].loc;                                     \
				uint64_t hi = _i + 1 < bl.n_rows ? bl.rows[_i + 1].loc : fde_hi;   \
				if (lo < fde_lo || lo >= fde_hi)                                   \
					continue;                                                  \
				ref_add(ref, lo, MIN(hi, fde_hi), fde_ra_reg, bl.rows[_i].tok[1],  \
					block_col(&bl, _i, "ra"), block_col(&bl, _i, fp_name));    \
			}                                                                          \
		}                                                                                  \
		if (in_cie && bl.n_rows > 0 && n_cies < ARRAY_SIZE(cies)) {                        \
			const char *_ra = block_col(&bl, 0, "ra");                                 \
			const char *_fp = block_col(&bl, 0, fp_name);                              \
			struct cie_row *_c = &cies[n_cies - 1];                                    \
			snprintf(_c->cfa, sizeof(_c->cfa), "%s", bl.rows[0].tok[1]);               \
			snprintf(_c->ra, sizeof(_c->ra), "%s", _ra ?: "");                         \
			snprintf(_c->fp, sizeof(_c->fp), "%s", _fp ?: "");                         \
		}                                                                                  \
		in_fde = in_cie = false;                                                           \
		bl.n_rows = bl.n_cols = 0;                                                         \
	} while (0)

	while (fgets(line, sizeof(line), f)) {
		char *tok[64];
		uint64_t off, len, id, lo, hi, cie;
		size_t n;

		/* CIE offsets are per section: .eh_frame and .debug_frame both start at 0. */
		if (strncmp(line, "Contents of the ", 16) == 0) {
			FLUSH();
			n_cies = 0;
			continue;
		}
		if (sscanf(line, "%lx %lx %lx FDE cie=%lx pc=%lx..%lx", &off, &len, &id, &cie, &lo,
			   &hi) == 6) {
			FLUSH();
			in_fde = true;
			fde_lo = lo;
			fde_hi = hi;
			fde_cie = cie;
			fde_ra_reg = UINT_MAX;
			for (size_t i = 0; i < n_cies; i++)
				if (cies[i].off == cie)
					fde_ra_reg = cies[i].ra_reg;
			cr_assert_neq(fde_ra_reg, UINT_MAX, "FDE with unknown CIE %#lx", cie);
			continue;
		}
		if (sscanf(line, "%lx %lx %lx CIE", &off, &len, &id) == 3 && strstr(line, " CIE")) {
			FLUSH();
			in_cie = true;
			cr_assert_lt(n_cies, ARRAY_SIZE(cies));
			const char *ra = strstr(line, " ra=");
			cr_assert(ra, "%s", line);
			cies[n_cies++] = (struct cie_row){.off = off, .ra_reg = atoi(ra + 4)};
			continue;
		}
		if (!in_fde && !in_cie)
			continue;
		n = split(line, tok, ARRAY_SIZE(tok));
		if (n >= 2 && strcmp(tok[0], "LOC") == 0) {
			bl.n_cols = n;
			for (size_t i = 0; i < n; i++)
				snprintf(bl.cols[i], sizeof(bl.cols[i]), "%s", tok[i]);
			continue;
		}
		if (n >= 2 && bl.n_cols > 0 && strlen(tok[0]) == 16) {
			if (bl.n_rows == bl.cap) {
				bl.cap = MAX(bl.cap * 2, (size_t)16);
				bl.rows = realloc(bl.rows, bl.cap * sizeof(*bl.rows));
				cr_assert(bl.rows);
			}
			bl.rows[bl.n_rows].loc = strtoull(tok[0], NULL, 16);
			for (size_t i = 0; i < ARRAY_SIZE(bl.rows[0].tok); i++)
				snprintf(bl.rows[bl.n_rows].tok[i], 32, "%s", i < n ? tok[i] : "");
			bl.n_rows++;
		}
	}
	FLUSH();
#undef FLUSH
	free(bl.rows);
	cr_assert_eq(pclose(f), 0, "readelf failed on %s", path);
}

/* Does our rule agree with readelf's texts? Returns NULL or what disagrees. */
static const char *ref_mismatch(uint16_t machine, const struct ref_row *row,
				const struct cfi_rule *r)
{
	const char *sp = machine == EM_X86_64 ? "rsp" : "sp";
	const char *fp = machine == EM_X86_64 ? "rbp" : "x29";
	/* aarch64's x30 without a rule still holds the return address. */
	bool in_lr = machine == EM_AARCH64 && row->ra_reg == 30;
	char reg[16];
	long off;

	/* CFA: "rsp+8", "x29+16", "exp" */
	if (strcmp(row->cfa, "exp") == 0) {
		if (r->cfa_kind != CFI_CFA_PLT_X86_64 && r->cfa_kind != CFI_CFA_UNSUPPORTED)
			return "cfa (exp)";
	} else {
		const char *sign = strpbrk(row->cfa, "+-");
		if (!sign || (size_t)(sign - row->cfa) >= sizeof(reg))
			return "cfa (unparsable)";
		memcpy(reg, row->cfa, sign - row->cfa);
		reg[sign - row->cfa] = 0;
		off = strtol(sign, NULL, 10);
		if (strcmp(reg, sp) == 0) {
			if (r->cfa_kind != CFI_CFA_SP || r->cfa_offset != off)
				return "cfa (sp)";
		} else if (strcmp(reg, fp) == 0) {
			if (r->cfa_kind != CFI_CFA_FP || r->cfa_offset != off)
				return "cfa (fp)";
		} else if (r->cfa_kind != CFI_CFA_UNSUPPORTED)
			return "cfa (other register)";
	}

	/* RA: "c-8", "u" (undefined or never set), "s", absent, "r12", "exp", "v+8"... */
	if (row->ra[0] == 'c') {
		if (r->ra_kind != CFI_RA_CFA_OFFSET ||
		    r->ra_offset != strtol(row->ra + 1, NULL, 10))
			return "ra (c)";
	} else if (strcmp(row->ra, "u") == 0) {
		if (r->ra_kind != CFI_RA_UNDEFINED && !(in_lr && r->ra_kind == CFI_RA_LR))
			return "ra (u)";
	} else if (strcmp(row->ra, "s") == 0 || row->ra[0] == 0) {
		if (r->ra_kind != (in_lr ? CFI_RA_LR : CFI_RA_UNSUPPORTED))
			return "ra (s)";
	} else if (r->ra_kind != CFI_RA_UNSUPPORTED)
		return "ra (other)";

	/* Frame pointer. */
	if (row->fp[0] == 'c') {
		if (r->fp_kind != CFI_FP_CFA_OFFSET ||
		    r->fp_offset != strtol(row->fp + 1, NULL, 10))
			return "fp (c)";
	} else if (row->fp[0] == 'v' && (row->fp[1] == '+' || row->fp[1] == '-')) {
		if (r->fp_kind != CFI_FP_VAL_OFFSET ||
		    r->fp_offset != strtol(row->fp + 1, NULL, 10))
			return "fp (v)";
	} else if (strcmp(row->fp, "u") == 0) {
		if (r->fp_kind != CFI_FP_SAME && r->fp_kind != CFI_FP_UNDEFINED)
			return "fp (u)";
	} else if (strcmp(row->fp, "s") == 0 || row->fp[0] == 0) {
		if (r->fp_kind != CFI_FP_SAME)
			return "fp (s)";
	} else if (r->fp_kind != CFI_FP_UNSUPPORTED)
		return "fp (other)";
	return NULL;
}

/* Check every readelf row at its first, middle and last byte. Returns rows checked. */
static size_t cross_check(const char *path, uint16_t machine, const struct cfi_table *t)
{
	struct ref ref = {};
	size_t checked = 0, bad = 0;

	ref_load(path, machine == EM_X86_64 ? "rbp" : "x29", &ref);
	cr_assert_gt(ref.n, 10, "%s: only %zu readelf rows", path, ref.n);

	for (size_t i = 0; i < ref.n; i++) {
		const struct ref_row *row = &ref.rows[i];
		uint64_t pcs[3] = {row->lo, row->lo + (row->hi - row->lo) / 2, row->hi - 1};

		for (size_t k = 0; k < 3; k++) {
			struct cfi_rule r;
			const char *why;
			int ret = cfi_table_lookup(t, pcs[k], &r);

			checked++;
			if (ret < 0)
				why = "no rule";
			else
				why = ref_mismatch(machine, row, &r);
			if (why && bad++ < 10)
				cr_log_error(
				    "%s pc %#lx: %s; readelf cfa=%s ra=%s fp=%s; ours cfa %u%+d "
				    "ra %u%+d fp %u%+d",
				    path, pcs[k], why, row->cfa, row->ra, row->fp,
				    ret < 0 ? 0 : r.cfa_kind, ret < 0 ? 0 : r.cfa_offset,
				    ret < 0 ? 0 : r.ra_kind, ret < 0 ? 0 : r.ra_offset,
				    ret < 0 ? 0 : r.fp_kind, ret < 0 ? 0 : r.fp_offset);
		}
	}
	cr_expect_eq(bad, 0, "%s: %zu of %zu lookups disagree with readelf", path, bad, checked);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes, ref.n_fdes);
	free(ref.rows);
	return checked;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct cfi_table *build_file(const char *path, double *ret_ms)
{
	struct cfi_table *t = NULL;
	double t0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %m", path);
	t0 = now_ms();
	r = cfi_table_build_from_elf_fd(fd, &t);
	if (ret_ms)
		*ret_ms = now_ms() - t0;
	close(fd);
	cr_assert_eq(r, 0, "build %s: %s", path, strerror(-r));
	return t;
}

Test(cfi, host_libc_matches_readelf)
{
	double ms;
	struct cfi_table *t = build_file(LIBC_PATH, &ms);
	const struct cfi_table_stats *st = cfi_table_get_stats(t);
	size_t rows = cfi_table_n_rows(t), bytes = cfi_table_size_bytes(t);

	cr_expect_gt(st->n_fdes_used, 1000);
	cr_expect_eq(st->n_fdes_malformed, 0);
	cr_expect_eq(st->n_fdes_unsupported, 0);
	cr_expect_eq(st->n_fdes_overlap, 0);
	cr_expect_not(st->hdr_mismatch);
	cr_expect_eq(st->hdr_fde_count, st->n_fdes);
	cr_expect_leq(bytes, rows * 8, "%zu bytes for %zu rows", bytes, rows);

	size_t checked = cross_check(LIBC_PATH, EM_X86_64, t);

	/* Figures for the lead: printed, never asserted on. */
	fprintf(stderr,
		"cfi: %s: %zu FDEs, %zu rows, %zu rules (%zu unsupported), %zu bytes = %.2f "
		"bytes/row, built in %.2f ms; %zu lookups cross-checked with readelf\n",
		LIBC_PATH, st->n_fdes_used, rows, st->n_rules, st->n_rules_unsupported, bytes,
		(double)bytes / rows, ms, checked);

	/* libc's .plt FDE is there and its expression recognised. */
	struct ref ref = {};
	size_t n_plt = 0;
	ref_load(LIBC_PATH, "rbp", &ref);
	for (size_t k = 0; k < ref.n; k++) {
		struct cfi_rule r;
		if (strcmp(ref.rows[k].cfa, "exp") == 0 &&
		    cfi_table_lookup(t, ref.rows[k].lo, &r) == 0 &&
		    r.cfa_kind == CFI_CFA_PLT_X86_64)
			n_plt++;
	}
	free(ref.rows);
	cr_expect_geq(n_plt, 1);
	cfi_table_free(t);
}

Test(cfi, host_libc_without_section_headers)
{
	char path[] = "/tmp/test-cfi-noshdr-XXXXXX";
	struct cfi_table *a = build_file(LIBC_PATH, NULL), *b;
	struct stat stbuf;
	int in, out;

	/* A copy whose section headers are gone: found through PT_GNU_EH_FRAME instead. */
	in = open(LIBC_PATH, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(in, 0);
	cr_assert_eq(fstat(in, &stbuf), 0);
	uint8_t *img = malloc(stbuf.st_size);
	cr_assert(img);
	cr_assert_eq(pread(in, img, stbuf.st_size, 0), stbuf.st_size);
	close(in);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	eh->e_shoff = 0;
	eh->e_shnum = 0;
	eh->e_shstrndx = 0;
	out = mkstemp(path);
	cr_assert_geq(out, 0);
	cr_assert_eq(write(out, img, stbuf.st_size), stbuf.st_size);
	close(out);
	free(img);

	b = build_file(path, NULL);
	unlink(path);
	cr_expect_eq(cfi_table_n_rows(b), cfi_table_n_rows(a));
	cr_expect_eq(cfi_table_get_stats(b)->n_fdes_used, cfi_table_get_stats(a)->n_fdes_used);
	for (uint64_t pc = 0x20000; pc < 0x200000; pc += 0x1001) {
		struct cfi_rule ra, rb;
		int x = cfi_table_lookup(a, pc, &ra), y = cfi_table_lookup(b, pc, &rb);
		cr_assert_eq(x, y, "pc %#lx", pc);
		if (x == 0)
			cr_assert_eq(memcmp(&ra, &rb, sizeof(ra)), 0, "pc %#lx", pc);
	}
	cfi_table_free(a);
	cfi_table_free(b);
}

Test(cfi, fuzz_host_libc_eh_frame)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd = open(LIBC_PATH, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	cr_assert(elf);
	cr_assert_eq(elf_getshdrstrndx(elf, &shstrndx), 0);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		cr_assert(gelf_getshdr(scn, &sh));
		if (strcmp(elf_strptr(elf, shstrndx, sh.sh_name), ".eh_frame") == 0)
			break;
	}
	cr_assert(scn);
	Elf_Data *d = elf_getdata(scn, NULL);
	cr_assert(d && d->d_size > 4096);
	/* The first 16 KiB: real CIEs and FDEs, mutated. */
	fuzz_one(EM_X86_64, d->d_buf, 16384, 3000);
	elf_end(elf);
	close(fd);
}

/* An aarch64 program built here: pac-ret for negate_ra_state, leaf functions for RA in LR. */
static const char a64_source[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "__attribute__((noinline)) int leaf(int x) { return x * 3 + 1; }\n"
    "__attribute__((noinline)) int mid(int x) {\n"
    "	char buf[64];\n"
    "	snprintf(buf, sizeof buf, \"%d\", x);\n"
    "	return leaf(atoi(buf)) + 1;\n"
    "}\n"
    "int main(int argc, char **argv) { (void)argv; return mid(argc); }\n";

struct test_build {
	char dir[64];
	char bin[128];
};

static void compile(struct test_build *ab, const char *cc, const char *flags)
{
	char src[128], cmd[512];
	FILE *f;

	snprintf(ab->dir, sizeof(ab->dir), "/tmp/test-cfi-a64-XXXXXX");
	cr_assert(mkdtemp(ab->dir));
	snprintf(src, sizeof(src), "%s/a.c", ab->dir);
	snprintf(ab->bin, sizeof(ab->bin), "%s/a", ab->dir);
	f = fopen(src, "w");
	cr_assert(f);
	fputs(a64_source, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s -O2 %s -o '%s' '%s'", cc, flags, ab->bin, src);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	unlink(src);
}

static void a64_compile(struct test_build *ab, const char *flags)
{
	compile(ab, "aarch64-linux-gnu-gcc", flags);
}

static void test_build_cleanup(struct test_build *ab)
{
	char path[192];

	/* Whatever a test derived from the binary: name.z, name.debug, name.stripped. */
	for (const char *const *ext = (const char *const[]){".z", ".debug", ".stripped", NULL};
	     *ext; ext++) {
		snprintf(path, sizeof(path), "%s%s", ab->bin, *ext);
		unlink(path);
	}
	unlink(ab->bin);
	rmdir(ab->dir);
}

static uint64_t symbol(const char *bin, const char *name)
{
	char cmd[256], line[512];
	uint64_t addr = 0;
	FILE *f;

	/* GNU nm reads every architecture binutils was built for; the cross one surely does. */
	snprintf(cmd, sizeof(cmd), "aarch64-linux-gnu-nm '%s'", bin);
	f = popen(cmd, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		char type, sym[256];
		uint64_t a;
		if (sscanf(line, "%lx %c %255s", &a, &type, sym) == 3 && strcmp(sym, name) == 0)
			addr = a;
	}
	pclose(f);
	cr_assert_neq(addr, 0, "symbol %s not found in %s", name, bin);
	return addr;
}

Test(cfi, aarch64_binary_matches_readelf)
{
	struct test_build ab;
	struct cfi_rule r;

	a64_compile(&ab, "-mbranch-protection=pac-ret");
	struct cfi_table *t = build_file(ab.bin, NULL);
	cr_expect_eq(cfi_table_e_machine(t), EM_AARCH64);
	cr_expect_eq(cfi_table_get_stats(t)->n_fdes_malformed, 0);
	cross_check(ab.bin, EM_AARCH64, t);

	/* leaf() saves nothing: RA in LR throughout. */
	uint64_t leaf = symbol(ab.bin, "leaf");
	cr_assert_eq(cfi_table_lookup(t, leaf, &r), 0);
	cr_expect_eq(r.ra_kind, CFI_RA_LR);
	cr_expect_eq(r.flags & CFI_RULE_RA_SIGNED, 0);

	/* mid() starts with paciasp: unsigned at its first instruction, signed after. */
	uint64_t mid = symbol(ab.bin, "mid");
	cr_assert_eq(cfi_table_lookup(t, mid, &r), 0);
	cr_expect_eq(r.ra_kind, CFI_RA_LR);
	cr_expect_eq(r.flags & CFI_RULE_RA_SIGNED, 0);
	cr_assert_eq(cfi_table_lookup(t, mid + 4, &r), 0);
	cr_expect_eq(r.ra_kind, CFI_RA_LR);
	cr_expect_eq(r.flags & CFI_RULE_RA_SIGNED, CFI_RULE_RA_SIGNED);
	cr_assert_eq(cfi_table_lookup(t, mid + 8, &r), 0);
	cr_expect_eq(r.ra_kind, CFI_RA_CFA_OFFSET);
	cr_expect_eq(r.fp_kind, CFI_FP_CFA_OFFSET);
	cr_expect_eq(r.flags & CFI_RULE_RA_SIGNED, CFI_RULE_RA_SIGNED);

	cfi_table_free(t);
	test_build_cleanup(&ab);
}

Test(cfi, aarch64_static_binary_matches_readelf)
{
	struct test_build ab;

	/* Static: glibc's own C and hand-written assembly CFI, hundreds of FDEs. */
	a64_compile(&ab, "-static");
	struct cfi_table *t = build_file(ab.bin, NULL);
	const struct cfi_table_stats *st = cfi_table_get_stats(t);
	cr_expect_gt(st->n_fdes_used, 300);
	cr_expect_eq(st->n_fdes_malformed, 0);
	cr_expect_eq(st->n_fdes_unsupported, 0);
	cross_check(ab.bin, EM_AARCH64, t);
	cfi_table_free(t);
	test_build_cleanup(&ab);
}

static void run(const char *fmt, ...) _printf_(1, 2);
static void run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static struct cfi_table *build_pair(const char *path, const char *debug_path)
{
	struct cfi_table *t = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC), dfd = open(debug_path, O_RDONLY | O_CLOEXEC);
	Elf *elf, *delf;

	cr_assert_geq(fd, 0);
	cr_assert_geq(dfd, 0);
	cr_assert_neq(elf_version(EV_CURRENT), EV_NONE);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	delf = elf_begin(dfd, ELF_C_READ_MMAP, NULL);
	cr_assert(elf && delf);
	cr_assert_eq(cfi_table_build_from_elf(elf, delf, &t), 0);
	elf_end(elf);
	elf_end(delf);
	close(fd);
	close(dfd);
	return t;
}

static void same_rule(const struct cfi_table *a, const struct cfi_table *b, uint64_t pc)
{
	struct cfi_rule ra, rb;

	cr_assert_eq(cfi_table_lookup(a, pc, &ra), 0, "pc %#lx", pc);
	cr_assert_eq(cfi_table_lookup(b, pc, &rb), 0, "pc %#lx", pc);
	cr_expect_eq(memcmp(&ra, &rb, sizeof(ra)), 0, "pc %#lx", pc);
}

/*
 * Code built without unwind tables keeps its CFI in .debug_frame only: read it compressed
 * (SHF_COMPRESSED) and from a separate debug file, for both architectures.
 */
Test(cfi, debug_frame_compressed_and_separate)
{
	static const struct {
		uint16_t machine;
		const char *cc, *objcopy;
	} arches[] = {
	    {EM_X86_64, "gcc", "objcopy"},
	    {EM_AARCH64, "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objcopy"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(arches); i++) {
		struct test_build ab;
		char z[192], dbg[192], stripped[192];

		compile(&ab, arches[i].cc, "-g -fno-asynchronous-unwind-tables -fno-unwind-tables");
		snprintf(z, sizeof(z), "%s.z", ab.bin);
		snprintf(dbg, sizeof(dbg), "%s.debug", ab.bin);
		snprintf(stripped, sizeof(stripped), "%s.stripped", ab.bin);
		run("%s --compress-debug-sections=zlib '%s' '%s'", arches[i].objcopy, ab.bin, z);
		run("%s --only-keep-debug '%s' '%s'", arches[i].objcopy, ab.bin, dbg);
		run("%s --strip-debug '%s' '%s'", arches[i].objcopy, ab.bin, stripped);

		struct cfi_table *plain = build_file(ab.bin, NULL);
		struct cfi_table *comp = build_file(z, NULL);
		struct cfi_table *bare = build_file(stripped, NULL);
		struct cfi_table *pair = build_pair(stripped, dbg);
		uint64_t mid = symbol(ab.bin, "mid"), leaf = symbol(ab.bin, "leaf");
		struct cfi_rule r;

		cr_expect_eq(cfi_table_e_machine(plain), arches[i].machine);
		cr_expect_eq(cfi_table_get_stats(plain)->n_fdes_malformed, 0);
		cross_check(z, arches[i].machine, comp);
		cr_expect_eq(cfi_table_n_rows(comp), cfi_table_n_rows(plain));
		cr_expect_eq(cfi_table_n_rows(pair), cfi_table_n_rows(plain));
		/* Without its debug file, the stripped binary only knows the crt code. */
		cr_expect_eq(cfi_table_lookup(bare, mid, &r), -ENOENT);
		for (uint64_t pc = mid; pc < mid + 16;
		     pc += arches[i].machine == EM_AARCH64 ? 4 : 1) {
			same_rule(plain, comp, pc);
			same_rule(plain, pair, pc);
		}
		same_rule(plain, pair, leaf);

		cfi_table_free(plain);
		cfi_table_free(comp);
		cfi_table_free(bare);
		cfi_table_free(pair);
		test_build_cleanup(&ab);
	}
}

/*
 * The CFI table cache is keyed by the file opened, not by the build-id it claims: a file with
 * libc's build-id (a malformed one, or another program's) supplies no table for libc and does
 * not make libc fail; libc through another fd is the same entry.
 */
Test(cfi, unwind_cache_keys_by_file)
{
	static const uint8_t popular[20] = { 0x5c, 0xa1, 0xab, 0x1e, 1, 2, 3, 4, 5, 6,
					     7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	char junk[] = "/tmp/profd-cfi-junk-XXXXXX";
	int jfd = mkstemp(junk);
	cr_assert_geq(jfd, 0);
	cr_assert_eq(write(jfd, "\177ELF and nothing more", 21), 21);
	unlink(junk);
	int lfd = open(LIBC_PATH, O_RDONLY | O_CLOEXEC), lfd2 = open(LIBC_PATH, O_RDONLY | O_CLOEXEC);
	int sfd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	cr_assert(lfd >= 0 && lfd2 >= 0 && sfd >= 0);
	struct cfi_table *want = build_file(LIBC_PATH, NULL);

	for (int order = 0; order < 2; order++) {
		struct unwind_cache *c = NULL;
		struct unwind_key kj, kl, kl2, ks;
		struct unwind_module mj, ml, ml2, ms;

		cr_assert_eq(unwind_cache_new(0, &c), 0);
		cr_assert_eq(unwind_key_from_fd(jfd, popular, sizeof(popular), &kj), 0);
		cr_assert_eq(unwind_key_from_fd(lfd, popular, sizeof(popular), &kl), 0);
		cr_assert_eq(unwind_key_from_fd(lfd2, popular, sizeof(popular), &kl2), 0);
		cr_assert_eq(unwind_key_from_fd(sfd, popular, sizeof(popular), &ks), 0);
		/* order 0: the impostors first; 1: libc first. */
		if (order == 0) {
			cr_assert_lt(unwind_cache_module(c, &kj, jfd, 0x10000, 0x20000, 0, &mj), 0);
			cr_assert_eq(unwind_cache_module(c, &ks, sfd, 0x10000, 0x20000, 0, &ms), 0);
		}
		cr_assert_eq(unwind_cache_module(c, &kl, lfd, 0x7f0000000000, 0x7f0000100000, 0, &ml),
			     0, "order %d: libc fails because another file claimed its build-id",
			     order);
		if (order == 1) {
			cr_assert_lt(unwind_cache_module(c, &kj, jfd, 0x10000, 0x20000, 0, &mj), 0);
			cr_assert_eq(unwind_cache_module(c, &ks, sfd, 0x10000, 0x20000, 0, &ms), 0);
		}
		cr_assert_not_null(ml.table);
		cr_assert_not_null(ms.table);
		cr_assert_neq(ml.table, ms.table, "order %d: one table for two files", order);
		cr_assert_eq(cfi_table_n_rows(ml.table), cfi_table_n_rows(want));
		cr_assert_neq(cfi_table_n_rows(ms.table), cfi_table_n_rows(want));
		/* libc through another fd: the same file, the same entry. */
		cr_assert_eq(unwind_cache_module(c, &kl2, -1, 0x7f0000000000, 0x7f0000100000, 0, &ml2),
			     0);
		cr_assert_eq(ml2.table, ml.table);
		struct unwind_cache_stats st;
		unwind_cache_get_stats(c, &st);
		cr_assert_eq(st.entries, 3);
		cr_assert_eq(st.misses, 3);
		unwind_cache_free(c);
	}
	cfi_table_free(want);
	close(jfd);
	close(lfd);
	close(lfd2);
	close(sfd);
}

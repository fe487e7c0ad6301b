/* SPDX-License-Identifier: MIT */
/*
 * CIE/FDE parsing, the CFA program interpreter, and the compact row table. See cfi.h.
 *
 * Build: walk each section linearly; for every FDE run CIE initial instructions + FDE
 * instructions, turning every state change into (pc, rule index) rows in a scratch array;
 * then sort FDEs by start, drop overlaps (.eh_frame first), insert gap rows and pack.
 */
#include "pipeline/unwind/cfi.h"

#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/hash.h"
#include "common/macro.h"

/* DWARF call frame instructions. */
enum {
	DW_CFA_nop = 0x00,
	DW_CFA_set_loc = 0x01,
	DW_CFA_advance_loc1 = 0x02,
	DW_CFA_advance_loc2 = 0x03,
	DW_CFA_advance_loc4 = 0x04,
	DW_CFA_offset_extended = 0x05,
	DW_CFA_restore_extended = 0x06,
	DW_CFA_undefined = 0x07,
	DW_CFA_same_value = 0x08,
	DW_CFA_register = 0x09,
	DW_CFA_remember_state = 0x0a,
	DW_CFA_restore_state = 0x0b,
	DW_CFA_def_cfa = 0x0c,
	DW_CFA_def_cfa_register = 0x0d,
	DW_CFA_def_cfa_offset = 0x0e,
	DW_CFA_def_cfa_expression = 0x0f,
	DW_CFA_expression = 0x10,
	DW_CFA_offset_extended_sf = 0x11,
	DW_CFA_def_cfa_sf = 0x12,
	DW_CFA_def_cfa_offset_sf = 0x13,
	DW_CFA_val_offset = 0x14,
	DW_CFA_val_offset_sf = 0x15,
	DW_CFA_val_expression = 0x16,
	DW_CFA_MIPS_advance_loc8 = 0x1d,
	DW_CFA_AARCH64_negate_ra_state = 0x2d, /* DW_CFA_GNU_window_save elsewhere */
	DW_CFA_GNU_args_size = 0x2e,
	DW_CFA_GNU_negative_offset_extended = 0x2f,
	DW_CFA_advance_loc = 0x40,
	DW_CFA_offset = 0x80,
	DW_CFA_restore = 0xc0,
};

/* DW_EH_PE pointer encodings. */
enum {
	DW_EH_PE_absptr = 0x00,
	DW_EH_PE_uleb128 = 0x01,
	DW_EH_PE_udata2 = 0x02,
	DW_EH_PE_udata4 = 0x03,
	DW_EH_PE_udata8 = 0x04,
	DW_EH_PE_signed = 0x08,
	DW_EH_PE_sleb128 = 0x09,
	DW_EH_PE_sdata2 = 0x0a,
	DW_EH_PE_sdata4 = 0x0b,
	DW_EH_PE_sdata8 = 0x0c,
	DW_EH_PE_pcrel = 0x10,
	DW_EH_PE_textrel = 0x20,
	DW_EH_PE_datarel = 0x30,
	DW_EH_PE_funcrel = 0x40,
	DW_EH_PE_aligned = 0x50,
	DW_EH_PE_indirect = 0x80,
	DW_EH_PE_omit = 0xff,
};

/* The few DWARF expression operators of the x86_64 PLT CFA idiom. */
enum {
	DW_OP_and = 0x1a,
	DW_OP_plus = 0x22,
	DW_OP_shl = 0x24,
	DW_OP_ge = 0x2a,
	DW_OP_lit0 = 0x30,
	DW_OP_breg0 = 0x70,
};

#define X86_64_REG_RBP 6
#define X86_64_REG_RSP 7
#define X86_64_REG_RIP 16
#define AARCH64_REG_X29 29
#define AARCH64_REG_X30 30
#define AARCH64_REG_SP 31

#define ADDR_SIZE 8 /* only 64-bit targets */
#define MAX_AUGMENTATION_LEN 16

/* ---- bounds-checked little-endian reader ------------------------------------------------- */

struct cursor {
	const uint8_t *data; /* section start: positions are section offsets */
	size_t pos, end;     /* pos <= end <= section size */
};

static int cur_skip(struct cursor *c, uint64_t n)
{
	if (n > c->end - c->pos)
		return -EBADMSG;
	c->pos += n;
	return 0;
}

static int cur_u8(struct cursor *c, uint8_t *ret)
{
	if (c->pos >= c->end)
		return -EBADMSG;
	*ret = c->data[c->pos++];
	return 0;
}

static int cur_u16(struct cursor *c, uint16_t *ret)
{
	uint16_t v;

	if (sizeof(v) > c->end - c->pos)
		return -EBADMSG;
	memcpy(&v, c->data + c->pos, sizeof(v));
	c->pos += sizeof(v);
	*ret = le16toh(v);
	return 0;
}

static int cur_u32(struct cursor *c, uint32_t *ret)
{
	uint32_t v;

	if (sizeof(v) > c->end - c->pos)
		return -EBADMSG;
	memcpy(&v, c->data + c->pos, sizeof(v));
	c->pos += sizeof(v);
	*ret = le32toh(v);
	return 0;
}

static int cur_u64(struct cursor *c, uint64_t *ret)
{
	uint64_t v;

	if (sizeof(v) > c->end - c->pos)
		return -EBADMSG;
	memcpy(&v, c->data + c->pos, sizeof(v));
	c->pos += sizeof(v);
	*ret = le64toh(v);
	return 0;
}

/* LEB128 values that do not fit 64 bits (or use more than 10 bytes) are malformed. */
static int cur_uleb(struct cursor *c, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0;; shift += 7) {
		uint8_t b;
		int r = cur_u8(c, &b);
		if (r < 0)
			return r;
		if (shift == 63 && (b & 0x7e))
			return -EBADMSG;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
		if (shift == 63)
			return -EBADMSG;
	}
	*ret = v;
	return 0;
}

static int cur_sleb(struct cursor *c, int64_t *ret)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	for (;;) {
		int r = cur_u8(c, &b);
		if (r < 0)
			return r;
		/* The 10th byte holds bit 63 only; its other bits must repeat the sign. */
		if (shift == 63 && (b & 0x7f) != 0 && (b & 0x7f) != 0x7f)
			return -EBADMSG;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
		if (shift > 63)
			return -EBADMSG;
	}
	if (shift < 64 && (b & 0x40))
		v |= ~UINT64_C(0) << shift;
	*ret = (int64_t)v;
	return 0;
}

/* A uleb length followed by that many bytes. */
static int cur_block(struct cursor *c, const uint8_t **ret, size_t *ret_len)
{
	uint64_t len;
	int r;

	r = cur_uleb(c, &len);
	if (r < 0)
		return r;
	if (len > c->end - c->pos)
		return -EBADMSG;
	*ret = c->data + c->pos;
	*ret_len = len;
	c->pos += len;
	return 0;
}

/* ---- DW_EH_PE pointers ------------------------------------------------------------------- */

struct enc_ctx {
	uint64_t section_addr; /* ELF address of cursor.data[0], for pcrel and aligned */
	uint64_t data_base;    /* for datarel */
	bool has_data_base;
};

/*
 * Read a value in format `enc & 0x0f` and apply `enc & 0x70`. With skip_only, the value is
 * only stepped over (personality pointers), so any application and indirection is fine.
 * -EBADMSG: truncated or invalid encoding; -EOPNOTSUPP: valid but needs data we do not have.
 */
static int read_encoded(struct cursor *c, uint8_t enc, const struct enc_ctx *ctx, bool skip_only,
			uint64_t *ret)
{
	uint8_t app = enc & 0x70;
	uint64_t field_addr, v;
	int r;

	if (enc == DW_EH_PE_omit)
		return -EBADMSG;
	if (app > DW_EH_PE_aligned)
		return -EBADMSG;

	field_addr = ctx->section_addr + c->pos;
	if (app == DW_EH_PE_aligned) {
		uint64_t mis = field_addr % ADDR_SIZE;
		if (mis) {
			r = cur_skip(c, ADDR_SIZE - mis);
			if (r < 0)
				return r;
			field_addr += ADDR_SIZE - mis;
		}
	}

	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_signed:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		r = cur_u64(c, &v);
		break;
	case DW_EH_PE_udata2: {
		uint16_t u = 0;
		r = cur_u16(c, &u);
		v = u;
		break;
	}
	case DW_EH_PE_sdata2: {
		uint16_t u = 0;
		r = cur_u16(c, &u);
		v = (uint64_t)(int64_t)(int16_t)u;
		break;
	}
	case DW_EH_PE_udata4: {
		uint32_t u = 0;
		r = cur_u32(c, &u);
		v = u;
		break;
	}
	case DW_EH_PE_sdata4: {
		uint32_t u = 0;
		r = cur_u32(c, &u);
		v = (uint64_t)(int64_t)(int32_t)u;
		break;
	}
	case DW_EH_PE_uleb128:
		r = cur_uleb(c, &v);
		break;
	case DW_EH_PE_sleb128: {
		int64_t s = 0;
		r = cur_sleb(c, &s);
		v = (uint64_t)s;
		break;
	}
	default:
		return -EBADMSG;
	}
	if (r < 0)
		return r;
	if (skip_only)
		return 0;

	switch (app) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_aligned:
		break;
	case DW_EH_PE_pcrel:
		v += field_addr; /* wraps by design: sdata4 offsets are negative */
		break;
	case DW_EH_PE_datarel:
		if (!ctx->has_data_base)
			return -EOPNOTSUPP;
		v += ctx->data_base;
		break;
	default: /* textrel, funcrel: need section bases we are not given */
		return -EOPNOTSUPP;
	}
	/* The value is the address of the pointer, in target memory we do not have. */
	if (enc & DW_EH_PE_indirect)
		return -EOPNOTSUPP;
	*ret = v;
	return 0;
}

/* ---- interpreter state ------------------------------------------------------------------- */

enum reg_how {
	REG_UNSPEC = 0, /* no rule: same value by convention */
	REG_UNDEF,
	REG_SAME,
	REG_OFFSET,	/* saved at CFA + off */
	REG_VAL_OFFSET, /* value is CFA + off */
	REG_OTHER,	/* register, expression, val_expression, or offset out of range */
};

enum cfa_how {
	CFA_UNSET = 0, /* no DW_CFA_def_cfa seen */
	CFA_REG,
	CFA_PLT,
	CFA_EXPR,
};

struct reg_rule {
	uint8_t how;
	int64_t off;
};

/* The only registers whose rules we keep. */
enum { TRACK_RA = 0, TRACK_FP, _TRACK_MAX };

struct cfa_state {
	uint8_t cfa_how;
	uint8_t plt_threshold;
	bool ra_signed; /* aarch64 RA_SIGN_STATE pseudo-register: remembered like the others */
	uint64_t cfa_reg;
	int64_t cfa_off;
	struct reg_rule regs[_TRACK_MAX];
};

struct cie {
	size_t offset; /* section offset: the cache key */
	int err;       /* < 0: this CIE is unusable, FDEs pointing to it are skipped */
	uint8_t version;
	uint8_t fde_enc;
	uint8_t lsda_enc;
	bool has_z;
	bool signal_frame;
	uint64_t code_align;
	int64_t data_align;
	uint64_t ra_reg;
	struct cfa_state initial; /* after the CIE's initial instructions */
};

struct cie_slot {
	bool used;
	struct cie cie;
};

/* One section being walked. */
struct frame_section {
	const uint8_t *data;
	size_t size;
	uint64_t addr;
	bool is_eh; /* .eh_frame conventions (relative CIE pointers, CIE id 0, augmentations) */
	uint8_t source;
};

enum { SOURCE_EH_FRAME = 0, SOURCE_DEBUG_FRAME = 1 };

struct fde_rec {
	uint64_t start, end;
	uint64_t clip_start; /* start after dropping the part an earlier FDE covers */
	size_t first_row;
	size_t n_rows;
	size_t seq; /* discovery order: stable tie-break */
	uint8_t source;
};

struct tmp_row {
	uint64_t pc;
	uint32_t rule;
};

struct builder {
	uint16_t e_machine;
	uint64_t sp_reg, fp_reg;
	const struct cfi_sections *s;

	struct cie_slot cie_cache[CFI_CIE_CACHE_SIZE];

	struct fde_rec *fdes;
	size_t n_fdes, cap_fdes;
	struct tmp_row *rows;
	size_t n_rows, cap_rows;

	struct cfi_rule *rules;
	size_t n_rules, cap_rules;
	struct hash_index rule_index; /* ids: rule index + 1 */

	struct cfa_state remember[CFI_MAX_REMEMBER_DEPTH];
	size_t n_insns_total; /* towards CFI_MAX_INSNS_TOTAL */
	struct cfi_table_stats stats;
};

struct cfi_table {
	uint16_t e_machine;
	uint64_t base; /* ELF address of row 0 */
	size_t n_rows;
	uint32_t *row_pc;     /* offset from base, ascending */
	uint16_t *row_rule16; /* one of these two, by n_rules */
	uint32_t *row_rule32;
	size_t n_rules;
	struct cfi_rule *rules; /* rules[0] is the gap rule */
	struct cfi_table_stats stats;
};

/* ---- rules ------------------------------------------------------------------------------- */

static uint32_t rule_hash(const struct cfi_rule *r)
{
	/*
	 * A rule is 20 fully initialised bytes (padding never differs): mix them as words, one
	 * multiply each. Called once per emitted row, so this is on the table build's hot path.
	 */
	uint64_t a, b, h;
	uint32_t c;

	_Static_assert(sizeof(*r) == 20, "rule_hash() reads a 20-byte struct cfi_rule");
	memcpy(&a, (const uint8_t *)r, 8);
	memcpy(&b, (const uint8_t *)r + 8, 8);
	memcpy(&c, (const uint8_t *)r + 16, 4);
	h = (a ^ 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 31) ^ b) * 0x94d049bb133111ebull;
	h = (h ^ (h >> 29) ^ c) * 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h ^ (h >> 32));
}

static bool rule_eq(const void *ctx, uint32_t id, const void *key)
{
	const struct builder *b = ctx;

	return memcmp(&b->rules[id - 1], key, sizeof(struct cfi_rule)) == 0;
}

static int rule_intern(struct builder *b, const struct cfi_rule *rule, uint32_t *ret)
{
	struct hash_slot *slot;
	uint32_t h = rule_hash(rule);
	int r;

	/* + 1: a rule already there is still found when the table is full (grow() refuses). */
	r = hash_index_reserve(&b->rule_index, CFI_MAX_RULES + 1);
	if (r < 0)
		return r;
	slot = hash_index_find(&b->rule_index, h, rule_eq, b, rule);
	if (slot->id) {
		*ret = slot->id - 1;
		return 0;
	}

	r = grow((void **)&b->rules, &b->cap_rules, b->n_rules + 1, sizeof(*b->rules),
		 CFI_MAX_RULES);
	if (r < 0)
		return r;
	b->rules[b->n_rules] = *rule;
	hash_index_insert(&b->rule_index, slot, b->n_rules + 1, h);
	if (rule->cfa_kind == CFI_CFA_UNSUPPORTED)
		b->stats.n_rules_unsupported++;
	*ret = b->n_rules++;
	return 0;
}

static bool fits_i32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

static void compile_rule(const struct builder *b, const struct cie *cie, const struct cfa_state *st,
			 struct cfi_rule *ret)
{
	struct cfi_rule r;

	memset(&r, 0, sizeof(r));

	if (st->cfa_how == CFA_REG && fits_i32(st->cfa_off) &&
	    (st->cfa_reg == b->sp_reg || st->cfa_reg == b->fp_reg)) {
		r.cfa_kind = st->cfa_reg == b->sp_reg ? CFI_CFA_SP : CFI_CFA_FP;
		r.cfa_offset = st->cfa_off;
	} else if (st->cfa_how == CFA_PLT && fits_i32(st->cfa_off)) {
		r.cfa_kind = CFI_CFA_PLT_X86_64;
		r.cfa_offset = st->cfa_off;
		r.cfa_plt_threshold = st->plt_threshold;
	} else
		r.cfa_kind = CFI_CFA_UNSUPPORTED;

	switch (st->regs[TRACK_RA].how) {
	case REG_OFFSET:
		r.ra_kind = CFI_RA_CFA_OFFSET;
		r.ra_offset = st->regs[TRACK_RA].off;
		break;
	case REG_UNDEF:
		r.ra_kind = CFI_RA_UNDEFINED;
		break;
	case REG_UNSPEC:
	case REG_SAME:
		/* On aarch64 an untouched x30 still holds the return address. */
		r.ra_kind = b->e_machine == EM_AARCH64 && cie->ra_reg == AARCH64_REG_X30
				? CFI_RA_LR
				: CFI_RA_UNSUPPORTED;
		break;
	default:
		r.ra_kind = CFI_RA_UNSUPPORTED;
		break;
	}

	switch (st->regs[TRACK_FP].how) {
	case REG_UNSPEC:
	case REG_SAME:
		r.fp_kind = CFI_FP_SAME;
		break;
	case REG_OFFSET:
		r.fp_kind = CFI_FP_CFA_OFFSET;
		r.fp_offset = st->regs[TRACK_FP].off;
		break;
	case REG_VAL_OFFSET:
		r.fp_kind = CFI_FP_VAL_OFFSET;
		r.fp_offset = st->regs[TRACK_FP].off;
		break;
	case REG_UNDEF:
		r.fp_kind = CFI_FP_UNDEFINED;
		break;
	default:
		r.fp_kind = CFI_FP_UNSUPPORTED;
		break;
	}

	if (st->ra_signed && b->e_machine == EM_AARCH64)
		r.flags |= CFI_RULE_RA_SIGNED;
	if (cie->signal_frame)
		r.flags |= CFI_RULE_SIGNAL_FRAME;
	*ret = r;
}

/* ---- CFA program interpreter ------------------------------------------------------------- */

struct fde_ctx {
	const struct frame_section *sec;
	struct fde_rec *rec;
	struct enc_ctx enc;
	uint64_t loc;
	bool done; /* loc reached the end of the FDE: remaining instructions are irrelevant */
};

/* Append a row for [fde->loc, ...) with the current state; merge equal neighbours. */
static int emit_row(struct builder *b, const struct cie *cie, struct fde_ctx *f,
		    const struct cfa_state *st)
{
	struct cfi_rule rule;
	uint32_t idx;
	int r;

	compile_rule(b, cie, st, &rule);
	r = rule_intern(b, &rule, &idx);
	if (r < 0)
		return r;
	if (f->rec->n_rows > 0 && b->rows[b->n_rows - 1].rule == idx)
		return 0;
	r = grow((void **)&b->rows, &b->cap_rows, b->n_rows + 1, sizeof(*b->rows), CFI_MAX_ROWS);
	if (r < 0)
		return r;
	b->rows[b->n_rows++] = (struct tmp_row){.pc = f->loc, .rule = idx};
	f->rec->n_rows++;
	return 0;
}

static int advance_to(struct builder *b, const struct cie *cie, struct fde_ctx *f,
		      const struct cfa_state *st, uint64_t new_loc)
{
	int r;

	if (new_loc < f->loc)
		return -EBADMSG;
	if (new_loc == f->loc)
		return 0;
	r = emit_row(b, cie, f, st);
	if (r < 0)
		return r;
	if (new_loc >= f->rec->end)
		f->done = true;
	else
		f->loc = new_loc;
	return 0;
}

static int advance_by(struct builder *b, const struct cie *cie, struct fde_ctx *f,
		      const struct cfa_state *st, uint64_t delta)
{
	uint64_t d, new_loc;

	if (__builtin_mul_overflow(delta, cie->code_align, &d) ||
	    __builtin_add_overflow(f->loc, d, &new_loc))
		return -EBADMSG;
	return advance_to(b, cie, f, st, new_loc);
}

/* The x86_64 lazy-PLT CFA expression; returns the breg7 offset and the lit threshold. */
static bool match_plt_expression(const uint8_t *p, size_t len, int64_t *ret_off,
				 uint8_t *ret_threshold)
{
	struct cursor c = {.data = p, .pos = 0, .end = len};
	int64_t off, rip_off;
	uint8_t op, lit;

	if (cur_u8(&c, &op) < 0 || op != DW_OP_breg0 + X86_64_REG_RSP)
		return false;
	if (cur_sleb(&c, &off) < 0)
		return false;
	if (cur_u8(&c, &op) < 0 || op != DW_OP_breg0 + X86_64_REG_RIP)
		return false;
	if (cur_sleb(&c, &rip_off) < 0 || rip_off != 0)
		return false;
	if (c.end - c.pos != 7)
		return false;
	p += c.pos;
	lit = p[2];
	if (p[0] != DW_OP_lit0 + 15 || p[1] != DW_OP_and ||
	    (lit != DW_OP_lit0 + 10 && lit != DW_OP_lit0 + 11) || p[3] != DW_OP_ge ||
	    p[4] != DW_OP_lit0 + 3 || p[5] != DW_OP_shl || p[6] != DW_OP_plus)
		return false;
	*ret_off = off;
	*ret_threshold = lit - DW_OP_lit0;
	return true;
}

/* Which tracked slot DWARF register `reg` is, or -1 when its rules are dropped. */
static int track_index(const struct builder *b, const struct cie *cie, uint64_t reg)
{
	if (reg == cie->ra_reg)
		return TRACK_RA;
	if (reg == b->fp_reg)
		return TRACK_FP;
	return -1;
}

static void set_reg(const struct builder *b, const struct cie *cie, struct cfa_state *st,
		    uint64_t reg, uint8_t how, int64_t off)
{
	int i = track_index(b, cie, reg);

	if (i < 0)
		return;
	st->regs[i] = (struct reg_rule){.how = how, .off = off};
}

static void restore_reg(const struct builder *b, const struct cie *cie, struct cfa_state *st,
			const struct cfa_state *initial, uint64_t reg)
{
	int i = track_index(b, cie, reg);

	if (i >= 0)
		st->regs[i] = initial->regs[i];
}

/* off = factored * data_align; a product that overflows makes the rule unusable, not bad. */
static void set_reg_factored(const struct builder *b, const struct cie *cie, struct cfa_state *st,
			     uint64_t reg, uint8_t how, int64_t factored)
{
	int64_t off;

	if (__builtin_mul_overflow(factored, cie->data_align, &off) || !fits_i32(off))
		set_reg(b, cie, st, reg, REG_OTHER, 0);
	else
		set_reg(b, cie, st, reg, how, off);
}

static int uleb_to_i64(uint64_t u, int64_t *ret)
{
	if (u > INT64_MAX)
		return -EBADMSG;
	*ret = (int64_t)u;
	return 0;
}

/*
 * A CFA offset operand: a plain uleb, or (the _sf forms) a sleb scaled by the data alignment
 * factor. An overflowing product becomes INT64_MAX, which compile_rule makes "unsupported".
 */
static int read_cfa_offset(struct cursor *c, const struct cie *cie, bool sf, int64_t *ret)
{
	uint64_t u;
	int64_t s;
	int r;

	if (!sf) {
		r = cur_uleb(c, &u);
		return r < 0 ? r : uleb_to_i64(u, ret);
	}
	r = cur_sleb(c, &s);
	if (r < 0)
		return r;
	if (__builtin_mul_overflow(s, cie->data_align, ret))
		*ret = INT64_MAX;
	return 0;
}

/*
 * Run a CFA program from `c`. With f == NULL this is a CIE's initial program: location ops are
 * invalid there and DW_CFA_restore means "no rule". Returns 0 or -EBADMSG/-EOPNOTSUPP/-E2BIG/
 * -ENOMEM; *n_insns counts towards CFI_MAX_INSNS_PER_FDE, every program towards
 * CFI_MAX_INSNS_TOTAL.
 */
static int run_program(struct builder *b, const struct cie *cie, struct fde_ctx *f,
		       struct cursor *c, struct cfa_state *st, size_t *n_insns)
{
	/* Inside the CIE itself, "restore to the initial rule" means "no rule". */
	static const struct cfa_state unset_state = {};
	const struct cfa_state *initial = f ? &cie->initial : &unset_state;
	size_t depth = 0;
	int r = 0;

	while (c->pos < c->end && !(f && f->done)) {
		uint64_t reg, u, u2;
		int64_t s = 0;
		uint8_t op;

		if (++*n_insns > CFI_MAX_INSNS_PER_FDE)
			return -EBADMSG;
		if (++b->n_insns_total > CFI_MAX_INSNS_TOTAL)
			return -E2BIG;
		r = cur_u8(c, &op);
		if (r < 0)
			return r;

		switch (op & 0xc0) {
		case DW_CFA_advance_loc:
			if (!f)
				return -EBADMSG;
			r = advance_by(b, cie, f, st, op & 0x3f);
			if (r < 0)
				return r;
			continue;
		case DW_CFA_offset:
			r = cur_uleb(c, &u);
			if (r < 0)
				return r;
			r = uleb_to_i64(u, &s);
			if (r < 0)
				return r;
			set_reg_factored(b, cie, st, op & 0x3f, REG_OFFSET, s);
			continue;
		case DW_CFA_restore:
			restore_reg(b, cie, st, initial, op & 0x3f);
			continue;
		}

		switch (op) {
		case DW_CFA_nop:
			break;
		case DW_CFA_GNU_args_size:
			/* Only matters for landing pads, not for unwinding a sample. */
			r = cur_uleb(c, &u);
			break;

		case DW_CFA_set_loc:
			if (!f)
				return -EBADMSG;
			if (f->sec->is_eh)
				r = read_encoded(c, cie->fde_enc, &f->enc, false, &u);
			else
				r = cur_u64(c, &u);
			if (r < 0)
				return r;
			r = advance_to(b, cie, f, st, u);
			break;
		case DW_CFA_advance_loc1: {
			uint8_t d;
			if (!f)
				return -EBADMSG;
			r = cur_u8(c, &d);
			if (r == 0)
				r = advance_by(b, cie, f, st, d);
			break;
		}
		case DW_CFA_advance_loc2: {
			uint16_t d;
			if (!f)
				return -EBADMSG;
			r = cur_u16(c, &d);
			if (r == 0)
				r = advance_by(b, cie, f, st, d);
			break;
		}
		case DW_CFA_advance_loc4: {
			uint32_t d;
			if (!f)
				return -EBADMSG;
			r = cur_u32(c, &d);
			if (r == 0)
				r = advance_by(b, cie, f, st, d);
			break;
		}

		case DW_CFA_offset_extended:
		case DW_CFA_val_offset:
		case DW_CFA_GNU_negative_offset_extended:
			r = cur_uleb(c, &reg);
			if (r == 0)
				r = cur_uleb(c, &u);
			if (r == 0)
				r = uleb_to_i64(u, &s);
			if (r < 0)
				return r;
			if (op == DW_CFA_GNU_negative_offset_extended)
				s = -s;
			set_reg_factored(b, cie, st, reg,
					 op == DW_CFA_val_offset ? REG_VAL_OFFSET : REG_OFFSET, s);
			break;
		case DW_CFA_offset_extended_sf:
		case DW_CFA_val_offset_sf:
			r = cur_uleb(c, &reg);
			if (r == 0)
				r = cur_sleb(c, &s);
			if (r < 0)
				return r;
			set_reg_factored(b, cie, st, reg,
					 op == DW_CFA_val_offset_sf ? REG_VAL_OFFSET : REG_OFFSET,
					 s);
			break;
		case DW_CFA_restore_extended:
			r = cur_uleb(c, &reg);
			if (r < 0)
				return r;
			restore_reg(b, cie, st, initial, reg);
			break;
		case DW_CFA_undefined:
		case DW_CFA_same_value:
			r = cur_uleb(c, &reg);
			if (r < 0)
				return r;
			set_reg(b, cie, st, reg, op == DW_CFA_undefined ? REG_UNDEF : REG_SAME, 0);
			break;
		case DW_CFA_register:
			r = cur_uleb(c, &reg);
			if (r == 0)
				r = cur_uleb(c, &u2);
			if (r < 0)
				return r;
			set_reg(b, cie, st, reg, REG_OTHER, 0);
			break;
		case DW_CFA_expression:
		case DW_CFA_val_expression: {
			const uint8_t *p;
			size_t len;
			r = cur_uleb(c, &reg);
			if (r == 0)
				r = cur_block(c, &p, &len);
			if (r < 0)
				return r;
			set_reg(b, cie, st, reg, REG_OTHER, 0);
			break;
		}

		case DW_CFA_remember_state:
			if (depth >= CFI_MAX_REMEMBER_DEPTH)
				return -EBADMSG;
			b->remember[depth++] = *st;
			break;
		case DW_CFA_restore_state:
			if (depth == 0)
				return -EBADMSG;
			*st = b->remember[--depth];
			break;

		case DW_CFA_def_cfa:
		case DW_CFA_def_cfa_sf:
			r = cur_uleb(c, &reg);
			if (r < 0)
				return r;
			r = read_cfa_offset(c, cie, op == DW_CFA_def_cfa_sf, &s);
			if (r < 0)
				return r;
			st->cfa_how = CFA_REG;
			st->cfa_reg = reg;
			st->cfa_off = s;
			break;
		case DW_CFA_def_cfa_register:
			r = cur_uleb(c, &reg);
			if (r < 0)
				return r;
			st->cfa_how = CFA_REG;
			st->cfa_reg = reg;
			break;
		case DW_CFA_def_cfa_offset:
		case DW_CFA_def_cfa_offset_sf:
			/* Like libgcc, keep how the CFA is computed; only the offset changes. */
			r = read_cfa_offset(c, cie, op == DW_CFA_def_cfa_offset_sf, &s);
			if (r < 0)
				return r;
			st->cfa_off = s;
			break;
		case DW_CFA_def_cfa_expression: {
			const uint8_t *p;
			size_t len;
			int64_t off;
			uint8_t threshold;
			r = cur_block(c, &p, &len);
			if (r < 0)
				return r;
			if (b->e_machine == EM_X86_64 &&
			    match_plt_expression(p, len, &off, &threshold)) {
				st->cfa_how = CFA_PLT;
				st->cfa_off = off;
				st->plt_threshold = threshold;
			} else
				st->cfa_how = CFA_EXPR;
			break;
		}

		case DW_CFA_AARCH64_negate_ra_state:
			/* Same opcode as SPARC's DW_CFA_GNU_window_save: meaningless elsewhere. */
			if (b->e_machine != EM_AARCH64)
				return -EOPNOTSUPP;
			st->ra_signed = !st->ra_signed;
			break;

		case DW_CFA_MIPS_advance_loc8:
		default:
			return -EBADMSG;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- CIE / FDE parsing ------------------------------------------------------------------- */

struct entry {
	size_t start;  /* offset of the length field */
	size_t id_pos; /* offset of the CIE id / CIE pointer field */
	size_t end;    /* offset one past the entry */
	uint64_t id;
	bool is_cie;
	bool dwarf64;
};

/*
 * Read the header of the entry at `off`. Returns 1 with *ret filled, 0 at a terminator (or the
 * end), -EBADMSG when the length runs past the section (the walk cannot resync).
 */
static int read_entry(const struct frame_section *sec, size_t off, struct entry *ret)
{
	struct cursor c = {.data = sec->data, .pos = off, .end = sec->size};
	uint32_t len32;
	uint64_t len;
	int r;

	if (off >= sec->size)
		return 0;
	r = cur_u32(&c, &len32);
	if (r < 0)
		return -EBADMSG;
	if (len32 == 0)
		return 0;
	ret->dwarf64 = len32 == UINT32_MAX;
	if (ret->dwarf64) {
		r = cur_u64(&c, &len);
		if (r < 0)
			return -EBADMSG;
	} else
		len = len32;
	if (len > c.end - c.pos)
		return -EBADMSG;
	ret->start = off;
	ret->id_pos = c.pos;
	ret->end = c.pos + len;
	c.end = ret->end;

	if (ret->dwarf64)
		r = cur_u64(&c, &ret->id);
	else {
		r = cur_u32(&c, &len32);
		ret->id = len32;
	}
	if (r < 0)
		return -EBADMSG;
	if (sec->is_eh)
		ret->is_cie = ret->id == 0;
	else
		ret->is_cie = ret->id == (ret->dwarf64 ? UINT64_MAX : UINT32_MAX);
	return 1;
}

/* The CIE's NUL-terminated augmentation string into aug (MAX_AUGMENTATION_LEN + 1 bytes). */
static int read_augmentation(struct cursor *c, char *aug, size_t *ret_len)
{
	size_t len = 0;
	int r;

	for (;;) {
		uint8_t ch;
		r = cur_u8(c, &ch);
		if (r < 0)
			return r;
		if (ch == 0)
			break;
		if (len >= MAX_AUGMENTATION_LEN)
			return -EBADMSG;
		aug[len++] = ch;
	}
	aug[len] = 0;
	*ret_len = len;
	return 0;
}

/*
 * A "z" CIE's augmentation data, as its string (aug) describes it: the LSDA and FDE pointer
 * encodings, the personality pointer (skipped), the signal-frame flag. Leaves c at the initial
 * instructions.
 */
static int read_augmentation_data(struct cursor *c, const struct frame_section *sec,
				  const char *aug, size_t aug_len, struct cie *cie)
{
	struct enc_ctx enc = {.section_addr = sec->addr};
	size_t entry_end = c->end, aug_end;
	uint64_t len;
	int r;

	cie->has_z = true;
	r = cur_uleb(c, &len);
	if (r < 0)
		return r;
	if (len > c->end - c->pos)
		return -EBADMSG;
	aug_end = c->pos + len;
	c->end = aug_end; /* augmentation data may not spill into the instructions */
	for (size_t i = 1; i < aug_len; i++) {
		uint64_t dummy;
		uint8_t penc;
		bool unknown = false;

		switch (aug[i]) {
		case 'L':
			r = cur_u8(c, &cie->lsda_enc);
			break;
		case 'R':
			r = cur_u8(c, &cie->fde_enc);
			break;
		case 'P':
			r = cur_u8(c, &penc);
			if (r == 0)
				r = read_encoded(c, penc, &enc, true, &dummy);
			break;
		case 'S':
			cie->signal_frame = true;
			break;
		case 'B': /* aarch64 B-key signing: stripping does not care */
		case 'G': /* aarch64 MTE-tagged frames */
			break;
		default:
			/* Like libgcc: the "z" length lets us skip what we do not know. */
			unknown = true;
			break;
		}
		if (r < 0)
			return r;
		if (unknown)
			break;
	}
	c->pos = aug_end;
	c->end = entry_end;
	return 0;
}

static int parse_cie(struct builder *b, const struct frame_section *sec, size_t off,
		     struct cie *cie)
{
	struct entry e;
	struct cursor c;
	char aug[MAX_AUGMENTATION_LEN + 1];
	size_t aug_len = 0, n_insns = 0;
	int r;

	memset(cie, 0, sizeof(*cie));
	cie->offset = off;
	cie->fde_enc = DW_EH_PE_absptr;
	cie->lsda_enc = DW_EH_PE_omit;
	b->stats.n_cies++;

	r = read_entry(sec, off, &e);
	if (r <= 0 || !e.is_cie)
		return -EBADMSG;
	c = (struct cursor){.data = sec->data, .pos = e.id_pos + (e.dwarf64 ? 8 : 4), .end = e.end};

	r = cur_u8(&c, &cie->version);
	if (r < 0)
		return r;
	if (cie->version != 1 && cie->version != 3 && cie->version != 4)
		return -EOPNOTSUPP;

	r = read_augmentation(&c, aug, &aug_len);
	if (r < 0)
		return r;

	/* Legacy GCC "eh": a pointer-sized EH data field follows the string. */
	if (aug[0] == 'e' && aug[1] == 'h') {
		r = cur_skip(&c, ADDR_SIZE);
		if (r < 0)
			return r;
	}

	if (cie->version == 4) {
		uint8_t addr_size, seg_size;
		r = cur_u8(&c, &addr_size);
		if (r == 0)
			r = cur_u8(&c, &seg_size);
		if (r < 0)
			return r;
		if (addr_size != ADDR_SIZE || seg_size != 0)
			return -EOPNOTSUPP;
	}

	r = cur_uleb(&c, &cie->code_align);
	if (r == 0)
		r = cur_sleb(&c, &cie->data_align);
	if (r < 0)
		return r;
	if (cie->code_align == 0)
		return -EBADMSG;
	if (cie->version == 1) {
		uint8_t ra = 0;
		r = cur_u8(&c, &ra);
		cie->ra_reg = ra;
	} else
		r = cur_uleb(&c, &cie->ra_reg);
	if (r < 0)
		return r;

	if (aug[0] == 'z') {
		r = read_augmentation_data(&c, sec, aug, aug_len, cie);
		if (r < 0)
			return r;
	} else if (aug[0] != 0 && strcmp(aug, "eh") != 0)
		return -EOPNOTSUPP; /* cannot know where the instructions start */

	/* The FDE pointer encoding must be readable; an omitted one cannot be. */
	if (cie->fde_enc == DW_EH_PE_omit)
		return -EBADMSG;

	return run_program(b, cie, NULL, &c, &cie->initial, &n_insns);
}

static int cie_get(struct builder *b, const struct frame_section *sec, size_t off,
		   const struct cie **ret)
{
	struct cie_slot *slot = &b->cie_cache[(off / 4) % CFI_CIE_CACHE_SIZE];

	if (!slot->used || slot->cie.offset != off) {
		int r = parse_cie(b, sec, off, &slot->cie);
		/* Allocation failure is not a property of the CIE: do not cache it. */
		if (r == -ENOMEM || r == -E2BIG) {
			slot->used = false;
			return r;
		}
		slot->cie.err = r;
		slot->used = true;
	}
	*ret = &slot->cie;
	return slot->cie.err;
}

static int parse_fde(struct builder *b, const struct frame_section *sec, const struct entry *e)
{
	const struct cfi_sections *s = b->s;
	struct fde_ctx f = {.sec = sec};
	struct cfa_state st;
	const struct cie *cie;
	struct fde_rec *rec;
	struct cursor c;
	uint64_t start, range, end;
	size_t cie_off, n_insns = 0;
	int r;

	if (sec->is_eh) {
		/* Relative to the CIE pointer field; must land before it. */
		if (e->id > e->id_pos)
			return -EBADMSG;
		cie_off = e->id_pos - e->id;
	} else {
		if (e->id >= sec->size)
			return -EBADMSG;
		cie_off = e->id;
	}
	if (cie_off == e->start)
		return -EBADMSG;
	r = cie_get(b, sec, cie_off, &cie);
	if (r < 0)
		return r;

	f.enc = (struct enc_ctx){
	    .section_addr = sec->addr,
	    .data_base = s->data_base,
	    .has_data_base = s->data_base != 0,
	};
	c = (struct cursor){
	    .data = sec->data, .pos = e->id_pos + (e->dwarf64 ? 8 : 4), .end = e->end};

	if (sec->is_eh) {
		r = read_encoded(&c, cie->fde_enc, &f.enc, false, &start);
		if (r < 0)
			return r;
		/* The range is a plain size: format bits only, never relative. */
		r = read_encoded(&c, cie->fde_enc & 0x0f, &f.enc, false, &range);
	} else {
		r = cur_u64(&c, &start);
		if (r == 0)
			r = cur_u64(&c, &range);
	}
	if (r < 0)
		return r;
	if (__builtin_add_overflow(start, range, &end))
		return -EBADMSG;

	if (cie->has_z) {
		uint64_t len;
		r = cur_uleb(&c, &len);
		if (r == 0)
			r = cur_skip(&c, len);
	} else if (cie->lsda_enc != DW_EH_PE_omit) {
		uint64_t dummy;
		r = read_encoded(&c, cie->lsda_enc, &f.enc, true, &dummy);
	}
	if (r < 0)
		return r;

	/* Empty, discarded by the linker (address 0 in .debug_frame), or outside the code. */
	if (range == 0 || (!sec->is_eh && start == 0) ||
	    (s->pc_hi > s->pc_lo && (start < s->pc_lo || end > s->pc_hi)))
		return 1;

	r = grow((void **)&b->fdes, &b->cap_fdes, b->n_fdes + 1, sizeof(*b->fdes), CFI_MAX_FDES);
	if (r < 0)
		return r;
	rec = &b->fdes[b->n_fdes];
	*rec = (struct fde_rec){
	    .start = start,
	    .end = end,
	    .clip_start = start,
	    .first_row = b->n_rows,
	    .seq = b->n_fdes,
	    .source = sec->source,
	};
	f.rec = rec;
	f.loc = start;

	st = cie->initial;
	r = run_program(b, cie, &f, &c, &st, &n_insns);
	if (r == 0 && !f.done)
		r = emit_row(b, cie, &f, &st);
	if (r < 0) {
		b->n_rows = rec->first_row; /* drop the partial rows */
		return r;
	}
	b->n_fdes++;
	return 0;
}

static int walk_section(struct builder *b, const struct frame_section *sec)
{
	size_t off = 0;

	memset(b->cie_cache, 0, sizeof(b->cie_cache));

	for (;;) {
		struct entry e;
		int r;

		r = read_entry(sec, off, &e);
		if (r == 0) {
			/* .debug_frame has no terminator; a zero length there is 4 bytes of
			 * padding. */
			if (!sec->is_eh && off + 4 <= sec->size) {
				off += 4;
				continue;
			}
			return 0;
		}
		if (r < 0) {
			b->stats.n_entries_truncated++;
			return 0;
		}
		off = e.end;
		if (e.is_cie)
			continue;

		if (b->stats.n_fdes >= CFI_MAX_FDES)
			return -E2BIG;
		b->stats.n_fdes++;
		r = parse_fde(b, sec, &e);
		if (r == -ENOMEM || r == -E2BIG)
			return r;
		if (r == -EOPNOTSUPP)
			b->stats.n_fdes_unsupported++;
		else if (r < 0)
			b->stats.n_fdes_malformed++;
		else if (r > 0)
			b->stats.n_fdes_empty++;
	}
}

/* ---- assembling the table ---------------------------------------------------------------- */

static int fde_cmp(const void *a, const void *b)
{
	const struct fde_rec *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Sort fdes[0..n) and compact away those an earlier one fully covers; partly covered ones get
 * clip_start moved past the overlap. Returns the new count.
 */
static size_t clip_overlaps(struct builder *b, struct fde_rec *fdes, size_t n)
{
	uint64_t covered = 0;
	bool any = false;
	size_t k = 0;

	if (n == 0)
		return 0; /* fdes may be NULL */
	qsort(fdes, n, sizeof(*fdes), fde_cmp);
	for (size_t i = 0; i < n; i++) {
		struct fde_rec rec = fdes[i];

		if (any && rec.end <= covered) {
			b->stats.n_fdes_overlap++;
			continue;
		}
		if (any && rec.start < covered)
			rec.clip_start = covered;
		covered = rec.end;
		any = true;
		fdes[k++] = rec;
	}
	return k;
}

/* Whether [start, end) intersects one of the sorted, disjoint fdes[0..n). */
static bool overlaps_any(const struct fde_rec *fdes, size_t n, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = n;

	/* First FDE ending after start. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fdes[mid].end <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && fdes[lo].clip_start < end;
}

struct packer {
	struct cfi_table *t;
	size_t cap;
	bool wide;
};

static uint32_t row_rule(const struct cfi_table *t, size_t i)
{
	return t->row_rule32 ? t->row_rule32[i] : t->row_rule16[i];
}

/* Append a row; pcs arrive in ascending order. Equal neighbours merge, a later row at the
 * same pc replaces the earlier one. */
static int pack_row(struct packer *p, uint64_t pc, uint32_t rule)
{
	struct cfi_table *t = p->t;
	uint64_t off;

	if (t->n_rows > 0 && pc - t->base == t->row_pc[t->n_rows - 1])
		t->n_rows--;
	if (t->n_rows > 0 && row_rule(t, t->n_rows - 1) == rule)
		return 0;
	if (t->n_rows == 0)
		t->base = pc;
	off = pc - t->base;
	if (off > UINT32_MAX)
		return -EFBIG;
	if (t->n_rows >= p->cap)
		return -E2BIG; /* cannot happen: cap counts every possible row */
	t->row_pc[t->n_rows] = off;
	if (p->wide)
		t->row_rule32[t->n_rows] = rule;
	else
		t->row_rule16[t->n_rows] = rule;
	t->n_rows++;
	return 0;
}

static int assemble(struct builder *b, struct cfi_table *t)
{
	size_t n_eh = 0, n, k, cap;
	struct packer p = {.t = t};
	int r;

	/* .eh_frame FDEs come first in b->fdes (that section is walked first). */
	while (n_eh < b->n_fdes && b->fdes[n_eh].source == SOURCE_EH_FRAME)
		n_eh++;
	n = clip_overlaps(b, b->fdes, n_eh);
	/*
	 * .debug_frame only fills holes: keep its FDEs that touch no .eh_frame survivor. k >= n
	 * always, so survivors [0, n) stay intact while we compact behind them.
	 */
	k = n;
	for (size_t i = n_eh; i < b->n_fdes; i++) {
		if (overlaps_any(b->fdes, n, b->fdes[i].start, b->fdes[i].end))
			b->stats.n_fdes_overlap++;
		else
			b->fdes[k++] = b->fdes[i];
	}
	n = clip_overlaps(b, b->fdes, k);
	b->stats.n_fdes_used = n;

	/* Every scratch row plus one gap row per FDE, at most. */
	if (size_add(b->n_rows, n + 1, &cap) < 0)
		return -E2BIG;
	p.cap = cap;
	p.wide = b->n_rules > UINT16_MAX;
	t->row_pc = malloc(MAX(cap, (size_t)1) * sizeof(*t->row_pc));
	if (p.wide)
		t->row_rule32 = malloc(MAX(cap, (size_t)1) * sizeof(*t->row_rule32));
	else
		t->row_rule16 = malloc(MAX(cap, (size_t)1) * sizeof(*t->row_rule16));
	if (!t->row_pc || (!t->row_rule16 && !t->row_rule32))
		return -ENOMEM;

	for (size_t i = 0; i < n; i++) {
		const struct fde_rec *rec = &b->fdes[i];
		const struct tmp_row *rows = b->rows + rec->first_row;

		if (i > 0 && rec->clip_start > b->fdes[i - 1].end) {
			r = pack_row(&p, b->fdes[i - 1].end, 0);
			if (r < 0)
				return r;
		}
		for (size_t j = 0; j < rec->n_rows; j++) {
			/* Rows wholly before the clip point are superseded by the next one. */
			if (j + 1 < rec->n_rows && rows[j + 1].pc <= rec->clip_start)
				continue;
			r = pack_row(&p, MAX(rows[j].pc, rec->clip_start), rows[j].rule);
			if (r < 0)
				return r;
		}
	}
	if (n > 0) {
		r = pack_row(&p, b->fdes[n - 1].end, 0);
		if (r < 0)
			return r;
	}

	/* Give back the slack. */
	if (t->n_rows > 0 && t->n_rows < cap) {
		void *q = realloc(t->row_pc, t->n_rows * sizeof(*t->row_pc));
		if (q)
			t->row_pc = q;
		if (p.wide) {
			q = realloc(t->row_rule32, t->n_rows * sizeof(*t->row_rule32));
			if (q)
				t->row_rule32 = q;
		} else {
			q = realloc(t->row_rule16, t->n_rows * sizeof(*t->row_rule16));
			if (q)
				t->row_rule16 = q;
		}
	}
	return 0;
}

static void builder_done(struct builder *b)
{
	free(b->fdes);
	free(b->rows);
	free(b->rules);
	hash_index_free(&b->rule_index);
}

void cfi_table_free(struct cfi_table *t)
{
	if (!t)
		return;
	free(t->row_pc);
	free(t->row_rule16);
	free(t->row_rule32);
	free(t->rules);
	free(t);
}

DEFINE_FREEP(struct cfi_table, cfi_table_free);

int cfi_eh_frame_hdr_parse(const struct cfi_section *hdr, struct cfi_eh_frame_hdr *ret)
{
	struct enc_ctx enc;
	struct cursor c;
	uint8_t version, ptr_enc, count_enc, table_enc;
	uint64_t eh_frame_addr, count = 0;
	int r;

	if (!hdr || !hdr->data || !ret)
		return -EINVAL;
	enc = (struct enc_ctx){
	    .section_addr = hdr->addr, .data_base = hdr->addr, .has_data_base = true};
	c = (struct cursor){.data = hdr->data, .pos = 0, .end = hdr->size};

	r = cur_u8(&c, &version);
	if (r == 0)
		r = cur_u8(&c, &ptr_enc);
	if (r == 0)
		r = cur_u8(&c, &count_enc);
	if (r == 0)
		r = cur_u8(&c, &table_enc);
	if (r < 0)
		return r;
	if (version != 1)
		return -EBADMSG;
	r = read_encoded(&c, ptr_enc, &enc, false, &eh_frame_addr);
	if (r < 0)
		return r == -EOPNOTSUPP ? -EBADMSG : r;
	if (count_enc != DW_EH_PE_omit && table_enc != DW_EH_PE_omit) {
		r = read_encoded(&c, count_enc, &enc, false, &count);
		if (r < 0)
			return r == -EOPNOTSUPP ? -EBADMSG : r;
	}
	*ret = (struct cfi_eh_frame_hdr){
	    .eh_frame_addr = eh_frame_addr,
	    .fde_count = count,
	    .table_enc = count ? table_enc : DW_EH_PE_omit,
	};
	return 0;
}

int cfi_table_build(uint16_t e_machine, const struct cfi_sections *s, struct cfi_table **ret)
{
	_cleanup_(cfi_table_freep) struct cfi_table *t = NULL;
	struct builder *b;
	struct cfi_rule gap = {};
	uint32_t gap_idx;
	int r;

	if (!s || !ret)
		return -EINVAL;
	if (e_machine != EM_X86_64 && e_machine != EM_AARCH64)
		return -EINVAL;
	if (!s->eh_frame.data && !s->debug_frame.data)
		return -ENODATA;
	if ((s->eh_frame.data && s->eh_frame.size > CFI_MAX_SECTION_SIZE) ||
	    (s->debug_frame.data && s->debug_frame.size > CFI_MAX_SECTION_SIZE))
		return -E2BIG;

	/* The builder is large (remember stack, CIE cache): keep it off the stack. */
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->e_machine = e_machine;
	b->s = s;
	if (e_machine == EM_X86_64) {
		b->sp_reg = X86_64_REG_RSP;
		b->fp_reg = X86_64_REG_RBP;
	} else {
		b->sp_reg = AARCH64_REG_SP;
		b->fp_reg = AARCH64_REG_X29;
	}

	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		goto out;
	}
	t->e_machine = e_machine;

	if (s->eh_frame_hdr.data) {
		struct cfi_eh_frame_hdr hdr;
		if (cfi_eh_frame_hdr_parse(&s->eh_frame_hdr, &hdr) == 0) {
			b->stats.hdr_fde_count = hdr.fde_count;
			b->stats.hdr_mismatch =
			    s->eh_frame.data && hdr.eh_frame_addr != s->eh_frame.addr;
		} else
			b->stats.hdr_mismatch = true;
	}

	/* Rule 0 is the gap rule (all zero, CFI_CFA_NONE). */
	r = rule_intern(b, &gap, &gap_idx);
	if (r < 0)
		goto out;

	if (s->eh_frame.data) {
		struct frame_section sec = {
		    .data = s->eh_frame.data,
		    .size = s->eh_frame.size,
		    .addr = s->eh_frame.addr,
		    .is_eh = true,
		    .source = SOURCE_EH_FRAME,
		};
		r = walk_section(b, &sec);
		if (r < 0)
			goto out;
	}
	if (s->debug_frame.data) {
		struct frame_section sec = {
		    .data = s->debug_frame.data,
		    .size = s->debug_frame.size,
		    .addr = s->debug_frame.addr,
		    .is_eh = false,
		    .source = SOURCE_DEBUG_FRAME,
		};
		r = walk_section(b, &sec);
		if (r < 0)
			goto out;
	}

	r = assemble(b, t);
	if (r < 0)
		goto out;

	t->rules = TAKE_PTR(b->rules);
	t->n_rules = b->n_rules;
	{
		/* The builder grew it by doubling; the table keeps it for its lifetime. */
		struct cfi_rule *q = realloc(t->rules, t->n_rules * sizeof(*t->rules));
		if (q)
			t->rules = q;
	}
	b->stats.n_rows = t->n_rows;
	b->stats.n_rules = t->n_rules;
	t->stats = b->stats;
	*ret = TAKE_PTR(t);
	r = 0;
out:
	builder_done(b);
	free(b);
	return r;
}

uint16_t cfi_table_e_machine(const struct cfi_table *t)
{
	return t ? t->e_machine : 0;
}

size_t cfi_table_n_rows(const struct cfi_table *t)
{
	return t ? t->n_rows : 0;
}

size_t cfi_table_size_bytes(const struct cfi_table *t)
{
	if (!t)
		return 0;
	return sizeof(*t) + t->n_rows * (sizeof(uint32_t) + (t->row_rule32 ? 4 : 2)) +
	       t->n_rules * sizeof(struct cfi_rule);
}

const struct cfi_table_stats *cfi_table_get_stats(const struct cfi_table *t)
{
	return t ? &t->stats : NULL;
}

int cfi_table_lookup(const struct cfi_table *t, uint64_t pc, struct cfi_rule *ret)
{
	size_t lo = 0, hi;
	uint64_t off;
	uint32_t rule;

	if (!t || !ret)
		return -EINVAL;
	if (t->n_rows == 0 || pc < t->base)
		return -ENOENT;
	off = pc - t->base;
	if (off > UINT32_MAX)
		return -ENOENT;

	/* Last row with row_pc <= off. */
	hi = t->n_rows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->row_pc[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	rule = row_rule(t, lo - 1);
	if (rule == 0)
		return -ENOENT;
	*ret = t->rules[rule];
	return 0;
}

/* ---- applying a rule --------------------------------------------------------------------- */

int cfi_step(const struct cfi_rule *rule, const struct unwind_input *in, struct unwind_regs *regs,
	     bool first, bool *ret_end)
{
	uint64_t cfa, ra, fp;

	*ret_end = false;

	switch (rule->cfa_kind) {
	case CFI_CFA_SP:
		cfa = regs->sp + (uint64_t)(int64_t)rule->cfa_offset;
		break;
	case CFI_CFA_FP:
		/* An fp we could not recover (see CFI_FP_UNDEFINED) is 0: not a base to use. */
		if (regs->fp == 0)
			return UNWIND_STOP_NO_CFI;
		cfa = regs->fp + (uint64_t)(int64_t)rule->cfa_offset;
		break;
	case CFI_CFA_PLT_X86_64:
		cfa = regs->sp + (uint64_t)(int64_t)rule->cfa_offset +
		      ((regs->pc & 15) >= rule->cfa_plt_threshold ? 8 : 0);
		break;
	default:
		return UNWIND_STOP_NO_CFI;
	}

	switch (rule->ra_kind) {
	case CFI_RA_UNDEFINED:
		*ret_end = true;
		return 0;
	case CFI_RA_CFA_OFFSET:
		if (!unwind_read_u64(in, cfa + (uint64_t)(int64_t)rule->ra_offset, &ra))
			return UNWIND_STOP_TRUNCATED;
		break;
	case CFI_RA_LR:
		/* Only the sampled frame's lr is live; deeper frames' lr values are unknown. */
		if (!first)
			return UNWIND_STOP_NO_CFI;
		ra = regs->lr;
		break;
	default:
		return UNWIND_STOP_NO_CFI;
	}

	switch (rule->fp_kind) {
	case CFI_FP_SAME:
		fp = regs->fp;
		break;
	case CFI_FP_CFA_OFFSET: {
		uint64_t slot = cfa + (uint64_t)(int64_t)rule->fp_offset;

		/*
		 * In an epilogue gcc's CFI still names the save slot after `pop %rbp` (it emits no
		 * restore): a slot below sp was popped already, so the register holds the value.
		 */
		if (slot < regs->sp) {
			fp = regs->fp;
			break;
		}
		if (!unwind_read_u64(in, slot, &fp))
			return UNWIND_STOP_TRUNCATED;
		break;
	}
	case CFI_FP_VAL_OFFSET:
		fp = cfa + (uint64_t)(int64_t)rule->fp_offset;
		break;
	default:
		fp = 0;
		break;
	}

	if (in->e_machine == EM_AARCH64) {
		regs->lr = ra;
		if (rule->flags & CFI_RULE_RA_SIGNED)
			ra &= CFI_AARCH64_PAC_MASK;
	}
	regs->pc = ra;
	regs->sp = cfa;
	regs->fp = fp;
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * cfi_table_build() from raw .eh_frame_hdr / .eh_frame / .debug_frame bytes (framing in
 * fuzz-common.h), then lookups and cfi_step() on what was built.
 */
#include <elf.h>
#include <errno.h>

#include "pipeline/unwind/cfi.h"
#include "tests/fuzz/fuzz-common.h"

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	/* malloc(0) may return NULL: keep a valid pointer for empty sections. */
	uint8_t *d = malloc(n ? n : 1);

	if (!d)
		abort();
	memcpy(d, p, n);
	return d;
}

static void check_stats(const struct cfi_table *t)
{
	const struct cfi_table_stats *st = cfi_table_get_stats(t);

	FUZZ_CHECK(st);
	/* "FDE counters partition n_fdes" (cfi.h). */
	FUZZ_CHECK(st->n_fdes == st->n_fdes_used + st->n_fdes_malformed + st->n_fdes_unsupported +
				     st->n_fdes_overlap + st->n_fdes_empty);
	FUZZ_CHECK(st->n_fdes <= CFI_MAX_FDES);
	FUZZ_CHECK(st->n_rows == cfi_table_n_rows(t) && st->n_rows <= CFI_MAX_ROWS);
	FUZZ_CHECK(st->n_rules >= 1 && st->n_rules <= CFI_MAX_RULES);
	FUZZ_CHECK(st->n_rules_unsupported < st->n_rules);
	/* Every FDE adds at most one row per instruction plus a gap row. */
	FUZZ_CHECK(st->n_rows <= st->n_fdes_used * (CFI_MAX_INSNS_PER_FDE + 2));
}

static void check_lookup(const struct cfi_table *t, uint16_t machine, uint64_t pc,
			 const uint8_t *stack, size_t stack_len)
{
	struct cfi_rule rule;
	int r = cfi_table_lookup(t, pc, &rule);

	if (r < 0) {
		FUZZ_CHECK(r == -ENOENT);
		return;
	}
	FUZZ_CHECK(rule.cfa_kind != CFI_CFA_NONE && rule.cfa_kind <= CFI_CFA_UNSUPPORTED);
	FUZZ_CHECK(rule.ra_kind <= CFI_RA_UNDEFINED && rule.fp_kind <= CFI_FP_UNSUPPORTED);
	FUZZ_CHECK(rule.cfa_kind != CFI_CFA_PLT_X86_64 || machine == EM_X86_64);
	FUZZ_CHECK(rule.ra_kind != CFI_RA_LR || machine == EM_AARCH64);

	/* Apply it to a frame whose stack is the input's own bytes: reads must stay inside. */
	struct unwind_input in = {
	    .e_machine = machine,
	    .stack = stack,
	    .stack_start = 0x7ff000000000ull,
	    .stack_len = stack_len,
	};
	struct unwind_regs regs = {
	    .pc = pc, .sp = in.stack_start, .fp = in.stack_start + 16, .lr = 0x400000};
	bool end;

	r = cfi_step(&rule, &in, &regs, pc & 1, &end);
	FUZZ_CHECK(r == 0 || r == UNWIND_STOP_TRUNCATED || r == UNWIND_STOP_NO_CFI);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cfi_header h;
	struct cfi_sections s = {};
	struct cfi_table *t = NULL;
	uint8_t *hdr = NULL, *eh = NULL, *dbg = NULL;
	uint16_t machine;
	size_t hdr_len, eh_len;
	int r;

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);
	machine = h.machine & 1 ? EM_AARCH64 : EM_X86_64;
	hdr_len = fuzz_min(h.hdr_len, size);
	eh_len = fuzz_min(h.eh_len, size - hdr_len);

	if (h.present & FUZZ_CFI_HAS_HDR) {
		hdr = dup_bytes(data, hdr_len);
		s.eh_frame_hdr =
		    (struct cfi_section){.data = hdr, .size = hdr_len, .addr = h.hdr_addr};
	}
	if (h.present & FUZZ_CFI_HAS_EH) {
		eh = dup_bytes(data + hdr_len, eh_len);
		s.eh_frame = (struct cfi_section){.data = eh, .size = eh_len, .addr = h.eh_addr};
	}
	if (h.present & FUZZ_CFI_HAS_DEBUG) {
		dbg = dup_bytes(data + hdr_len + eh_len, size - hdr_len - eh_len);
		s.debug_frame = (struct cfi_section){
		    .data = dbg, .size = size - hdr_len - eh_len, .addr = h.debug_addr};
	}
	s.data_base = h.data_base;
	s.pc_lo = h.pc_lo;
	s.pc_hi = h.pc_hi;

	if (hdr) {
		struct cfi_eh_frame_hdr eh_hdr;

		r = cfi_eh_frame_hdr_parse(&s.eh_frame_hdr, &eh_hdr);
		FUZZ_CHECK(r == 0 || r == -EBADMSG);
	}

	r = cfi_table_build(machine, &s, &t);
	if (r < 0) {
		FUZZ_CHECK(r == -ENODATA || r == -E2BIG || r == -EFBIG || r == -ENOMEM);
		FUZZ_CHECK(!(h.present & (FUZZ_CFI_HAS_EH | FUZZ_CFI_HAS_DEBUG)) || r != -ENODATA);
		goto out;
	}
	FUZZ_CHECK(cfi_table_e_machine(t) == machine);
	check_stats(t);

	/*
	 * Probe pcs: both ends and the middle of the declared code range, and addresses near each
	 * section (pcrel FDEs point a little below .eh_frame in real binaries).
	 */
	{
		uint64_t bases[] = {h.pc_lo,   h.pc_hi,	   h.pc_lo + (h.pc_hi - h.pc_lo) / 2,
				    h.eh_addr, h.hdr_addr, h.debug_addr};
		const uint8_t *stack = dbg ? dbg : eh ? eh : hdr;
		size_t stack_len = dbg ? size - hdr_len - eh_len : eh ? eh_len : hdr_len;

		for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
			for (uint64_t d = 0; d < 0x2000; d += 0x101)
				check_lookup(t, machine, bases[i] - 0x1000 + d, stack, stack_len);
	}
	cfi_table_free(t);
out:
	free(hdr);
	free(eh);
	free(dbg);
	return 0;
}

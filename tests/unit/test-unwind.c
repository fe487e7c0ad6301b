// SPDX-License-Identifier: MIT
/*
 * Unit tests for pipeline/unwind: synthetic stacks (byte arrays at a fake stack address, a fake
 * address space) for both architectures, and on x86_64 hosts a walk of our own live stack.
 */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "common/macro.h"
#include "pipeline/unwind/unwind.h"

#define BASE UINT64_C(0x7ffd0000)
#define STACK_LEN 4096
#define STACK_END (BASE + STACK_LEN)

/* Fake code mappings: an "executable" and a "libc". Everything else is unmapped. */
#define EXE_START UINT64_C(0x400000)
#define EXE_END UINT64_C(0x500000)
#define LIBC_START UINT64_C(0x7f0000000000)
#define LIBC_END UINT64_C(0x7f0000200000)

static uint8_t stack_mem[STACK_LEN];
static struct unwind_frame frames[64];
static struct unwind_result res;
static uint64_t lookups[64];
static size_t n_lookups;

static int fake_find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	static const struct unwind_module mods[] = {
		{ .start = EXE_START, .end = EXE_END },
		{ .start = LIBC_START, .end = LIBC_END, .bias = (int64_t)LIBC_START },
	};

	if (n_lookups < ARRAY_SIZE(lookups))
		lookups[n_lookups++] = pc;
	for (size_t i = 0; i < ARRAY_SIZE(mods); i++)
		if (pc >= mods[i].start && pc < mods[i].end) {
			*ret = mods[i];
			return 0;
		}
	return -ENOENT;
}

/* Store little-endian bytes whatever the host, as the target would have. */
static void put64_in(uint8_t *mem, size_t len, uint64_t addr, uint64_t v)
{
	cr_assert(addr >= BASE && addr - BASE <= len - 8, "put64 at %#" PRIx64 " outside", addr);
	for (int i = 0; i < 8; i++)
		mem[addr - BASE + i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint64_t addr, uint64_t v)
{
	put64_in(stack_mem, sizeof(stack_mem), addr, v);
}

/* A frame record {saved fp, return address} at fp: the same layout on x86_64 and aarch64. */
static void put_record(uint64_t fp, uint64_t saved_fp, uint64_t ra)
{
	put64(fp, saved_fp);
	put64(fp + 8, ra);
}

static struct unwind_input make_input(uint16_t e_machine, uint64_t pc, uint64_t sp, uint64_t fp)
{
	return (struct unwind_input){
		.e_machine = e_machine,
		.regs = { .pc = pc, .sp = sp, .fp = fp },
		.stack = stack_mem,
		.stack_start = BASE,
		.stack_len = sizeof(stack_mem),
		.find_module = fake_find_module,
	};
}

static int run(const struct unwind_input *in, size_t max_frames)
{
	memset(frames, 0xa5, sizeof(frames));
	n_lookups = 0;
	cr_assert(max_frames <= ARRAY_SIZE(frames));
	res = (struct unwind_result){ .frames = frames, .max_frames = max_frames };
	return unwind_stack(in, &res);
}

static void assert_chain(const uint64_t *pcs, size_t n, enum unwind_stop stop)
{
	cr_assert_eq(res.n_frames, n, "n_frames %zu, expected %zu (stop %s)", res.n_frames, n,
		     unwind_stop_name(res.stop));
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(frames[i].pc, pcs[i], "frame %zu: pc %#" PRIx64 ", expected %#" PRIx64, i,
			     frames[i].pc, pcs[i]);
		cr_assert_eq(frames[i].is_return, i > 0, "frame %zu: is_return", i);
	}
	cr_assert_eq(res.stop, stop, "stop %s, expected %s", unwind_stop_name(res.stop),
		     unwind_stop_name(stop));
	cr_assert_eq(res.complete, stop == UNWIND_STOP_END);
}

/*
 * leaf (pc 0x401000) -> 0x401234 -> 0x402345 -> libc 0x7f0000001110, then a saved fp of 0 as
 * glibc's _start leaves it. ras[] are stored as given (aarch64 tests pass signed ones).
 */
static const uint64_t chain_pcs[] = { 0x401000, 0x401234, 0x402344, 0x7f0000001110 };

static struct unwind_input build_chain(uint16_t e_machine, const uint64_t ras[3])
{
	put_record(BASE + 0x40, BASE + 0x100, ras[0]);
	put_record(BASE + 0x100, BASE + 0x200, ras[1]);
	put_record(BASE + 0x200, 0, ras[2]);
	return make_input(e_machine, chain_pcs[0], BASE, BASE + 0x40);
}

static const uint64_t plain_ras[3] = { 0x401234, 0x402344, 0x7f0000001110 };

/* ---- small pieces ---------------------------------------------------------------------- */

Test(unwind, stop_names)
{
	for (int i = 0; i < _UNWIND_STOP_MAX; i++) {
		const char *a = unwind_stop_name(i);

		cr_assert(a && *a && strcmp(a, "unknown") != 0, "stop %d has no name", i);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(a, unwind_stop_name(j));
	}
	cr_assert_str_eq(unwind_stop_name(UNWIND_STOP_END), "end");
	cr_assert_str_eq(unwind_stop_name(UNWIND_STOP_TRUNCATED), "truncated");
	cr_assert_str_eq(unwind_stop_name(_UNWIND_STOP_MAX), "unknown");
	cr_assert_str_eq(unwind_stop_name((enum unwind_stop)-1), "unknown");
}

Test(unwind, arch_find)
{
	cr_assert_eq(unwind_arch_find(EM_X86_64), &unwind_arch_x86_64);
	cr_assert_eq(unwind_arch_find(EM_AARCH64), &unwind_arch_aarch64);
	cr_assert_null(unwind_arch_find(EM_386));
	cr_assert_null(unwind_arch_find(EM_ARM));
	cr_assert_null(unwind_arch_find(EM_NONE));
	cr_assert_str_eq(unwind_arch_x86_64.name, "x86_64");
	cr_assert_str_eq(unwind_arch_aarch64.name, "aarch64");
}

Test(unwind, strip_ra)
{
	cr_assert_eq(unwind_arch_aarch64.strip_ra(UINT64_C(0x003f000000401234)), 0x401234);
	cr_assert_eq(unwind_arch_aarch64.strip_ra(UINT64_C(0xff7f7fffb7e01234)),
		     UINT64_C(0x7fffb7e01234));
	cr_assert_eq(unwind_arch_aarch64.strip_ra(0x401234), 0x401234);
	cr_assert_eq(unwind_arch_x86_64.strip_ra(UINT64_C(0x003f000000401234)),
		     UINT64_C(0x003f000000401234));
}

Test(unwind, read_u64)
{
	struct unwind_input in = make_input(EM_X86_64, 0, BASE, 0);
	uint64_t v;

	for (size_t i = 0; i < 16; i++)
		stack_mem[i] = (uint8_t)(0x10 + i);
	put64(STACK_END - 8, UINT64_C(0x1122334455667788));

	cr_assert(unwind_read_u64(&in, BASE, &v));
	cr_assert_eq(v, UINT64_C(0x1716151413121110));
	/* Unaligned. */
	cr_assert(unwind_read_u64(&in, BASE + 3, &v));
	cr_assert_eq(v, UINT64_C(0x1a19181716151413));
	/* The last 8 bytes, and every read straddling the end. */
	cr_assert(unwind_read_u64(&in, STACK_END - 8, &v));
	cr_assert_eq(v, UINT64_C(0x1122334455667788));
	for (uint64_t a = STACK_END - 7; a <= STACK_END + 8; a++)
		cr_assert_not(unwind_read_u64(&in, a, &v), "read at end%+d", (int)(a - STACK_END));
	/* Before the start, and addresses where addr + 8 wraps. */
	cr_assert_not(unwind_read_u64(&in, BASE - 1, &v));
	cr_assert_not(unwind_read_u64(&in, BASE - 8, &v));
	cr_assert_not(unwind_read_u64(&in, 0, &v));
	cr_assert_not(unwind_read_u64(&in, UINT64_MAX, &v));
	cr_assert_not(unwind_read_u64(&in, UINT64_MAX - 3, &v));

	/* An odd-sized copy. */
	in.stack_len = 13;
	cr_assert(unwind_read_u64(&in, BASE + 5, &v));
	cr_assert_not(unwind_read_u64(&in, BASE + 6, &v));
	in.stack_len = 7;
	cr_assert_not(unwind_read_u64(&in, BASE, &v));
	in.stack_len = 0;
	cr_assert_not(unwind_read_u64(&in, BASE, &v));

	/* A copy that ends exactly at the top of the address space. */
	in.stack_start = UINT64_MAX - 15;
	in.stack_len = 16;
	cr_assert(unwind_read_u64(&in, UINT64_MAX - 7, &v));
	cr_assert_not(unwind_read_u64(&in, UINT64_MAX - 6, &v));

	in.stack = NULL;
	cr_assert_not(unwind_read_u64(&in, in.stack_start, &v));
	cr_assert_not(unwind_read_u64(NULL, BASE, &v));
}

/* ---- complete chains ------------------------------------------------------------------- */

Test(unwind, x86_64_chain)
{
	struct unwind_input in = build_chain(EM_X86_64, plain_ras);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain(chain_pcs, 4, UNWIND_STOP_END);
	/*
	 * Frame 0 is looked up at pc, return addresses at pc - 1; a frame inside the mapping of
	 * the frame before it reuses that module without a lookup.
	 */
	cr_assert_geq(n_lookups, 1);
	cr_assert_leq(n_lookups, 4);
	cr_assert_eq(lookups[0], chain_pcs[0]);
	for (size_t i = 1, j = 1; i < 4; i++) {
		bool same = (chain_pcs[i] - 1 >= EXE_START && chain_pcs[i] - 1 < EXE_END) ==
			    (chain_pcs[i - 1] - (i > 1) >= EXE_START &&
			     chain_pcs[i - 1] - (i > 1) < EXE_END);

		if (same)
			continue;
		cr_assert_lt(j, n_lookups, "frame %zu changed mapping without a lookup", i);
		cr_assert_eq(lookups[j], chain_pcs[i] - 1);
		j++;
	}
}

/*
 * stack_used is how much of the copy the walk needs: copying exactly that much walks as far,
 * a byte less does not (what the adaptive stack copy relies on).
 */
Test(unwind, stack_used_is_what_the_walk_needs)
{
	for (int a = 0; a < 2; a++) {
		struct unwind_input in = build_chain(a ? EM_AARCH64 : EM_X86_64, plain_ras);

		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain(chain_pcs, 4, UNWIND_STOP_END);
		/* The outermost record is at +0x200: its caller's sp is +0x210. */
		cr_assert_eq(res.stack_used, 0x210, "stack_used %#" PRIx64, res.stack_used);

		in.stack_len = 0x210;
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain(chain_pcs, 4, UNWIND_STOP_END);
		cr_assert_eq(res.stack_used, 0x210);

		in.stack_len = 0x20f;
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain(chain_pcs, 3, UNWIND_STOP_TRUNCATED);
		cr_assert_leq(res.stack_used, in.stack_len);
	}
}

Test(unwind, aarch64_chain_pac_stripped)
{
	const uint64_t signed_ras[3] = {
		UINT64_C(0x003f000000401234),
		UINT64_C(0x0045000000402344),
		UINT64_C(0xff127f0000001110),
	};
	struct unwind_input in = build_chain(EM_AARCH64, signed_ras);

	/* LR is not used by the FP walk (see unwind.h: known limitation). */
	in.regs.lr = 0x404000;
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain(chain_pcs, 4, UNWIND_STOP_END);
}

Test(unwind, return_address_zero_is_end)
{
	put_record(BASE + 0x40, BASE + 0x100, 0x401234);
	put_record(BASE + 0x100, BASE + 0x200, 0);
	for (int a = 0; a < 2; a++) {
		struct unwind_input in =
			make_input(a ? EM_AARCH64 : EM_X86_64, 0x401000, BASE, BASE + 0x40);

		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_END);
	}
}

Test(unwind, fp_zero_in_first_frame_is_end)
{
	struct unwind_input in = make_input(EM_X86_64, 0x401000, BASE, 0);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000 }, 1, UNWIND_STOP_END);
}

Test(unwind, max_frames_equal_to_depth_is_end)
{
	struct unwind_input in = build_chain(EM_X86_64, plain_ras);

	cr_assert_eq(run(&in, 4), 0);
	assert_chain(chain_pcs, 4, UNWIND_STOP_END);
}

Test(unwind, no_find_module_means_all_mapped)
{
	struct unwind_input in;

	put_record(BASE + 0x40, 0, 0x1234);
	in = make_input(EM_X86_64, 0x10, BASE, BASE + 0x40);
	in.find_module = NULL;
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x10, 0x1234 }, 2, UNWIND_STOP_END);
}

Test(unwind, return_address_at_end_of_mapping)
{
	/* A call to a noreturn function as the mapping's last instruction. */
	put_record(BASE + 0x40, 0, EXE_END);
	struct unwind_input in = make_input(EM_X86_64, 0x401000, BASE, BASE + 0x40);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, EXE_END }, 2, UNWIND_STOP_END);
}

/* ---- stop reasons ---------------------------------------------------------------------- */

Test(unwind, truncated_fp_past_copy)
{
	for (int a = 0; a < 2; a++) {
		struct unwind_input in;

		put_record(BASE + 0x40, STACK_END + 0x100, 0x401234);
		in = make_input(a ? EM_AARCH64 : EM_X86_64, 0x401000, BASE, BASE + 0x40);
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_TRUNCATED);

		/* Already the sample's own fp is outside the copy. */
		in.regs.fp = STACK_END;
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000 }, 1, UNWIND_STOP_TRUNCATED);
	}
}

Test(unwind, truncated_record_straddles_end)
{
	/* The saved fp is the copy's last 8 bytes; the return address would be past it. */
	put_record(BASE + 0x40, STACK_END - 8, 0x401234);
	put64(STACK_END - 8, 0);
	struct unwind_input in = make_input(EM_X86_64, 0x401000, BASE, BASE + 0x40);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_TRUNCATED);

	/* Same with a copy whose length is not a multiple of 8. */
	put_record(BASE + 0x40, BASE + 0x100, 0x401234);
	put_record(BASE + 0x100, 0, 0x402344);
	in.stack_len = 0x10c;
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_TRUNCATED);

	/* No stack bytes at all. */
	in.stack = NULL;
	in.stack_len = 0;
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000 }, 1, UNWIND_STOP_TRUNCATED);
}

Test(unwind, no_mapping)
{
	uint64_t ras[3] = { 0x401234, 0x12344, 0x7f0000001110 };
	struct unwind_input in = build_chain(EM_X86_64, ras);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain(chain_pcs, 2, UNWIND_STOP_NO_MAPPING);

	/* A sample pc outside every mapping: nothing to record. */
	in.regs.pc = 0x1000;
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain(NULL, 0, UNWIND_STOP_NO_MAPPING);

	/* Unmapped aarch64 address once its PAC bits are gone. */
	ras[1] = UINT64_C(0x0040000000012344);
	in = build_chain(EM_AARCH64, ras);
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain(chain_pcs, 2, UNWIND_STOP_NO_MAPPING);
}

Test(unwind, depth)
{
	struct unwind_input in = build_chain(EM_X86_64, plain_ras);

	cr_assert_eq(run(&in, 2), 0);
	assert_chain(chain_pcs, 2, UNWIND_STOP_DEPTH);
	cr_assert_eq(run(&in, 1), 0);
	assert_chain(chain_pcs, 1, UNWIND_STOP_DEPTH);
	cr_assert_eq(run(&in, 3), 0);
	assert_chain(chain_pcs, 3, UNWIND_STOP_DEPTH);
}

Test(unwind, depth_capped_at_limit)
{
	static uint8_t big[96 * 1024];
	static struct unwind_frame many[UNWIND_MAX_DEPTH_LIMIT + 1000];
	const size_t n_records = sizeof(big) / 16 - 1;
	struct unwind_input in = {
		.e_machine = EM_AARCH64,
		.regs = { .pc = 0x401000, .sp = BASE, .fp = BASE },
		.stack = big,
		.stack_start = BASE,
		.stack_len = sizeof(big),
		.find_module = fake_find_module,
	};
	struct unwind_result r = { .frames = many, .max_frames = ARRAY_SIZE(many) };

	cr_assert_gt(n_records, ARRAY_SIZE(many));
	for (size_t i = 0; i < n_records; i++) {
		uint64_t fp = BASE + 16 * i;

		put64_in(big, sizeof(big), fp, fp + 16);
		put64_in(big, sizeof(big), fp + 8, 0x401000 + 4 * i);
	}
	cr_assert_eq(unwind_stack(&in, &r), 0);
	cr_assert_eq(r.n_frames, UNWIND_MAX_DEPTH_LIMIT);
	cr_assert_eq(r.stop, UNWIND_STOP_DEPTH);
	cr_assert_not(r.complete);
	cr_assert_eq(many[UNWIND_MAX_DEPTH_LIMIT - 1].pc, 0x401000 + 4 * (UNWIND_MAX_DEPTH_LIMIT - 2));
}

Test(unwind, no_progress_cycle)
{
	for (int a = 0; a < 2; a++) {
		uint16_t em = a ? EM_AARCH64 : EM_X86_64;
		struct unwind_input in;

		/* A record pointing at itself: its return address is kept, then the walk stops. */
		put_record(BASE + 0x40, BASE + 0x40, 0x401234);
		in = make_input(em, 0x401000, BASE, BASE + 0x40);
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_NO_PROGRESS);

		/* A two-record loop. */
		put_record(BASE + 0x40, BASE + 0x100, 0x401234);
		put_record(BASE + 0x100, BASE + 0x40, 0x402344);
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000, 0x401234, 0x402344 }, 3,
			     UNWIND_STOP_NO_PROGRESS);
	}
}

Test(unwind, no_progress_decreasing_fp)
{
	struct unwind_input in;

	put_record(BASE + 0x100, BASE + 0x200, 0x401234);
	put_record(BASE + 0x200, BASE + 0x180, 0x402344);
	put_record(BASE + 0x180, 0, 0x7f0000001110);
	in = make_input(EM_X86_64, 0x401000, BASE, BASE + 0x100);
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234, 0x402344 }, 3, UNWIND_STOP_NO_PROGRESS);

	/* A caller record overlapping its callee's (fp + 8) is no progress either. */
	put_record(BASE + 0x200, BASE + 0x208, 0x402344);
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234, 0x402344 }, 3, UNWIND_STOP_NO_PROGRESS);

	/* The sample's own fp below its sp is not a frame pointer. */
	in = make_input(EM_AARCH64, 0x401000, BASE + 0x200, BASE + 0x100);
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000 }, 1, UNWIND_STOP_NO_PROGRESS);
}

Test(unwind, caller_fp_equal_to_caller_sp_is_fine)
{
	/* A caller with no locals calls right after its prologue: its fp == its sp. */
	put_record(BASE + 0x40, BASE + 0x50, 0x401234);
	put_record(BASE + 0x50, 0, 0x402344);
	struct unwind_input in = make_input(EM_X86_64, 0x401000, BASE + 0x40, BASE + 0x40);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234, 0x402344 }, 3, UNWIND_STOP_END);
}

Test(unwind, unaligned_fp)
{
	for (int a = 0; a < 2; a++) {
		uint16_t em = a ? EM_AARCH64 : EM_X86_64;
		struct unwind_input in = make_input(em, 0x401000, BASE, BASE + 0x44);

		put_record(BASE + 0x44, 0, 0x401234);
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000 }, 1, UNWIND_STOP_NO_PROGRESS);

		/* A misaligned saved fp further up. */
		put_record(BASE + 0x40, BASE + 0x101, 0x401234);
		in.regs.fp = BASE + 0x40;
		cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
		assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_NO_PROGRESS);
	}
}

Test(unwind, aarch64_misaligned_return_address)
{
	put_record(BASE + 0x40, BASE + 0x100, 0x401234);
	put_record(BASE + 0x100, 0, 0x402346);
	struct unwind_input in = make_input(EM_AARCH64, 0x401000, BASE, BASE + 0x40);

	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234 }, 2, UNWIND_STOP_BAD_RA);

	/* x86_64 return addresses can be any byte. */
	in.e_machine = EM_X86_64;
	cr_assert_eq(run(&in, ARRAY_SIZE(frames)), 0);
	assert_chain((const uint64_t[]){ 0x401000, 0x401234, 0x402346 }, 3, UNWIND_STOP_END);
}

/* ---- misuse ------------------------------------------------------------------------------ */

Test(unwind, errors)
{
	struct unwind_input in = build_chain(EM_X86_64, plain_ras);
	struct unwind_result r = { .frames = frames, .max_frames = 8, .n_frames = 77 };

	cr_assert_eq(unwind_stack(NULL, &r), -EINVAL);
	cr_assert_eq(unwind_stack(&in, NULL), -EINVAL);
	r.frames = NULL;
	cr_assert_eq(unwind_stack(&in, &r), -EINVAL);
	r.frames = frames;
	r.max_frames = 0;
	cr_assert_eq(unwind_stack(&in, &r), -EINVAL);
	r.max_frames = 8;

	in.stack = NULL;
	cr_assert_eq(unwind_stack(&in, &r), -EINVAL);
	in.stack = stack_mem;
	in.stack_start = UINT64_MAX - 15; /* start + len wraps */
	cr_assert_eq(unwind_stack(&in, &r), -EINVAL);
	in.stack_start = BASE;

	for (uint16_t em = 0; em < 256; em++) {
		if (em == EM_X86_64 || em == EM_AARCH64)
			continue;
		in.e_machine = em;
		cr_assert_eq(unwind_stack(&in, &r), -EOPNOTSUPP, "e_machine %u", em);
	}
	cr_assert_eq(r.n_frames, 77, "result touched on error");
}

/* ---- the live stack of this process -------------------------------------------------- */

#if defined(__x86_64__)

/* Keep the chain exactly as written: no inlining, cloning, merging or tail calls. */
#ifdef __clang__
#define NOIPA __attribute__((noinline))
#else
#define NOIPA __attribute__((noipa))
#endif

#define SELF_STACK_MAX (64 * 1024)

static uint8_t self_stack[SELF_STACK_MAX];
static uint64_t self_stack_end;
static struct unwind_input self_in;
/* The return address each function of the chain sees, from the compiler, not the stack. */
static uint64_t self_ra[5];

extern const char __executable_start[], etext[];

/* Only this executable's code counts as mapped, so the walk stops where libcriterion starts. */
static int exe_find_module(void *userdata, uint64_t pc, struct unwind_module *ret)
{
	if (pc < (uintptr_t)__executable_start || pc >= (uintptr_t)etext)
		return -ENOENT;
	*ret = (struct unwind_module){ .start = (uintptr_t)__executable_start, .end = (uintptr_t)etext };
	return 0;
}

/*
 * Our callers' frames hold ASan redzones, which memcpy would report: copy byte by byte,
 * uninstrumented, as the BPF program copies a target's stack.
 */
__attribute__((no_sanitize_address)) static void copy_live_stack(uint8_t *dst, uint64_t src,
								 size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = ((const volatile uint8_t *)(uintptr_t)src)[i];
}

static NOIPA void capture_self(void)
{
	uint64_t rip, rsp, rbp;
	size_t len;

	__asm__ volatile("leaq 0(%%rip), %0\n\t"
			 "movq %%rsp, %1\n\t"
			 "movq %%rbp, %2"
			 : "=r"(rip), "=r"(rsp), "=r"(rbp));
	self_ra[0] = (uintptr_t)__builtin_return_address(0);

	/* Everything from here on only writes below rsp, outside the copied range. */
	len = MIN((uint64_t)SELF_STACK_MAX, self_stack_end - rsp);
	copy_live_stack(self_stack, rsp, len);
	self_in = (struct unwind_input){
		.e_machine = EM_X86_64,
		.regs = { .pc = rip, .sp = rsp, .fp = rbp },
		.stack = self_stack,
		.stack_start = rsp,
		.stack_len = len,
		.find_module = exe_find_module,
	};
}

static NOIPA int level3(int x)
{
	self_ra[1] = (uintptr_t)__builtin_return_address(0);
	capture_self();
	return x + 3;
}

static NOIPA int level2(int x)
{
	self_ra[2] = (uintptr_t)__builtin_return_address(0);
	return level3(x * 2) + 1;
}

static NOIPA int level1(int x)
{
	self_ra[3] = (uintptr_t)__builtin_return_address(0);
	return level2(x + 5) * 3;
}

static NOIPA int self_unwind_entry(int x)
{
	self_ra[4] = (uintptr_t)__builtin_return_address(0);
	return level1(x) - 7;
}

static const struct {
	const char *name;
	uintptr_t addr;
} chain_funcs[] = {
	{ "capture_self", (uintptr_t)capture_self },
	{ "level3", (uintptr_t)level3 },
	{ "level2", (uintptr_t)level2 },
	{ "level1", (uintptr_t)level1 },
	{ "self_unwind_entry", (uintptr_t)self_unwind_entry },
};

/*
 * The chain function whose entry is the closest below pc. Exact for pcs inside one of them,
 * since a function's body holds no other function's entry; that the pc is inside at all is
 * asserted separately against __builtin_return_address().
 */
static const char *chain_func_of(uint64_t pc)
{
	const char *best = "?";
	uintptr_t best_addr = 0;

	for (size_t i = 0; i < ARRAY_SIZE(chain_funcs); i++)
		if (chain_funcs[i].addr <= pc && chain_funcs[i].addr >= best_addr) {
			best = chain_funcs[i].name;
			best_addr = chain_funcs[i].addr;
		}
	return best;
}

static uint64_t thread_stack_end(void)
{
	pthread_attr_t attr;
	void *addr;
	size_t size;

	cr_assert_eq(pthread_getattr_np(pthread_self(), &attr), 0);
	cr_assert_eq(pthread_attr_getstack(&attr, &addr, &size), 0);
	pthread_attr_destroy(&attr);
	return (uintptr_t)addr + size;
}

static void assert_self_chain(void)
{
	static const char *const want[] = { "capture_self", "level3", "level2", "level1",
					    "self_unwind_entry" };

	cr_assert_geq(res.n_frames, ARRAY_SIZE(want) + 1, "only %zu frames (stop %s)",
		      res.n_frames, unwind_stop_name(res.stop));
	cr_assert_eq(frames[0].pc, self_in.regs.pc);
	cr_assert_not(frames[0].is_return);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		uint64_t pc = frames[i].pc;
		const char *got = chain_func_of(i == 0 ? pc : pc - 1);

		cr_assert_str_eq(got, want[i], "frame %zu: pc %#" PRIx64 " in %s, expected %s", i,
				 pc, got, want[i]);
		/* Frame i + 1 is the return address the compiler gave frame i's function. */
		cr_assert_eq(frames[i + 1].pc, self_ra[i], "frame %zu: %#" PRIx64 " != %#" PRIx64,
			     i + 1, frames[i + 1].pc, self_ra[i]);
		cr_assert(frames[i + 1].is_return);
	}
}

Test(unwind, self_unwind_x86_64)
{
	self_stack_end = thread_stack_end();
	cr_assert_eq(self_unwind_entry(1), ((1 + 5) * 2 + 3 + 1) * 3 - 7);
	cr_assert_gt(self_in.stack_len, 0);

	cr_assert_eq(run(&self_in, ARRAY_SIZE(frames)), 0);
	assert_self_chain();
	/* Our test body's caller is in libcriterion, outside this executable. */
	cr_assert_eq(res.stop, UNWIND_STOP_NO_MAPPING, "stop %s", unwind_stop_name(res.stop));
	cr_assert_not(res.complete);

	/*
	 * With every address counted as mapped the walk goes on into libcriterion and glibc,
	 * built without frame pointers: whatever it finds there, it ends without failing.
	 */
	self_in.find_module = NULL;
	cr_assert_eq(run(&self_in, ARRAY_SIZE(frames)), 0);
	assert_self_chain();
}

#else

Test(unwind, self_unwind_x86_64)
{
	cr_skip_test("the self-unwind test captures x86_64 registers");
}

#endif

/* ---- signal frames: the interrupted context is read from the kernel's signal frame ---- */

static void sig_put(uint8_t *buf, size_t off, uint64_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

Test(unwind, signal_frame_x86_64)
{
	static uint8_t stack[512];
	const uint64_t base = 0x7ffd0000;
	struct unwind_input in = { .e_machine = EM_X86_64, .stack = stack, .stack_start = base,
				   .stack_len = sizeof(stack) };
	struct unwind_regs r = { .pc = 0x401000, .sp = base };

	/* struct ucontext at sp: uc_mcontext at 40; rbp, rsp, rip are sigcontext slots 10, 15, 16. */
	sig_put(stack, 40 + 10 * 8, 0x7ffd0400);
	sig_put(stack, 40 + 15 * 8, 0x7ffd0300);
	sig_put(stack, 40 + 16 * 8, 0x402345);
	cr_assert_not_null(unwind_arch_x86_64.step_signal);
	cr_assert_eq(unwind_arch_x86_64.step_signal(&in, &r), 0);
	cr_assert_eq(r.pc, 0x402345);
	cr_assert_eq(r.sp, 0x7ffd0300);
	cr_assert_eq(r.fp, 0x7ffd0400);

	/* A signal frame cut off by the end of the copy is a truncated stack. */
	in.stack_len = 40 + 16 * 8;
	r = (struct unwind_regs){ .pc = 0x401000, .sp = base };
	cr_assert_eq(unwind_arch_x86_64.step_signal(&in, &r), UNWIND_STOP_TRUNCATED);
}

Test(unwind, signal_frame_aarch64)
{
	static uint8_t stack[1024];
	const uint64_t base = 0x7ffd0000, sc = 128 + 176;
	struct unwind_input in = { .e_machine = EM_AARCH64, .stack = stack, .stack_start = base,
				   .stack_len = sizeof(stack) };
	struct unwind_regs r = { .pc = 0x401000, .sp = base };

	/* rt_sigframe: siginfo (128), ucontext with uc_mcontext at 176: fault_address, x0..x30, sp, pc. */
	sig_put(stack, sc + 8 + 29 * 8, 0x7ffd0800);
	sig_put(stack, sc + 8 + 30 * 8, 0x400abc);
	sig_put(stack, sc + 8 + 31 * 8, 0x7ffd0700);
	sig_put(stack, sc + 8 + 32 * 8, 0x400ff0);
	cr_assert_not_null(unwind_arch_aarch64.step_signal);
	cr_assert_eq(unwind_arch_aarch64.step_signal(&in, &r), 0);
	cr_assert_eq(r.pc, 0x400ff0);
	cr_assert_eq(r.sp, 0x7ffd0700);
	cr_assert_eq(r.fp, 0x7ffd0800);
	cr_assert_eq(r.lr, 0x400abc);
}

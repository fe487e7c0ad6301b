// SPDX-License-Identifier: MIT
/*
 * The unwinding loop. Everything that chooses *how* to get from one frame to its caller lives
 * in step(), so the CFI unwinder plugs in there without touching the loop or its stop rules.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "pipeline/unwind/cfi.h"
#include "pipeline/unwind/unwind.h"

static const char *const stop_names[_UNWIND_STOP_MAX] = {
	[UNWIND_STOP_END] = "end",
	[UNWIND_STOP_TRUNCATED] = "truncated",
	[UNWIND_STOP_NO_MAPPING] = "no_mapping",
	[UNWIND_STOP_NO_CFI] = "no_cfi",
	[UNWIND_STOP_DEPTH] = "depth",
	[UNWIND_STOP_NO_PROGRESS] = "no_progress",
	[UNWIND_STOP_BAD_RA] = "bad_ra",
	[UNWIND_STOP_KERNEL_THREAD] = "kernel_thread",
};

const char *unwind_stop_name(enum unwind_stop stop)
{
	/* The value may come from a record or a cast int, so check it rather than trust it. */
	if ((unsigned)stop >= ARRAY_SIZE(stop_names) || !stop_names[stop])
		return "unknown";
	return stop_names[stop];
}

static const struct unwind_arch *const arches[] = {
	&unwind_arch_x86_64,
	&unwind_arch_aarch64,
};

const struct unwind_arch *unwind_arch_find(uint16_t e_machine)
{
	for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
		if (arches[i]->e_machine == e_machine)
			return arches[i];
	return NULL;
}

static int find_module(const struct unwind_input *in, uint64_t pc, bool is_return,
		       struct unwind_module *ret)
{
	*ret = (struct unwind_module){};
	if (!in->find_module)
		return 0;
	/*
	 * A return address points after the call, which may be the last instruction of a
	 * mapping (a call to a noreturn function): the caller is at pc - 1.
	 */
	return in->find_module(in->userdata, is_return ? pc - 1 : pc, ret);
}

/*
 * From the frame in *regs to its caller: returns 0 with *regs = the caller, or a stop reason.
 * Methods in the order elfutils uses: the module's CFI, then the frame pointer. The first
 * method that knows the frame decides, including deciding that the stack ends there (then
 * the caller's pc is 0). `exact` says regs->pc is not a return address (the sampled frame,
 * or the frame a signal interrupted), so it is looked up as is rather than at pc - 1.
 * *ret_signal tells whether this frame was a signal trampoline.
 */
static int step(const struct unwind_arch *arch, const struct unwind_input *in,
		const struct unwind_module *mod, struct unwind_regs *regs, bool first, bool exact,
		bool *ret_signal)
{
	*ret_signal = false;
	if (mod->table) {
		uint64_t pc = (exact ? regs->pc : regs->pc - 1) - (uint64_t)mod->bias;
		struct cfi_rule rule;
		bool end = false;
		int r;

		if (cfi_table_lookup(mod->table, pc, &rule) < 0)
			goto fp;
		if ((rule.flags & CFI_RULE_SIGNAL_FRAME) && arch->step_signal) {
			/* Its CFI is an expression over the saved context; the arch knows the layout. */
			*ret_signal = true;
			return arch->step_signal(in, regs);
		}
		if (rule.cfa_kind != CFI_CFA_UNSUPPORTED) {
			r = cfi_step(&rule, in, regs, first, &end);
			if (r == 0) {
				if (end)
					*regs = (struct unwind_regs){};
				return 0;
			}
			if (r != UNWIND_STOP_NO_CFI)
				return r;
			/* The rule cannot be applied here: the frame pointer may still know. */
		}
	}
fp:
	return arch->step_fp(in, regs, first);
}

int unwind_stack(const struct unwind_input *in, struct unwind_result *res)
{
	const struct unwind_arch *arch;
	struct unwind_regs regs;
	bool after_signal = false, have_mod = false;
	struct unwind_module mod = {};
	uint64_t prev_sp, lookup;
	size_t max;
	int stop;

	if (!in || !res || !res->frames || res->max_frames == 0)
		return -EINVAL;
	if (!in->stack && in->stack_len > 0)
		return -EINVAL;
	/* Every bounds check below relies on the copy's end being representable. */
	if (in->stack_len > UINT64_MAX - in->stack_start)
		return -EINVAL;

	arch = unwind_arch_find(in->e_machine);
	if (!arch)
		return -EOPNOTSUPP;

	max = MIN(res->max_frames, (size_t)UNWIND_MAX_DEPTH_LIMIT);
	res->n_frames = 0;
	res->stack_used = 0;
	regs = in->regs;

	/* Bounded: every iteration either records a frame (at most max) or stops. */
	for (;;) {
		bool first = res->n_frames == 0, exact = first || after_signal;
		int r;

		if (res->n_frames >= max) {
			stop = UNWIND_STOP_DEPTH;
			break;
		}
		/*
		 * Consecutive frames are mostly in one mapping: reuse its module then. Safe with the
		 * unwind cache's lifetime rule, as nothing calls into the cache in between.
		 */
		lookup = exact ? regs.pc : regs.pc - 1;
		if (!have_mod || lookup < mod.start || lookup >= mod.end) {
			if (find_module(in, regs.pc, !exact, &mod) < 0) {
				stop = UNWIND_STOP_NO_MAPPING;
				break;
			}
			/* Without a callback every pc is "mapped" and there is no range to reuse. */
			have_mod = in->find_module && mod.end > mod.start;
		}
		res->frames[res->n_frames++] = (struct unwind_frame){
			.pc = regs.pc,
			.is_return = !exact,
		};

		prev_sp = regs.sp;
		r = step(arch, in, &mod, &regs, first, exact, &after_signal);
		if (r != 0) {
			stop = r;
			break;
		}
		/*
		 * Stacks grow down, so callers live higher. Only the sampled frame may leave sp where
		 * it is (an aarch64 leaf whose return address is still in lr).
		 */
		if (regs.pc != 0 && (regs.sp < prev_sp || (regs.sp == prev_sp && !first))) {
			stop = UNWIND_STOP_NO_PROGRESS;
			break;
		}
		/* A caller's sp, even the outermost one's (pc 0), bounds what this step read. */
		if (regs.sp > in->stack_start &&
		    regs.sp - in->stack_start > res->stack_used)
			res->stack_used = MIN(regs.sp - in->stack_start, (uint64_t)in->stack_len);
		regs.pc = arch->strip_ra(regs.pc);
		if (regs.pc == 0) {
			stop = UNWIND_STOP_END;
			break;
		}
		if (regs.pc % arch->code_align != 0) {
			stop = UNWIND_STOP_BAD_RA;
			break;
		}
	}

	res->stop = stop;
	res->complete = stop == UNWIND_STOP_END;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Adaptive stack copy: how much of a thread's stack a sample must copy, learnt from unwinding
 * the process's samples. A walk that reaches the root reads from sp up to the outermost frame;
 * what lies above that, up to the end of the stack's VMA, is never read: the environment and
 * auxiliary vector on a main thread, the thread descriptor and static TLS on others. That gap
 * is fixed per thread whatever the depth, so the BPF program, which knows the VMA's end, copies
 * from sp to (end - gap): a few hundred bytes where the VMA would allow kilobytes, and a stack
 * that suddenly runs deeper is still copied whole.
 *
 * Per process (the key the BPF side has at hand; a process's threads share their layout): the
 * smallest gap its recent samples showed, less a margin. It is lowered at once (the copy grows)
 * and raised halfway per window (the copy shrinks slowly). A walk that ran out of a copy cut at
 * the gap drops the gap to 0 (copy to the VMA's end, as without adaptation) and learning starts
 * again. Samples whose stack VMA was not known copy the cap (--stack-bytes), as do processes
 * beyond STACK_SIZER_MAX_PROCS.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define STACK_SIZER_MAX_PROCS 16384
#define STACK_SIZER_FIRST 8     /* samples before the first gap is published */
#define STACK_SIZER_WINDOW 256  /* samples per window */
#define STACK_SIZER_HISTORY 4   /* windows whose smallest gap counts */
#define STACK_SIZER_MARGIN 64u  /* bytes under the smallest gap seen */

/* Called when a process's gap changes (what map stack_gaps holds); gap 0: copy to the end. */
typedef void (*stack_sizer_set_t)(void *userdata, uint32_t pid, uint32_t gap);

struct stack_sizer;

int stack_sizer_new(stack_sizer_set_t set, void *userdata, struct stack_sizer **ret);
void stack_sizer_free(struct stack_sizer *z);

/*
 * One unwound sample of process `pid` whose stack VMA was known: `gap` bytes of it lay above
 * the outermost frame the walk recovered. `truncated`: the walk ran out of copied bytes (its
 * gap says nothing). `cut`: it did so where the copy stopped at the learnt gap.
 */
void stack_sizer_observe(struct stack_sizer *z, uint32_t pid, uint64_t gap, bool truncated,
			 bool cut);

/* The process exec'd or exited: what was learnt does not apply to what comes next. */
void stack_sizer_forget(struct stack_sizer *z, uint32_t pid);

/*
 * `pid` was forked from `ppid` (same image, same stack layout): it starts with the parent's
 * published gap and what was learnt towards it, as the BPF program's stack_gaps did at fork.
 * Nothing when the parent has none.
 */
void stack_sizer_fork(struct stack_sizer *z, uint32_t ppid, uint32_t pid);

/* The gap published for `pid`, or -1 when none is (copies go to the VMA's end). */
int64_t stack_sizer_get(const struct stack_sizer *z, uint32_t pid);

/*
 * The pure rule, for tests: the gap to publish when the recent windows' smallest gap is
 * `seen` and `cur` is published now (-1: none yet).
 */
uint32_t stack_sizer_next(int64_t cur, uint64_t seen);

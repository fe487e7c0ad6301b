/* SPDX-License-Identifier: MIT */
/*
 * Adaptive stack copy: how many bytes above sp a process's samples must copy, learnt from
 * unwinding them. Every sample says how far up its walk read (unwind_result.stack_used); a
 * process's size is the most its recent walks needed plus a margin, so the BPF program copies
 * a few KiB where the stack's VMA would allow tens. Sizes grow at once (a walk that ran out of
 * bytes, or one that came close) and shrink slowly (halfway to the target per window), and
 * never exceed the cap (--stack-bytes).
 *
 * Per process, not per thread: the threads of one program run the same code to similar depths,
 * a new thread starts with what its process learnt, and the BPF side looks the size up by the
 * key it has at hand (tgid). Bounded: at most STACK_SIZER_MAX_PROCS processes are tracked;
 * others copy the cap.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define STACK_SIZER_MAX_PROCS 16384
#define STACK_SIZER_WINDOW 128  /* samples per window */
#define STACK_SIZER_HISTORY 4   /* windows whose largest need the size covers */
#define STACK_SIZER_MIN 512u    /* never copy less than this */
#define STACK_SIZER_ALIGN 128u

/* Called when a process's size changes: bytes 0 means "back to the cap". */
typedef void (*stack_sizer_set_t)(void *userdata, uint32_t pid, uint32_t bytes);

struct stack_sizer;

int stack_sizer_new(uint32_t cap, stack_sizer_set_t set, void *userdata, struct stack_sizer **ret);
void stack_sizer_free(struct stack_sizer *z);

/*
 * One unwound sample of process `pid`: its walk read `need` bytes above sp. `cut`: the walk ran
 * out of bytes where the copy stopped at this process's size (PROFD_SAMPLE_STACK_SIZED and
 * UNWIND_STOP_TRUNCATED): the size goes to the cap at once.
 */
void stack_sizer_observe(struct stack_sizer *z, uint32_t pid, uint64_t need, bool cut);

/* The process exec'd or exited: what was learnt does not apply to what comes next. */
void stack_sizer_forget(struct stack_sizer *z, uint32_t pid);

/* The size samples of `pid` copy now (the cap when nothing is learnt yet). */
uint32_t stack_sizer_get(const struct stack_sizer *z, uint32_t pid);

/*
 * The pure rule, for tests: the size for a process whose recent windows needed at most
 * `need` bytes, when its size is `cur` (0: nothing learnt yet, i.e. the cap).
 */
uint32_t stack_sizer_next(uint32_t cap, uint32_t cur, uint64_t need);

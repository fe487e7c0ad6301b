/* SPDX-License-Identifier: MIT */
/*
 * Aggregation: identical (labels, stack) samples are counted once. Only addresses are kept
 * (symbolization happens once per unique address when the profile is written), so the stack
 * bytes of a sample can be dropped as soon as it is unwound.
 *
 * Mappings are interned: a frame names its mapping by id, and the interned mapping holds a
 * reference on the binary, so a profile can still be symbolized after its process exited.
 *
 * Container ids (from /proc/PID/cgroup) are interned the same way: a stack names its container
 * by a small index (0: none), so the label costs no room in the stack.
 *
 * JIT perf maps (pipeline/jitmap.h) are kept the same way: copies read while their process
 * lived, one per pid, referenced by the aggregate whose samples they name.
 *
 * Limits: AGG_MAX_STACKS unique stacks, AGG_MAX_MAPPINGS mappings and AGG_MAX_CONTAINERS
 * container ids per aggregate; past them samples are counted in `dropped` (stacks, mappings) or
 * lose their container label (never silently lost). At most AGG_MAX_JITMAPS perf maps holding
 * AGG_MAX_JITMAP_BYTES of map text in all (PROFILE_MAX_PERFMAPS, PROFILE_MAX_PERFMAP_BYTES);
 * frames of further processes keep unnamed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/jitmap.h"
#include "pipeline/proc.h"

#define AGG_MAX_STACKS (1u << 20)
#define AGG_MAX_MAPPINGS (1u << 16)
/*
 * Room for every frame a sample can have: 64 kernel + UNWIND_MAX_DEPTH_LIMIT (4096) user, plus
 * the PROFD_PY_MAX_FRAMES (256) Python frames that replace interpreter frames, markers for
 * the Python frames not kept, and one frame for a sample without a process.
 */
#define AGG_MAX_FRAMES (64 + 4096 + 256 + 4)
#define AGG_MAX_CONTAINERS 4096
#define AGG_CONTAINER_ID_MAX 64 /* characters of a container id (64 hex for docker/containerd) */
#define AGG_MAX_JITMAPS 64			/* = PROFILE_MAX_PERFMAPS */
#define AGG_MAX_JITMAP_BYTES (256ull << 20) /* = PROFILE_MAX_PERFMAP_BYTES */

enum {
	AGG_MAP_NONE = 0,   /* address outside every known mapping */
	AGG_MAP_KERNEL = 1, /* kernel text */
	AGG_MAP_FIRST = 2,
};

/* What a frame's address is. */
enum agg_frame_kind {
	/* user code: addr is a pc in mapping map_id (AGG_MAP_NONE: in no known mapping) */
	AGG_FRAME_NATIVE = 0,
	/* kernel text: addr is a kernel pc, map_id AGG_MAP_KERNEL */
	AGG_FRAME_KERNEL = 1,
	/*
	 * A Python frame: `code` is a struct py_code * (pipeline/python/python.h) that the
	 * aggregate holds a reference on, map_id the interpreter's mapping, `line` its line (0:
	 * unknown). Markers for frames not read are Python frames too, of synthetic code objects
	 * ("[python: N frames not read]").
	 */
	AGG_FRAME_PYTHON = 2,
};
#define AGG_FRAME_LINE_BITS 24
#define AGG_FRAME_LINE_MAX ((1u << AGG_FRAME_LINE_BITS) - 1)

struct py_code;
struct agg_frame {
	union {
		uint64_t addr;         /* NATIVE, KERNEL */
		struct py_code *code;  /* PYTHON */
	};
	uint32_t map_id;
	uint32_t kind : 2;         /* enum agg_frame_kind */
	uint32_t is_return : 1;    /* NATIVE, KERNEL: a return address, symbolize at addr - 1 */
	uint32_t line : AGG_FRAME_LINE_BITS; /* PYTHON */
};
_Static_assert(sizeof(struct agg_frame) == 16, "a frame stays 16 bytes");

/* The address to symbolize a native or kernel frame at (inside the call of a return address). */
static inline uint64_t agg_frame_lookup_addr(const struct agg_frame *f)
{
	return f->addr - (f->is_return ? 1 : 0);
}

struct agg_mapping {
	uint64_t start, end, pgoff;
	enum mapping_kind kind;
	bool is_exe;
	struct dso *dso; /* reference; NULL for anonymous */
	char *name;
};

struct agg_stack {
	struct agg_stack *next;
	uint64_t hash;
	uint64_t count;      /* CPU samples */
	uint64_t off_cpu_ns; /* time off the CPU (off-CPU waits) */
	uint32_t pid, tid;
	char comm[16], pcomm[16];
	uint16_t stop; /* enum unwind_stop */
	bool complete;
	uint16_t n_frames;
	uint16_t container; /* aggregate_container() index, 0: none */
	uint8_t state;      /* off-CPU waits: enum profd_offcpu_state; CPU samples: 0 */
	struct agg_frame frames[]; /* leaf first: kernel frames, then user frames */
};

struct aggregate;

int aggregate_new(struct aggregate **ret);
void aggregate_free(struct aggregate *a);

/* Intern a process mapping; *ret_id >= AGG_MAP_FIRST. */
int aggregate_intern_mapping(struct aggregate *a, const struct mapping *m, uint32_t *ret_id);
const struct agg_mapping *aggregate_mapping(const struct aggregate *a, uint32_t id);
size_t aggregate_n_mappings(const struct aggregate *a);

/*
 * Intern a container id (1..AGG_CONTAINER_ID_MAX printable characters); *ret_idx >= 1.
 * -E2BIG past AGG_MAX_CONTAINERS, -EINVAL for an empty or too long id.
 */
int aggregate_intern_container(struct aggregate *a, const char *id, uint16_t *ret_idx);
/* The container id of an index, or NULL for 0 / an unknown index. */
const char *aggregate_container(const struct aggregate *a, uint16_t idx);

/*
 * Count `count` CPU samples and stack->off_cpu_ns of off-CPU time with this stack (the state
 * is part of the stack; stack->count, hash and next are ignored). A stack seen for the first
 * time takes a reference on the code objects of its Python frames.
 */
int aggregate_add(struct aggregate *a, const struct agg_stack *stack, uint64_t count);

/* The i-th unique stack in first-seen order (0 <= i < aggregate_n_stacks()), else NULL. */
const struct agg_stack *aggregate_stack(const struct aggregate *a, size_t i);

size_t aggregate_n_stacks(const struct aggregate *a);
uint64_t aggregate_n_samples(const struct aggregate *a);
uint64_t aggregate_off_cpu_ns(const struct aggregate *a); /* total over every stack */
uint64_t aggregate_n_dropped(const struct aggregate *a);

/*
 * Keep the perf map copy `jm` (a reference is taken) for pid's frames, replacing the pid's
 * older copy. replace_only: only when the aggregate holds one already, of the same owner
 * (-ENOENT otherwise). -E2BIG past AGG_MAX_JITMAPS / AGG_MAX_JITMAP_BYTES (the older copy
 * stays), -EINVAL for NULL.
 */
int aggregate_set_jitmap(struct aggregate *a, uint32_t pid, struct jitmap *jm, bool replace_only);
/* The perf map copy kept for pid, or NULL. Valid while the aggregate lives. */
struct jitmap *aggregate_jitmap(const struct aggregate *a, uint32_t pid);

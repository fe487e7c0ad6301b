/* SPDX-License-Identifier: MIT */
/*
 * Capture: the BPF skeleton's lifecycle (open → configure → load → attach), one cpu-clock
 * perf event per online CPU, the target-pid filter, and the ring buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct capture_config {
	bool all;              /* whole host (excluding profd itself) */
	unsigned freq;         /* Hz per CPU */
	unsigned stack_bytes;  /* user stack bytes per sample, <= PROFD_STACK_BYTES_MAX */
	size_t ringbuf_bytes;  /* power of two, >= page size */
	bool follow_forks;     /* children of targets become targets */
};

#define CAPTURE_RINGBUF_DEFAULT (32u << 20)

/* Called for every record; return < 0 to stop consuming. */
typedef int (*capture_handler_t)(void *userdata, const void *data, size_t size);

struct capture;

/*
 * Checks privileges first: returns -EPERM with *ret_missing naming the capability that is
 * missing (e.g. "CAP_BPF") when the process lacks CAP_BPF/CAP_PERFMON (or CAP_SYS_ADMIN).
 */
int capture_check_privileges(const char **ret_missing);

int capture_new(const struct capture_config *cfg, capture_handler_t handler, void *userdata,
		struct capture **ret);
void capture_free(struct capture *c);

/* Add a process to the filter (no-op with cfg.all). -E2BIG when the map is full. */
int capture_add_pid(struct capture *c, pid_t pid);

/* Attach the perf events: sampling starts now. */
int capture_start(struct capture *c);

/* Consume records for up to timeout_ms. Returns records consumed or -errno (-EINTR is 0). */
int capture_poll(struct capture *c, int timeout_ms);

/* Samples and task events the BPF side could not put in the ring buffer, summed over CPUs. */
uint64_t capture_lost(struct capture *c);

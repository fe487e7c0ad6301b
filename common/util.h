/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every module: clocks and directories. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns() and of sample times. */
uint64_t mono_ns(void);

/* mkdir -p: create path and its missing parents with `mode`. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

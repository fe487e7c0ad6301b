/* SPDX-License-Identifier: MIT */
/*
 * Parsing of the small values the command lines take: numbers, durations, seconds. Every
 * function takes a NUL-terminated string as hostile input (no sign tricks, no trailing junk, no
 * overflow), writes its result only on success and returns 0, -EINVAL (not that kind of value)
 * or -ERANGE (the value is outside the bounds asked for). None of them logs: the caller names
 * the option in its message.
 *
 * Callers: commands/ (record's and convert's options, PID lists) and anyone else that reads
 * such a value from a user.
 */
#pragma once

#include <stdint.h>

/* A plain decimal number ("42"; no sign, no spaces, no suffix) within [min, max]. */
int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret);

/*
 * A duration with an optional unit: "250us", "1ms", "1.5ms", "2s", "100ns" or plain nanoseconds
 * ("5000"), in nanoseconds. At most max_ns (-ERANGE beyond); negative values are -EINVAL.
 */
int parse_duration_ns(const char *s, uint64_t max_ns, uint64_t *ret);

/* Seconds as a decimal number ("10", "0.5"), more than 0 and at most max_s. */
int parse_seconds(const char *s, double max_s, double *ret);

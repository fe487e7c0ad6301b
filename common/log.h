/* SPDX-License-Identifier: MIT */
/*
 * Logging for the commands and the service. Library folders (pipeline/unwind, symbolize, output) do not
 * log above debug: they return -errno and let the caller say what went wrong.
 *
 * log_error_errno(r, ...) logs and returns r (negative), so error paths read
 *     return log_error_errno(r, "Failed to open %s: %m", path);
 * where %m prints strerror(-r).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "common/macro.h"

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARNING, LOG_LEVEL_NOTICE, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_max_level(enum log_level level);
enum log_level log_get_max_level(void);

int log_internal(enum log_level level, int error, const char *file, int line, const char *fmt, ...)
	_printf_(5, 6);

#define log_full_errno(level, error, ...)                                                          \
	({                                                                                         \
		int _e = (error);                                                                  \
		(log_get_max_level() >= (level))                                                   \
			? log_internal(level, _e, __FILE__, __LINE__, __VA_ARGS__)                 \
			: -((_e) < 0 ? -(_e) : (_e));                                              \
	})

#define log_debug(...) log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_LEVEL_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_LEVEL_ERROR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_LEVEL_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_LEVEL_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_LEVEL_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_LEVEL_ERROR, e, __VA_ARGS__)

/* Rate limiting for per-sample conditions: at most `burst` messages per `interval_s` seconds. */
struct log_ratelimit {
	unsigned interval_s, burst;
	unsigned long long window_start_ns;
	unsigned count, suppressed;
};
#define LOG_RATELIMIT_INIT(i, b) { .interval_s = (i), .burst = (b) }
bool log_ratelimit_ok(struct log_ratelimit *rl);

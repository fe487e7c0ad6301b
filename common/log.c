// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

static enum log_level max_level = LOG_LEVEL_NOTICE;
static const char *program = "profd";

void log_set_max_level(enum log_level level)
{
	max_level = level;
}

enum log_level log_get_max_level(void)
{
	return max_level;
}

void log_set_program(const char *name)
{
	program = name;
}

static const char *level_names[] = {
	[LOG_LEVEL_ERROR] = "error",   [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = NULL,
	[LOG_LEVEL_INFO] = NULL,       [LOG_LEVEL_DEBUG] = "debug",
};

int log_internal(enum log_level level, int error, const char *file, int line, const char *fmt, ...)
{
	char buf[2048];
	int saved = errno;
	int e = error < 0 ? -error : error;
	va_list ap;

	/* %m means the passed error, not whatever errno happens to be. */
	errno = e;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	if (level < ARRAY_SIZE(level_names) && level_names[level])
		fprintf(stderr, "%s: %s: %s", program, level_names[level], buf);
	else
		fprintf(stderr, "%s: %s", program, buf);
	if (level == LOG_LEVEL_DEBUG)
		fprintf(stderr, " (%s:%d)", file, line);
	fputc('\n', stderr);

	errno = saved;
	return -e;
}

bool log_ratelimit_ok(struct log_ratelimit *rl)
{
	struct timespec ts;
	unsigned long long now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	if (now - rl->window_start_ns >= (unsigned long long)rl->interval_s * 1000000000ull) {
		if (rl->suppressed)
			fprintf(stderr, "%s: (%u similar messages suppressed)\n", program, rl->suppressed);
		rl->window_start_ns = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}

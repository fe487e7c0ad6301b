// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static enum log_level max_level = LOG_LEVEL_NOTICE;
static const char *const program = "profd";

void log_set_max_level(enum log_level level)
{
	max_level = level;
}

enum log_level log_get_max_level(void)
{
	return max_level;
}

static const char *level_names[] = {
	[LOG_LEVEL_ERROR] = "error",   [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = NULL,
	[LOG_LEVEL_INFO] = NULL,       [LOG_LEVEL_DEBUG] = "debug",
};

/* When stderr is connected to journald, a "<N>" prefix gives each line its syslog priority. */
static bool stderr_is_journal(void)
{
	static int cached = -1;
	const char *js;
	struct stat st;
	unsigned long long dev, ino;

	if (cached >= 0)
		return cached;
	js = getenv("JOURNAL_STREAM");
	cached = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
		 st.st_dev == dev && st.st_ino == ino;
	return cached;
}

int log_internal(enum log_level level, int error, const char *file, int line, const char *fmt, ...)
{
	static const int syslog_prio[] = {
		[LOG_LEVEL_ERROR] = 3, [LOG_LEVEL_WARNING] = 4, [LOG_LEVEL_NOTICE] = 5,
		[LOG_LEVEL_INFO] = 6,  [LOG_LEVEL_DEBUG] = 7,
	};
	char msg[2048], out[2400];
	int saved = errno, n = 0;
	int e = error < 0 ? -error : error;
	va_list ap;

	/* %m means the passed error, not whatever errno happens to be. */
	errno = e;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (stderr_is_journal() && level < ARRAY_SIZE(syslog_prio))
		n += snprintf(out + n, sizeof(out) - n, "<%d>", syslog_prio[level]);
	if (level < ARRAY_SIZE(level_names) && level_names[level])
		n += snprintf(out + n, sizeof(out) - n, "%s: %s: %s", program, level_names[level], msg);
	else
		n += snprintf(out + n, sizeof(out) - n, "%s: %s", program, msg);
	if (level == LOG_LEVEL_DEBUG && n < (int)sizeof(out))
		n += snprintf(out + n, sizeof(out) - n, " (%s:%d)", file, line);
	if (n >= (int)sizeof(out) - 1)
		n = sizeof(out) - 2;
	out[n++] = '\n';
	/* One write per line, so lines from the HTTP and push threads never interleave. */
	(void)!write(STDERR_FILENO, out, n);

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

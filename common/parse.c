// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* A decimal floating-point number at the start of s; *end points past it. */
static int parse_double_prefix(const char *s, double *ret, char **end)
{
	if (!s)
		return -EINVAL;
	errno = 0;
	*ret = strtod(s, end);
	if (errno || *end == s)
		return -EINVAL;
	return 0;
}

int parse_duration_ns(const char *s, uint64_t max_ns, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {{"", 1}, {"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
	char *end;
	double v;

	if (parse_double_prefix(s, &v, &end) < 0 || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (v * units[i].mult > (double)max_ns)
			return -ERANGE;
		*ret = (uint64_t)(v * units[i].mult);
		return 0;
	}
	return -EINVAL;
}

int parse_seconds(const char *s, double max_s, double *ret)
{
	char *end;
	double v;

	if (parse_double_prefix(s, &v, &end) < 0 || *end || !(v > 0))
		return -EINVAL;
	if (v > max_s)
		return -ERANGE;
	*ret = v;
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * service/metrics: the /metrics page rendered from a snapshot: each row's value from its field
 * (64-bit, 32-bit and bool fields), the labelled rows, the http_* and push_* rows only when
 * their service is on, and every metric with one HELP and one TYPE line.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/unwind/unwind.h"
#include "service/metrics.h"

static char *render(const struct metrics_snapshot *s)
{
	char *text = NULL;
	size_t len = 0;

	cr_assert_eq(metrics_render(s, &text, &len), 0);
	cr_assert_not_null(text);
	cr_assert_eq(strlen(text), len);
	return text;
}

static void has(const char *text, const char *line)
{
	cr_assert_not_null(strstr(text, line), "no '%s' in:\n%s", line, text);
}

static void lacks(const char *text, const char *what)
{
	cr_assert_null(strstr(text, what), "'%s' should not be in:\n%s", what, text);
}

Test(metrics, values_from_the_snapshot)
{
	struct metrics_snapshot s = {
	    .st = {.samples = 12345, .off_cpu_ns = 1500000000, .execs = 4, .forks = 6},
	    .lost = 7,
	    .procs = 42,
	    .frequency = 99,
	    .push_enabled = true,
	    .push = {.sent = 3, .spool_bytes = 1ull << 40},
	};
	char *text;

	s.st.stops[UNWIND_STOP_KERNEL_THREAD] = 11;
	text = render(&s);
	has(text, "\nprofd_samples_total 12345\n");
	has(text, "# TYPE profd_samples_total counter\n");
	has(text, "\nprofd_lost_samples_total 7\n");
	has(text, "\nprofd_processes 42\n");
	has(text, "# TYPE profd_processes gauge\n");
	has(text, "\nprofd_sampling_frequency_hertz 99\n");
	has(text, "\nprofd_off_cpu_seconds_total 1.5\n");
	has(text, "profd_task_events_total{event=\"exec\"} 4\n");
	has(text, "profd_task_events_total{event=\"fork\"} 6\n");
	{
		char want[128];

		snprintf(want, sizeof(want), "profd_unwind_stops_total{reason=\"%s\"} 11\n",
			 unwind_stop_name(UNWIND_STOP_KERNEL_THREAD));
		has(text, want);
	}
	has(text, "profd_build_info{version=\"");
	has(text, "\nprofd_push_enabled 1\n");
	has(text, "\nprofd_push_sent_total 3\n");
	has(text, "\nprofd_push_spool_bytes 1099511627776\n");
	has(text, "\nprocess_open_fds ");
	lacks(text, "profd_http_");
	free(text);
}

Test(metrics, http_rows_only_with_the_server)
{
	struct metrics_snapshot s = {
	    .http_enabled = true,
	    .http = {.requests = 9, .header_timeouts = 4, .active_profiles = 2},
	};
	char *text = render(&s);

	has(text, "\nprofd_http_requests_total 9\n");
	has(text, "profd_http_refused_total{reason=\"header_timeout\"} 4\n");
	has(text, "\nprofd_http_active_profiles 2\n");
	has(text, "\nprofd_push_enabled 0\n");
	lacks(text, "profd_push_sent_total");
	free(text);
}

Test(metrics, one_help_and_type_per_metric)
{
	struct metrics_snapshot s = {.http_enabled = true, .push_enabled = true};
	char *text = render(&s), *save = NULL;
	char *names[256];
	size_t n = 0;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], type[160];

		if (strncmp(line, "# HELP ", 7))
			continue;
		cr_assert_eq(sscanf(line + 7, "%127s", name), 1);
		for (size_t i = 0; i < n; i++)
			cr_assert_str_neq(names[i], name, "%s twice", name);
		cr_assert_lt(n, 256);
		names[n++] = strdup(name);
		line = strtok_r(NULL, "\n", &save);
		cr_assert_not_null(line, "%s: no TYPE line", name);
		snprintf(type, sizeof(type), "# TYPE %s ", name);
		cr_assert(!strncmp(line, type, strlen(type)), "%s: '%s'", name, line);
	}
	cr_assert_gt(n, 60, "only %zu metrics", n);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(text);
}

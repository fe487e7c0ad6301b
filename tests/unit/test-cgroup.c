// SPDX-License-Identifier: MIT
/* Container ids from /proc/PID/cgroup text (pipeline/cgroup.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/cgroup.h"

#define ID "4c5e0c9d1b0e6f9f2f1d4e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c"
#define ID2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char *parse(const char *text)
{
	static char out[CGROUP_ID_MAX + 1];

	memset(out, 0, sizeof(out));
	if (cgroup_parse_container_id(text, out, sizeof(out)) != 1)
		return NULL;
	return out;
}

Test(cgroup, docker_v1_and_v2)
{
	cr_assert_str_eq(parse("0::/system.slice/docker-" ID ".scope\n"), ID);
	cr_assert_str_eq(parse("12:pids:/docker/" ID "\n11:memory:/docker/" ID "\n"), ID);
}

Test(cgroup, podman_containerd_and_cri)
{
	cr_assert_str_eq(parse("0::/machine.slice/libpod-" ID ".scope/container\n"), ID);
	cr_assert_str_eq(parse("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-"
			       "pod12345678_1234_1234_1234_123456789abc.slice/cri-containerd-" ID
			       ".scope\n"),
			 ID);
	cr_assert_str_eq(parse("0::/kubepods.slice/crio-" ID ".scope\n"), ID);
}

Test(cgroup, innermost_component_and_unified_line_win)
{
	/* Nested: the innermost id names the container the process runs in. */
	cr_assert_str_eq(parse("0::/docker/" ID "/docker/" ID2 "\n"), ID2);
	/* A v1 hierarchy says one thing, the unified line another: the unified line wins. */
	cr_assert_str_eq(parse("4:memory:/docker/" ID2 "\n0::/docker/" ID "\n"), ID);
	cr_assert_str_eq(parse("0::/docker/" ID "\n4:memory:/docker/" ID2 "\n"), ID);
}

Test(cgroup, systemd_scopes_and_hosts_have_none)
{
	cr_assert_null(parse("0::/\n"));
	cr_assert_null(parse("0::/user.slice/user-1000.slice/session-2.scope\n"));
	cr_assert_null(parse("0::/system.slice/systemd-journald.service\n"));
	cr_assert_null(parse("1:name=systemd:/user.slice/user-1000.slice/user@1000.service/"
			     "app.slice/app-gnome-firefox-1234.scope\n"));
	/* 32 hex digits (a v1 hierarchy's own ids) are not a container id. */
	cr_assert_null(parse("4:memory:/process_api/b6efe9ef875287d5201a9ced06fd2407\n"));
}

Test(cgroup, garbage_and_over_long_input)
{
	char *big = malloc(1 << 20);
	char out[CGROUP_ID_MAX + 1];

	cr_assert_null(parse(""));
	cr_assert_null(parse("\n\n\n"));
	cr_assert_null(parse("no colons here " ID));       /* no path: nothing after two ':' */
	cr_assert_null(parse("0::/docker/" ID "0\n"));     /* 65 hex digits */
	cr_assert_null(parse("0::/docker/" ID "\x01\n"));  /* not a whole component */
	cr_assert_null(parse("0::/docker/4C5E0C9D1B0E6F9F2F1D4E8A7B6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C\n"));
	/* An id too big for the caller's buffer is no id. */
	cr_assert_eq(cgroup_parse_container_id("0::/docker/" ID "\n", out, 10), 0);
	/* A megabyte of one line of slashes and dashes, then one of '-' runs: no id, no crash. */
	cr_assert_not_null(big);
	memset(big, '/', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	memcpy(big, "0::", 3);
	cr_assert_null(parse(big));
	memset(big + 3, '-', (1 << 20) - 4);
	cr_assert_null(parse(big));
	/* The same with an id at its very end: found. */
	memcpy(big + (1 << 20) - 1 - 65, "/" ID, 65);
	cr_assert_str_eq(parse(big), ID);
	free(big);
}

static char root[] = "/tmp/profd-test-cgroup-XXXXXX";

static void write_cgroup(unsigned pid, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%u", root, pid);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%u/cgroup", root, pid);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(cgroup, table_reads_once_until_forgotten)
{
	struct cgroup_ids *c;
	struct cgroup_pid *e;
	char cmd[128];

	cr_assert_not_null(mkdtemp(root));
	write_cgroup(7, "0::/docker/" ID "\n");
	cr_assert_eq(cgroup_ids_new(root, &c), 0);
	e = cgroup_ids_get(c, 7);
	cr_assert_not_null(e);
	cr_assert_str_eq(e->id, ID);
	e->user_tag = 42;
	/* Read once: a changed file is not seen until the pid is forgotten (its exec). */
	write_cgroup(7, "0::/docker/" ID2 "\n");
	e = cgroup_ids_get(c, 7);
	cr_assert_str_eq(e->id, ID);
	cr_assert_eq(e->user_tag, 42);
	cgroup_ids_forget(c, 7);
	e = cgroup_ids_get(c, 7);
	cr_assert_str_eq(e->id, ID2);
	cr_assert_eq(e->user_tag, 0);
	/* No such process: an entry without an id. */
	e = cgroup_ids_get(c, 8);
	cr_assert_not_null(e);
	cr_assert_str_eq(e->id, "");
	cgroup_ids_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	cr_assert_eq(system(cmd), 0);
}

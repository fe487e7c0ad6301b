// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "pipeline/cgroup.h"

struct cgroup_ids {
	char *proc_root;
	struct cgroup_pid *buckets[CGROUP_BUCKETS];
	size_t n_pids;
};

static bool is_hex_id(const char *p, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* The id in one path component: "<id>", "<prefix>-<id>" or either with a ".scope"-like suffix. */
static bool component_id(const char *c, size_t n, char *ret, size_t size)
{
	const char *dot = memchr(c, '.', n), *dash;
	size_t end = dot ? (size_t)(dot - c) : n, start = 0;

	for (dash = c; (dash = memchr(dash, '-', end - (dash - c))); dash++)
		start = dash - c + 1;
	if (!is_hex_id(c + start, end - start) || size <= end - start)
		return false;
	memcpy(ret, c + start, end - start);
	ret[end - start] = '\0';
	return true;
}

int cgroup_parse_container_id(const char *text, char *ret, size_t size)
{
	bool found = false;

	for (const char *line = text; line && *line;) {
		const char *eol = strchrnul(line, '\n'), *path = line;
		bool unified = !strncmp(line, "0::", 3), line_found = false;
		char id[CGROUP_ID_MAX + 1];

		/* "hierarchy-id:controllers:path"; the path may itself contain ':'. */
		for (int colons = 0; path < eol && colons < 2; path++)
			if (*path == ':')
				colons++;
		for (const char *c = path; c < eol;) {
			const char *slash = memchr(c, '/', eol - c), *cend = slash ? slash : eol;

			if (cend > c && component_id(c, cend - c, id, sizeof(id)))
				line_found = true; /* keep going: the innermost one wins */
			c = cend + 1;
		}
		if (line_found && (!found || unified)) {
			if (size <= strlen(id))
				return 0;
			strcpy(ret, id);
			found = true;
			if (unified)
				break;
		}
		line = *eol ? eol + 1 : NULL;
	}
	return found ? 1 : 0;
}

int cgroup_ids_new(const char *proc_root, struct cgroup_ids **ret)
{
	struct cgroup_ids *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->proc_root = strdup(proc_root);
	if (!c->proc_root) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

static void cgroup_ids_clear(struct cgroup_ids *c)
{
	for (size_t i = 0; i < CGROUP_BUCKETS; i++)
		while (c->buckets[i]) {
			struct cgroup_pid *e = c->buckets[i];

			c->buckets[i] = e->next;
			free(e);
		}
	c->n_pids = 0;
}

void cgroup_ids_free(struct cgroup_ids *c)
{
	if (!c)
		return;
	cgroup_ids_clear(c);
	free(c->proc_root);
	free(c);
}

struct cgroup_pid *cgroup_ids_get(struct cgroup_ids *c, uint32_t pid)
{
	struct cgroup_pid **head = &c->buckets[pid % CGROUP_BUCKETS], *e;
	char path[PATH_MAX], buf[CGROUP_READ_MAX + 1];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	for (e = *head; e; e = e->next)
		if (e->pid == pid)
			return e;
	/* Exits whose records were lost leave entries behind: start over rather than grow. */
	if (c->n_pids >= CGROUP_MAX_PIDS)
		cgroup_ids_clear(c);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->pid = pid;
	snprintf(path, sizeof(path), "%s/%u/cgroup", c->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		(void)cgroup_parse_container_id(buf, e->id, sizeof(e->id));
	}
	e->next = *head;
	*head = e;
	c->n_pids++;
	return e;
}

void cgroup_ids_forget(struct cgroup_ids *c, uint32_t pid)
{
	struct cgroup_pid **pp;

	if (!c)
		return;
	for (pp = &c->buckets[pid % CGROUP_BUCKETS]; *pp; pp = &(*pp)->next)
		if ((*pp)->pid == pid) {
			struct cgroup_pid *e = *pp;

			*pp = e->next;
			free(e);
			c->n_pids--;
			return;
		}
}

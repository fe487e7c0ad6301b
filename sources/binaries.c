/* SPDX-License-Identifier: MIT */
/* Finding the recorded binaries and checking them: see sources/binaries.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "pipeline/proc.h"
#include "sources/binaries.h"
#include "sources/raw.h"
#include "symbolize/symbolize.h"

static bool path_listed(struct binary_path *l, const char *path)
{
	for (; l; l = l->next)
		if (!strcmp(l->path, path))
			return true;
	return false;
}

/* Remember path in *l (bounded); false when it was there already or the list is full. */
static bool path_remember(struct binary_path **l, size_t *n, const char *path)
{
	struct binary_path *p;

	if (path_listed(*l, path) || *n >= BINARIES_MAX_WARNED)
		return false;
	p = malloc(sizeof(*p) + strlen(path) + 1);
	if (!p)
		return false;
	strcpy(p->path, path);
	p->next = *l;
	*l = p;
	(*n)++;
	return true;
}

static void path_list_free(struct binary_path *l)
{
	while (l) {
		struct binary_path *n = l->next;

		free(l);
		l = n;
	}
}

int binaries_open_verified(const char *candidate, uint16_t e_machine, const uint8_t *bid,
			   size_t bid_len, struct elf_ident *ret, char *ret_hex, size_t hex_size)
{
	struct elf_ident id;
	_cleanup_close_ int fd = elf_open_ident(candidate, e_machine, &id);

	if (fd < 0)
		return fd;
	if (bid_len > 0 &&
	    (id.build_id_len != bid_len || memcmp(id.build_id, bid, bid_len) != 0)) {
		if (ret_hex && id.build_id_len == 0)
			snprintf(ret_hex, hex_size, "none");
		else if (ret_hex)
			build_id_to_hex(id.build_id, id.build_id_len, ret_hex, hex_size);
		return -ESTALE;
	}
	if (ret)
		*ret = id;
	return TAKE_FD(fd);
}

void binaries_sysroot_trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
}

/* proc_open_t: SYSROOT/path, then the build-id directories (perf's cache, debug files). */
int binary_finder_open(void *userdata, const struct proc_static_map *m)
{
	struct binary_finder *f = userdata;
	char want[2 * RAW_MAX_BUILD_ID + 1] = "", got[2 * RAW_MAX_BUILD_ID + 1] = "";
	_cleanup_free_ char *p = NULL;
	int fd;

	if (!m->path || m->path[0] != '/')
		return -ENOENT;
	if (asprintf(&p, "%s%s", f->sysroot, m->path) < 0)
		return -ENOMEM;
	fd = binaries_open_verified(p, m->e_machine, m->build_id, m->build_id_len, NULL, got,
					    sizeof(got));
	if (fd >= 0)
		goto found;
	if (m->build_id_len > 0)
		build_id_to_hex(m->build_id, m->build_id_len, want, sizeof(want));
	if (fd == -ESTALE && path_remember(&f->warned, &f->n_warned, m->path))
		log_warning("%s: build-id %s differs from the recorded %s; looking elsewhere, else "
			    "its frames keep addresses.",
			    p, got, want);
	for (size_t i = 0; want[0] && i < f->n_dirs; i++) {
		static const char *const layouts[] = {"%s/.build-id/%.2s/%s/elf", /* perf cache */
						      "%s/.build-id/%.2s/%s",
						      "%s/.build-id/%.2s/%s.debug"};

		for (size_t k = 0; k < ARRAY_SIZE(layouts); k++) {
			free(p);
			p = NULL;
			if (asprintf(&p, layouts[k], f->dirs[i], want, want + 2) < 0)
				return -ENOMEM;
			fd = binaries_open_verified(p, m->e_machine, m->build_id, m->build_id_len, NULL, got,
					    sizeof(got));
			if (fd >= 0)
				goto found;
		}
	}
	if (path_remember(&f->missing, &f->n_missing, m->path))
		log_debug("No file for %s%s%s; its frames keep addresses.", m->path,
			  want[0] ? " with build-id " : "", want);
	return -ENOENT;
found:
	f->n_found++;
	log_debug("%s: using %s", m->path, p);
	return fd;
}

int binary_finder_init(struct binary_finder *f, const char *sysroot, const char *const *debug_dirs,
		       size_t n_debug_dirs)
{
	const char *home = getenv("HOME");

	*f = (struct binary_finder){.sysroot = sysroot};
	for (size_t i = 0; i < n_debug_dirs && i < BINARIES_MAX_DEBUG_DIRS; i++)
		f->dirs[f->n_dirs++] = strdup(debug_dirs[i]);
	if (asprintf(&f->dirs[f->n_dirs], "%s" SYM_DEFAULT_DEBUG_DIR, sysroot) >= 0)
		f->n_dirs++;
	if (home && home[0] == '/' && asprintf(&f->dirs[f->n_dirs], "%s/.debug", home) >= 0)
		f->n_dirs++;
	for (size_t i = 0; i < f->n_dirs; i++)
		if (!f->dirs[i])
			return -ENOMEM;
	return 0;
}

void binary_finder_done(struct binary_finder *f)
{
	for (size_t i = 0; i < f->n_dirs; i++)
		free(f->dirs[i]);
	path_list_free(f->warned);
	path_list_free(f->missing);
}

// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/util.h"
#include "service/outdir.h"

#define OUTDIR_RETENTION_MAX_FILES 1000000 /* files looked at by one retention pass */

struct profile_file {
	char *name;
	uint64_t size;
	unsigned suffix; /* the N of profile-STAMP-N.pb.gz; 0 without */
};

/* profile-YYYYMMDDTHHMMSSZ.pb.gz or profile-YYYYMMDDTHHMMSSZ-N.pb.gz; *ret_suffix = N. */
static bool parse_profile_name(const char *n, unsigned *ret_suffix)
{
	size_t plen = strlen(OUTDIR_NAME_PREFIX), len = strlen(n);
	const char *p = n + plen + OUTDIR_STAMP_LEN;
	unsigned suffix = 0;

	if (strncmp(n, OUTDIR_NAME_PREFIX, plen) || len < plen + OUTDIR_STAMP_LEN)
		return false;
	for (size_t i = 0; i < OUTDIR_STAMP_LEN; i++) {
		char ch = n[plen + i];

		if (i == 8 ? ch != 'T' : i == 15 ? ch != 'Z' : (ch < '0' || ch > '9'))
			return false;
	}
	if (*p == '-') {
		char *end;

		if (p[1] < '1' || p[1] > '9')
			return false;
		suffix = strtoul(p + 1, &end, 10);
		p = end;
	}
	/* Any format's: files of a format used before a reload still count for retention. */
	if (strcmp(p, output_format_extension(OUTPUT_PPROF)) &&
	    strcmp(p, output_format_extension(OUTPUT_SPEEDSCOPE)) &&
	    strcmp(p, output_format_extension(OUTPUT_FOLDED)))
		return false;
	*ret_suffix = suffix;
	return true;
}

static int cmp_profile_file(const void *x, const void *y)
{
	const struct profile_file *a = x, *b = y;
	int c = strncmp(a->name, b->name, strlen(OUTDIR_NAME_PREFIX) + OUTDIR_STAMP_LEN);

	return c ? c : a->suffix < b->suffix ? -1 : a->suffix > b->suffix;
}

size_t outdir_retention(const char *dir_path, uint64_t max_count, uint64_t max_bytes)
{
	_cleanup_close_ int dfd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct profile_file *files = NULL;
	size_t n = 0, cap = 0, i = 0, removed = 0;
	uint64_t bytes = 0;
	struct dirent *de;
	DIR *dir;
	int fd;

	if (dfd < 0 || (!max_count && !max_bytes))
		return 0;
	fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(dir)) && n < OUTDIR_RETENTION_MAX_FILES) {
		struct stat sb;
		unsigned suffix;

		if (!parse_profile_name(de->d_name, &suffix))
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct profile_file *nf = reallocarray(files, ncap, sizeof(*nf));

			if (!nf)
				break;
			files = nf;
			cap = ncap;
		}
		files[n].name = strdup(de->d_name);
		if (!files[n].name)
			break;
		files[n].size = sb.st_size;
		files[n++].suffix = suffix;
		bytes += sb.st_size;
	}
	closedir(dir);
	if (n)
		qsort(files, n, sizeof(*files), cmp_profile_file);
	while (n - i > 1 &&
	       ((max_count && n - i > max_count) || (max_bytes && bytes > max_bytes))) {
		if (unlinkat(dfd, files[i].name, 0) == 0) {
			log_info("Retention: removed %s/%s.", dir_path, files[i].name);
			removed++;
		} else if (errno != ENOENT) {
			log_warning_errno(-errno, "Retention: cannot remove %s/%s: %m", dir_path,
					  files[i].name);
		}
		bytes -= files[i].size;
		i++;
	}
	for (i = 0; i < n; i++)
		free(files[i].name);
	free(files);
	return removed;
}

int outdir_prepare(const char *key, const char *dir, char *err, size_t err_size)
{
	struct stat st;
	int r;

	if (mkdir(dir, OUTDIR_DIR_MODE) < 0) {
		if (errno == ENOENT) {
			r = mkdir_p(dir, OUTDIR_DIR_MODE);
			if (r < 0)
				goto fail;
		} else if (errno != EEXIST) {
			r = -errno;
			goto fail;
		}
	} else if (chmod(dir, OUTDIR_DIR_MODE) < 0) { /* created now: the umask took bits away */
		r = -errno;
		goto fail;
	}
	if (lstat(dir, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, err_size,
			 "%s %s is a symbolic link: set %s to the directory itself (owned by root, "
			 "not writable by group or others)",
			 key, dir, key);
		return -EPERM;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, err_size,
			 "%s %s is not a directory: remove it or choose another path", key, dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, err_size,
			 "%s %s belongs to uid %u, not to profd's uid %u: another user could read "
			 "or replace what profd writes there; chown %u %s (or choose another path)",
			 key, dir, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(),
			 dir);
		return -EPERM;
	}
	if (st.st_mode & 0022) {
		snprintf(err, err_size,
			 "%s %s has mode %04o: group or others may write it; chmod go-w %s", key,
			 dir, (unsigned)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
fail:
	snprintf(err, err_size, "cannot create %s %s: %s", key, dir, strerror(-r));
	return r;
}

/* name is ".profile-....EXT.XXXXXX" for one of the formats' EXT: a temp file of a write. */
static bool is_temp_file(const char *name)
{
	if (strncmp(name, "." OUTDIR_NAME_PREFIX, strlen(OUTDIR_NAME_PREFIX) + 1))
		return false;
	for (int f = OUTPUT_PPROF; f <= OUTPUT_SPEEDSCOPE; f++) {
		char ext[32];

		snprintf(ext, sizeof(ext), "%s.", output_format_extension(f));
		if (strstr(name, ext))
			return true;
	}
	return false;
}

void outdir_remove_stale_temp_files(const char *dir_path)
{
	DIR *dir = opendir(dir_path);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (is_temp_file(de->d_name))
			unlinkat(dirfd(dir), de->d_name, 0);
	closedir(dir);
}

int outdir_profile_path(const char *dir, time_t start, enum output_format format, char **ret)
{
	char stamp[32];
	struct tm tm;

	gmtime_r(&start, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	/* Two intervals starting in the same second (a short one after a reload): add -N. */
	for (unsigned i = 0; i < 100; i++) {
		char *p;
		const char *ext = output_format_extension(format);
		int r = i ? asprintf(&p, "%s/" OUTDIR_NAME_PREFIX "%s-%u%s", dir, stamp, i, ext)
			  : asprintf(&p, "%s/" OUTDIR_NAME_PREFIX "%s%s", dir, stamp, ext);

		if (r < 0)
			return -ENOMEM;
		if (access(p, F_OK) < 0 && errno == ENOENT) {
			*ret = p;
			return 0;
		}
		free(p);
	}
	return -EEXIST;
}

/* SPDX-License-Identifier: MIT */
/*
 * The daemon's directories on disk: output_dir, where one profile per interval is written as
 * profile-YYYYMMDDTHHMMSSZ[-N].EXT (EXT from output_format_extension()), and spool_dir (push).
 *
 * Who calls it, in order (commands/daemon.c): outdir_prepare() at start and when an interval
 * is written (also for spool_dir), outdir_remove_stale_temp_files() at start,
 * outdir_profile_path() for each interval, then outdir_retention() after each write. Nothing
 * here runs in another thread; nothing here keeps state.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "output/output.h"

#define OUTDIR_NAME_PREFIX "profile-"
#define OUTDIR_STAMP_LEN 16 /* 20261122T024501Z */

/*
 * Interval files hold the functions, commands and container ids of the whole host: readable
 * by the owner and its group only, whatever the umask. A directory the daemon creates gets
 * 0750 (an existing one keeps the mode its owner chose); the service's StateDirectoryMode= and
 * UMask= say the same (packaging/profd.service).
 */
#define OUTDIR_FILE_MODE 0640
#define OUTDIR_DIR_MODE 0750

/*
 * output_dir and spool_dir (key names the configuration key for messages): created 0750 when
 * missing; an existing one must be a directory (not a symbolic link) of profd's own user (root)
 * that no other user may write, else another user could read what profd writes there, swap
 * files under it or point it elsewhere. Refused, with what to do in err (-EPERM, -ENOTDIR),
 * rather than fixed: a wrong owner or mode is the administrator's to look at. Other errors
 * (creating it): -errno, and err says so.
 */
int outdir_prepare(const char *key, const char *dir, char *err, size_t err_size);

/* Remove the temp files of an atomic write a crash left in dir (".profile-....EXT.XXXXXX"). */
void outdir_remove_stale_temp_files(const char *dir);

/*
 * *ret (malloc()ed): dir/profile-STAMP.EXT for an interval that started at `start` (UTC), or
 * dir/profile-STAMP-N.EXT (N 1..99) when that exists (two intervals in one second). 0, -ENOMEM,
 * or -EEXIST when all 100 names are taken.
 */
int outdir_profile_path(const char *dir, time_t start, enum output_format format, char **ret);

/*
 * Remove the oldest interval files of dir (of any format) beyond max_count files or max_bytes
 * in all (0: no such bound), never the newest. Each removal is logged (info). Returns how many
 * were removed.
 */
size_t outdir_retention(const char *dir, uint64_t max_count, uint64_t max_bytes);

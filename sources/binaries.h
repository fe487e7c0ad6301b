/* SPDX-License-Identifier: MIT */
/*
 * Finding the binaries a recording or a core file names, and checking them: the files
 * `profd convert` and `profd stack` open in place of the paths the target saw.
 *
 * A candidate is used only when it is a regular ELF file of the recorded architecture and, when
 * a build-id was recorded, has that build-id (binaries_open_verified(), on common/elf.h's
 * elf_open_ident()). Paths are looked up under a sysroot: the directory the user named, trimmed
 * by binaries_sysroot_trim() so that "/" and "" both mean the root and printed paths stay tidy.
 *
 * struct binary_finder is convert's search, handed to the process table's static mode as its
 * proc_open_t (pipeline/proc.h): SYSROOT/path, then the build-id directories (the --debug-dir
 * ones, SYSROOT/usr/lib/debug, ~/.debug: perf's build-id cache and debug files). It warns once
 * per path about a file of another build and remembers the paths it found nothing for, for the
 * command's summary. `profd stack` tries its own order (--exe, SYSROOT/name, name) with
 * binaries_open_verified() and no build-id (cores record none).
 *
 * Order: binary_finder_init(), proc_table_set_static(procs, binary_finder_open, &finder), the
 * recording read, binary_finder_done() after the process table is freed (it calls the finder
 * until then). Returns >= 0 or -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/elf.h"

#define BINARIES_MAX_DEBUG_DIRS 8  /* --debug-dir options */
#define BINARIES_MAX_WARNED 256	   /* distinct paths warned about (build-id mismatch) */

/* "/", "DIR/" -> "", "DIR": trailing slashes dropped in place; "" is the root. */
void binaries_sysroot_trim(char *sysroot);

/*
 * Open `candidate` if it is a regular ELF file of `e_machine` (0: any) whose build-id is
 * bid[0..bid_len) (bid_len 0: any). Returns the fd with *ret filled (ret may be NULL), or
 * -errno: -ESTALE when it is another build (its build-id's hex, or "none", goes to
 * ret_hex[0..hex_size) when ret_hex is not NULL), -EXDEV another architecture, -ENOEXEC not
 * ELF, -EINVAL not a regular file, open's -errno.
 */
int binaries_open_verified(const char *candidate, uint16_t e_machine, const uint8_t *bid,
			   size_t bid_len, struct elf_ident *ret, char *ret_hex, size_t hex_size);

struct binary_path {
	struct binary_path *next;
	char path[];
};

struct binary_finder {
	const char *sysroot;				   /* "" for / */
	char *dirs[BINARIES_MAX_DEBUG_DIRS + 2];	   /* build-id roots, absolute */
	size_t n_dirs;
	struct binary_path *warned, *missing;		   /* newest first */
	size_t n_warned, n_missing, n_found;
};

/* sysroot must outlive the finder; debug_dirs are copied (at most BINARIES_MAX_DEBUG_DIRS). */
int binary_finder_init(struct binary_finder *f, const char *sysroot, const char *const *debug_dirs,
		       size_t n_debug_dirs);
void binary_finder_done(struct binary_finder *f);

struct proc_static_map;
/* proc_open_t with userdata a struct binary_finder: an fd on the file for m, or -ENOENT. */
int binary_finder_open(void *userdata, const struct proc_static_map *m);

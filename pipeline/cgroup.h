/* SPDX-License-Identifier: MIT */
/*
 * Container ids from /proc/PID/cgroup: the parser, and a table that reads each process's file
 * once. The process table (pipeline/proc.h) owns one table when container ids are on
 * (proc_table_enable_container_ids()); the session labels stacks with what it finds.
 *
 * Limits: CGROUP_MAX_PIDS processes remembered (past them the table starts over: exits whose
 * records were lost leave entries behind), CGROUP_READ_MAX bytes of each cgroup file read.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CGROUP_ID_MAX 64       /* characters of a container id (64 hex for docker/containerd) */
#define CGROUP_READ_MAX 4095   /* bytes of /proc/PID/cgroup read; later lines are not seen */
#define CGROUP_BUCKETS 4096
#define CGROUP_MAX_PIDS 65536

/*
 * The container id in the text of a /proc/PID/cgroup file: the innermost path component holding
 * exactly 64 lowercase hex digits, alone or as "<prefix>-<id>[.scope]" (docker, containerd,
 * CRI-O, podman, kubepods). The unified ("0::") line wins over v1 hierarchies. Returns 1 and
 * fills ret (size > CGROUP_ID_MAX), 0 when there is none. The text is untrusted: any line may
 * be malformed or over-long.
 */
int cgroup_parse_container_id(const char *text, char *ret, size_t size);

/* One process's container id, as the table remembers it. */
struct cgroup_pid {
	struct cgroup_pid *next;
	uint32_t pid;
	/* Free for the user of the table: the session caches its interned label here. */
	uint64_t user_tag;
	char id[CGROUP_ID_MAX + 1]; /* "" when the process is in no container */
};

struct cgroup_ids;

/* `proc_root` is "/proc" normally; tests may point it elsewhere. 0 or -ENOMEM. */
int cgroup_ids_new(const char *proc_root, struct cgroup_ids **ret);
void cgroup_ids_free(struct cgroup_ids *c);
/*
 * The entry of pid, reading its cgroup file the first time (an unreadable file gives an
 * entry with no id). NULL only without memory. Valid until the pid is forgotten.
 */
struct cgroup_pid *cgroup_ids_get(struct cgroup_ids *c, uint32_t pid);
/* Forget pid (its exec or exit: runtimes move a process into its container before exec). */
void cgroup_ids_forget(struct cgroup_ids *c, uint32_t pid);

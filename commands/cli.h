/* SPDX-License-Identifier: MIT */
/* Subcommands and small helpers shared by them. */
#pragma once

#include "common/log.h"

int cmd_record(int argc, char **argv);
int cmd_stack(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_daemon(int argc, char **argv);

/* Parse a decimal number within [min, max]; -EINVAL / -ERANGE otherwise. */
int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *ret);

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

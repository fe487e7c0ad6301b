/* SPDX-License-Identifier: MIT */
/*
 * The command-line layer every `profd COMMAND` shares. Nothing here needs root or BPF: it is
 * unit-tested (tests/unit/test-cli.c).
 *
 * Commands: main.c picks one by argv[1] and calls cmd_NAME(argc - 1, argv + 1). A command
 * returns 0 or a negative errno (after logging what went wrong and what to do);
 * cli_exit_code() turns that into the process's exit status: 0 success (also after --help), 1
 * failure, CLI_EXIT_USAGE (2) when main.c cannot even tell which command was meant.
 *
 * Options: a command describes its options once, as a table of struct cli_option in the order
 * --help lists them, with heading rows (CLI_TEXT) between groups. cli_parse() builds the
 * getopt_long tables from it, applies each option in the order given (callbacks fire during
 * cli_parse(), one per occurrence, with the command's own options struct), prints the help
 * (cli_help()) on --help and returns 1, or logs "Try 'profd NAME --help'." after getopt's own
 * message on an unknown option or a missing argument.
 *
 * Also shared: the default output file name of a format, the fd limit raise, the message
 * when the BPF program cannot be loaded, and the stack completeness lines of summaries.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/log.h"
#include "common/parse.h"
#include "output/output.h"
#include "output/profile.h"
#include "symbolize/symbolize.h"

int cmd_record(int argc, char **argv);
int cmd_stack(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_daemon(int argc, char **argv);

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* ---- exit codes ------------------------------------------------------------------------------ */

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2 /* no command, or an unknown one (main.c) */

/* A command's return (0 or -errno) as the process's exit status. */
int cli_exit_code(int r);

/* ---- option tables ------------------------------------------------------------------------- */

enum cli_kind {
	CLI_CALL,  /* apply(opt, optarg, opts) */
	CLI_TRUE,  /* *(bool *)(opts + offset) = true */
	CLI_FALSE, /* *(bool *)(opts + offset) = false */
	CLI_HELP,  /* print the help to stdout, cli_parse() returns 1 */
	CLI_TEXT,  /* not an option: a line of the help text (a heading), printed as is */
};

struct cli_option;
/* 0 to go on, or a negative errno after logging what is wrong with arg (parsing stops). */
typedef int (*cli_apply_fn)(const struct cli_option *opt, const char *arg, void *opts);

struct cli_option {
	enum cli_kind kind;
	const char *name; /* long name without "--"; CLI_TEXT: NULL */
	char letter;	  /* short option, or 0 */
	bool has_arg;	  /* takes a (required) argument */
	const char *arg;  /* the argument's name in --help ("HZ"); NULL: none shown */
	/*
	 * The help text, '\n' between lines (continuation lines are indented under the first).
	 * "%d" stands for help_args[0], then help_args[1]; no other '%' sequence is special.
	 * CLI_TEXT: the whole line, printed as is (with its own '\n').
	 */
	const char *help;
	long help_args[2];
	cli_apply_fn apply; /* CLI_CALL */
	size_t offset;	    /* CLI_TRUE / CLI_FALSE: offsetof(struct opts, the_bool) */
	const void *data;   /* for apply: what this option stands for (e.g. a config key) */
};

struct cli_command {
	const char *name;   /* "record": named in "Try 'profd record --help'." */
	const char *usage;  /* printed before the options in --help (up to its last '\n') */
	const char *footer; /* printed after the options, or NULL */
	const struct cli_option *options;
	size_t n_options;
	/* Options end at the first operand (getopt's '+'); else they may follow it. */
	bool in_order;
	/* Operands allowed (record's CMD, convert's FILE); else the first is an error. */
	bool operands;
};

/* The column where help text starts: "  -X, --name ARG" padded to it. */
#define CLI_HELP_COLUMN 27

/* Print the command's help: usage, the options in table order, footer. */
void cli_help(const struct cli_command *cmd, FILE *f);

/*
 * Parse argv[1..] through cmd's table, applying each option to opts. 0: parsed, *ret_optind is
 * the first operand (argc if none; when cmd->operands is false an operand is an error:
 * "Unexpected argument 'X'. Try 'profd NAME --help'."); 1: --help was printed; <0: an error,
 * logged. getopt's state is reset first, so it may be called more than once.
 */
int cli_parse(const struct cli_command *cmd, int argc, char **argv, void *opts, int *ret_optind);

/*
 * For apply callbacks: a decimal number within [min, max] (parse_ulong()), else logs
 * "Invalid WHAT 'ARG': expected MIN..MAXUNIT." and returns -EINVAL. unit: "" or e.g. " Hz".
 */
int cli_parse_ulong(const char *what, const char *arg, unsigned long min, unsigned long max,
		    const char *unit, unsigned long *ret);

/* For --demangle MODE: simple, templates, full or none, else logs what is allowed (-EINVAL). */
int cli_parse_demangle(const char *arg, enum sym_demangle_mode *ret);

/* ---- shared behaviour ---------------------------------------------------------------------- */

/* The stem of default output names: "profile" + output_format_extension(). */
#define CLI_OUTPUT_STEM "profile"

/* "profile.pb.gz", "profile.folded", "profile.speedscope.json": a static string. */
const char *cli_default_output(enum output_format f);

/*
 * One fd is kept per profiled binary, and the soft RLIMIT_NOFILE of 1024 is easy to reach
 * with a whole host: raise the soft limit to CLI_FD_LIMIT (or the hard limit when lower).
 */
#define CLI_FD_LIMIT 65536
void cli_raise_fd_limit(void);


/* Summaries: the "complete" line and, when some stacks stopped early, the "stopped" line. */
void cli_print_completeness(FILE *f, const struct profile_summary *sum);

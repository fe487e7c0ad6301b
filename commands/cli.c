// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands/cli.h"
#include "common/macro.h"
#include "pipeline/unwind/unwind.h"

int cli_exit_code(int r)
{
	return r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* ---- help ---------------------------------------------------------------------------------- */

/* The help text with "%d" replaced by the option's help_args, continuation lines indented. */
static void print_help_text(FILE *f, const struct cli_option *o)
{
	size_t n_args = 0;

	for (const char *p = o->help; *p; p++) {
		if (p[0] == '%' && p[1] == 'd' && n_args < ARRAY_SIZE(o->help_args)) {
			fprintf(f, "%ld", o->help_args[n_args++]);
			p++;
		} else if (*p == '\n') {
			fprintf(f, "\n%*s", CLI_HELP_COLUMN, "");
		} else {
			fputc(*p, f);
		}
	}
	fputc('\n', f);
}

void cli_help(const struct cli_command *cmd, FILE *f)
{
	fputs(cmd->usage, f);
	for (size_t i = 0; i < cmd->n_options; i++) {
		const struct cli_option *o = &cmd->options[i];
		char flag[128];

		if (o->kind == CLI_TEXT) {
			fputs(o->help, f);
			continue;
		}
		snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		if (o->letter)
			fprintf(f, "  -%c, %-20s ", o->letter, flag);
		else
			fprintf(f, "      %-20s ", flag);
		print_help_text(f, o);
	}
	if (cmd->footer)
		fputs(cmd->footer, f);
}

/* ---- parsing ------------------------------------------------------------------------------- */

#define CLI_LONG_ONLY 0x100 /* getopt value of option i without a letter: CLI_LONG_ONLY + i */

/* getopt_long's tables for cmd: *ret_long (free it) and short (a buffer of size 3n + 2). */
static int build_getopt(const struct cli_command *cmd, struct option **ret_long, char *shorts)
{
	struct option *l = calloc(cmd->n_options + 1, sizeof(*l));
	size_t n = 0, k = 0;

	if (!l)
		return -ENOMEM;
	if (cmd->in_order)
		shorts[k++] = '+';
	for (size_t i = 0; i < cmd->n_options; i++) {
		const struct cli_option *o = &cmd->options[i];

		if (o->kind == CLI_TEXT)
			continue;
		l[n++] = (struct option){o->name, o->has_arg ? required_argument : no_argument,
					 NULL, o->letter ? o->letter : CLI_LONG_ONLY + (int)i};
		if (o->letter) {
			shorts[k++] = o->letter;
			if (o->has_arg)
				shorts[k++] = ':';
		}
	}
	shorts[k] = '\0';
	*ret_long = l;
	return 0;
}

static const struct cli_option *find_option(const struct cli_command *cmd, int c)
{
	if (c >= CLI_LONG_ONLY && c < CLI_LONG_ONLY + (int)cmd->n_options)
		return &cmd->options[c - CLI_LONG_ONLY];
	for (size_t i = 0; i < cmd->n_options; i++)
		if (cmd->options[i].kind != CLI_TEXT && cmd->options[i].letter == c)
			return &cmd->options[i];
	return NULL;
}

/* 0, 1 (help shown) or the apply callback's error. */
static int apply_option(const struct cli_command *cmd, const struct cli_option *o, const char *arg,
			void *opts)
{
	switch (o->kind) {
	case CLI_CALL:
		return o->apply(o, arg, opts);
	case CLI_TRUE:
	case CLI_FALSE:
		*(bool *)((char *)opts + o->offset) = o->kind == CLI_TRUE;
		return 0;
	case CLI_HELP:
		cli_help(cmd, stdout);
		return 1;
	default:
		return -EINVAL;
	}
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv, void *opts, int *ret_optind)
{
	_cleanup_free_ struct option *longs = NULL;
	_cleanup_free_ char *shorts = malloc(3 * cmd->n_options + 2);
	int c, r;

	if (!shorts || build_getopt(cmd, &longs, shorts) < 0)
		return log_oom();
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) >= 0) {
		const struct cli_option *o = find_option(cmd, c);

		if (!o)
			return log_error_errno(-EINVAL, "Try 'profd %s --help'.", cmd->name);
		r = apply_option(cmd, o, optarg, opts);
		if (r != 0)
			return r;
	}
	if (optind < argc && !cmd->operands)
		return log_error_errno(-EINVAL, "Unexpected argument '%s'. Try 'profd %s --help'.",
				       argv[optind], cmd->name);
	if (ret_optind)
		*ret_optind = optind;
	return 0;
}

int cli_parse_ulong(const char *what, const char *arg, unsigned long min, unsigned long max,
		    const char *unit, unsigned long *ret)
{
	if (parse_ulong(arg, min, max, ret) < 0)
		return log_error_errno(-EINVAL, "Invalid %s '%s': expected %lu..%lu%s.", what, arg,
				       min, max, unit);
	return 0;
}

/* ---- shared behaviour ---------------------------------------------------------------------- */

const char *cli_default_output(enum output_format f)
{
	static char names[OUTPUT_SPEEDSCOPE + 1][64];
	size_t i = (size_t)f < ARRAY_SIZE(names) ? (size_t)f : OUTPUT_PPROF;

	if (!names[i][0])
		snprintf(names[i], sizeof(names[i]), "%s%s", CLI_OUTPUT_STEM,
			 output_format_extension((enum output_format)i));
	return names[i];
}

void cli_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)CLI_FD_LIMIT);
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

void cli_print_completeness(FILE *f, const struct profile_summary *sum)
{
	double pct = sum->user_stacks ? 100.0 * sum->complete / sum->user_stacks : 0.0;

	fprintf(f, "  complete   %.1f%% of %" PRIu64 " user stacks reached the root\n", pct,
		sum->user_stacks);
	if (sum->user_stacks <= sum->complete)
		return;
	fprintf(f, "  stopped   ");
	for (int i = 1; i < _UNWIND_STOP_MAX && i < (int)ARRAY_SIZE(sum->stops); i++)
		if (sum->stops[i] && i != UNWIND_STOP_KERNEL_THREAD)
			fprintf(f, " %s %" PRIu64, unwind_stop_name(i), sum->stops[i]);
	fprintf(f, "\n");
}

int cli_parse_demangle(const char *arg, enum sym_demangle_mode *ret)
{
	if (sym_demangle_mode_from_string(arg, ret) < 0)
		return log_error_errno(-EINVAL,
				       "Unknown --demangle '%s': expected simple, templates, full or "
				       "none.",
				       arg);
	return 0;
}

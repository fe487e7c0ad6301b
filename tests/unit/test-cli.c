// SPDX-License-Identifier: MIT
/*
 * commands/cli: option tables parsed through getopt_long and printed as --help, the default
 * output names, exit codes; common/parse: the number and duration parsers the options use.
 * No root, no BPF.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands/cli.h"
#include "common/parse.h"

struct sample_opts {
	unsigned long freq;
	const char *output;
	bool all, inlines;
	int verbose;
	const char *key, *value;
};

static int set_freq(const struct cli_option *opt, const char *arg, void *opts)
{
	struct sample_opts *o = opts;

	if (parse_ulong(arg, 1, 1000, &o->freq) < 0)
		return -EINVAL;
	return 0;
}

static int set_output(const struct cli_option *opt, const char *arg, void *opts)
{
	((struct sample_opts *)opts)->output = arg;
	return 0;
}

static int count_verbose(const struct cli_option *opt, const char *arg, void *opts)
{
	((struct sample_opts *)opts)->verbose++;
	return 0;
}

static int set_key(const struct cli_option *opt, const char *arg, void *opts)
{
	struct sample_opts *o = opts;

	o->key = opt->data;
	o->value = arg;
	return 0;
}

static const struct cli_option options[] = {
	{ CLI_TEXT, .help = "Targets:\n" },
	{ CLI_TRUE, "all", 'a', .help = "every process", .offset = offsetof(struct sample_opts, all) },
	{ CLI_TEXT, .help = "\nOptions:\n" },
	{ CLI_CALL, "freq", 'F', true, "HZ", "samples per second (max %d,\nat most %d)",
	  { 1000, 7 }, set_freq },
	{ CLI_CALL, "output", 'o', true, "FILE", "where to write", .apply = set_output },
	{ CLI_FALSE, "no-inline", 0, .help = "do not expand\ninlined functions",
	  .offset = offsetof(struct sample_opts, inlines) },
	{ CLI_CALL, "some-config-key", 0, true, NULL, "a key", .apply = set_key,
	  .data = "some_config_key" },
	{ CLI_CALL, "verbose", 'v', .help = "more messages", .apply = count_verbose },
	{ CLI_HELP, "help", 'h', .help = "show this help" },
};

static const struct cli_command command = {
	.name = "sample",
	.usage = "Usage: profd sample [OPTIONS] [-- CMD]\n\n",
	.footer = "That is all.\n",
	.options = options,
	.n_options = ARRAY_SIZE(options),
	.in_order = true,
	.operands = true,
};

static int parse(const struct cli_command *cmd, struct sample_opts *o, int *ret_optind, ...)
{
	char *argv[32] = { "sample" };
	int argc = 1;
	va_list ap;

	va_start(ap, ret_optind);
	for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
		argv[argc++] = a;
	va_end(ap);
	*o = (struct sample_opts){ .inlines = true };
	return cli_parse(cmd, argc, argv, o, ret_optind);
}

Test(cli, table_applies_long_short_and_bool_options)
{
	struct sample_opts o;
	int ind = -1;

	cr_assert_eq(parse(&command, &o, &ind, "-a", "--freq", "250", "-o", "out.pb.gz",
			   "--no-inline", "-vv", "--some-config-key=42", "--", "cmd", "arg", NULL),
		     0);
	cr_assert(o.all);
	cr_assert_eq(o.freq, 250);
	cr_assert_str_eq(o.output, "out.pb.gz");
	cr_assert_not(o.inlines);
	cr_assert_eq(o.verbose, 2);
	cr_assert_str_eq(o.key, "some_config_key");
	cr_assert_str_eq(o.value, "42");
	cr_assert_eq(ind, 10, "first operand at %d", ind);

	/* In order: options end at the first operand, the command's own options stay its own. */
	cr_assert_eq(parse(&command, &o, &ind, "-F", "9", "cmd", "-a", NULL), 0);
	cr_assert_eq(o.freq, 9);
	cr_assert_not(o.all);
	cr_assert_eq(ind, 3);

	/* Parsing twice starts afresh (getopt's state is reset). */
	cr_assert_eq(parse(&command, &o, &ind, "-a", NULL), 0);
	cr_assert(o.all);
	cr_assert_eq(ind, 2);
}

Test(cli, parse_errors)
{
	struct cli_command no_operands = command;
	struct sample_opts o;
	int ind = -1;

	cr_assert_eq(parse(&command, &o, &ind, "--bogus", NULL), -EINVAL);
	cr_assert_eq(parse(&command, &o, &ind, "-x", NULL), -EINVAL);
	cr_assert_eq(parse(&command, &o, &ind, "--freq", NULL), -EINVAL, "missing argument");
	cr_assert_eq(parse(&command, &o, &ind, "-F", "0", NULL), -EINVAL, "callback refuses");
	cr_assert_eq(parse(&command, &o, &ind, "-F", "12x", NULL), -EINVAL);
	cr_assert_eq(parse(&command, &o, &ind, "--all=1", NULL), -EINVAL, "a flag with a value");
	no_operands.operands = false;
	no_operands.in_order = false;
	cr_assert_eq(parse(&no_operands, &o, &ind, "-a", "stray", NULL), -EINVAL);
	cr_assert_eq(parse(&no_operands, &o, &ind, "-a", NULL), 0);
	cr_assert_eq(ind, 2);
}

Test(cli, help_option_prints_and_returns_1, .init = cr_redirect_stdout)
{
	struct sample_opts o;
	int ind = -1;

	cr_assert_eq(parse(&command, &o, &ind, "-a", "--help", "--bogus", NULL), 1);
	fflush(stdout);
	cr_assert_stdout_neq_str("");
}

Test(cli, help_lists_every_option_in_columns)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	cli_help(&command, f);
	fclose(f);
	cr_assert(!strncmp(text, command.usage, strlen(command.usage)));
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		char want[128];

		if (options[i].kind == CLI_TEXT) {
			cr_assert_not_null(strstr(text, options[i].help), "%s", options[i].help);
			continue;
		}
		snprintf(want, sizeof(want), "--%s", options[i].name);
		cr_assert_not_null(strstr(text, want), "help lacks %s:\n%s", want, text);
	}
	cr_assert_not_null(strstr(text, "\n  -a, --all                every process\n"), "%s", text);
	cr_assert_not_null(strstr(text, "\n  -F, --freq HZ            samples per second (max 1000,\n"
					"                           at most 7)\n"),
			   "%s", text);
	cr_assert_not_null(strstr(text, "\n      --no-inline          do not expand\n"
					"                           inlined functions\n"),
			   "%s", text);
	/* Longer than the column: one space, then the text. */
	cr_assert_not_null(strstr(text, "\n      --some-config-key    a key\n"), "%s", text);
	cr_assert(len > strlen(command.footer) &&
		  !strcmp(text + len - strlen(command.footer), command.footer));
	free(text);
}

Test(cli, default_output_follows_the_format_extension)
{
	cr_assert_str_eq(cli_default_output(OUTPUT_PPROF), "profile.pb.gz");
	cr_assert_str_eq(cli_default_output(OUTPUT_FOLDED), "profile.folded");
	cr_assert_str_eq(cli_default_output(OUTPUT_SPEEDSCOPE), "profile.speedscope.json");
	for (int f = OUTPUT_PPROF; f <= OUTPUT_SPEEDSCOPE; f++) {
		const char *name = cli_default_output(f), *ext = output_format_extension(f);

		cr_assert_str_eq(name + strlen(name) - strlen(ext), ext);
	}
}

Test(cli, bounded_numbers)
{
	unsigned long v = 7;

	cr_assert_eq(cli_parse_ulong("--n", "4", 1, 4, "", &v), 0);
	cr_assert_eq(v, 4);
	cr_assert_eq(cli_parse_ulong("--n", "5", 1, 4, "", &v), -EINVAL);
	cr_assert_eq(cli_parse_ulong("frequency", "0", 1, 4, " Hz", &v), -EINVAL);
	cr_assert_eq(cli_parse_ulong("--n", "", 1, 4, "", &v), -EINVAL);
	cr_assert_eq(v, 4, "unchanged on errors");
}

Test(cli, exit_codes)
{
	cr_assert_eq(cli_exit_code(0), CLI_EXIT_OK);
	cr_assert_eq(cli_exit_code(-EINVAL), CLI_EXIT_FAILURE);
	cr_assert_eq(cli_exit_code(-EPERM), 1);
	cr_assert_eq(CLI_EXIT_USAGE, 2);
}

Test(parse, ulong)
{
	unsigned long v = 7;

	cr_assert_eq(parse_ulong("42", 1, 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(parse_ulong("0", 1, 100, &v), -ERANGE);
	cr_assert_eq(parse_ulong("101", 1, 100, &v), -ERANGE);
	cr_assert_eq(parse_ulong("-1", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_ulong("+1", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_ulong("1 ", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_ulong("", 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_ulong(NULL, 0, 100, &v), -EINVAL);
	cr_assert_eq(parse_ulong("99999999999999999999999", 0, ~0ul, &v), -EINVAL);
	cr_assert_eq(v, 42, "unchanged on errors");
}

Test(parse, duration_ns)
{
	uint64_t v = 0;

	cr_assert_eq(parse_duration_ns("1ms", 60000000000ull, &v), 0);
	cr_assert_eq(v, 1000000);
	cr_assert_eq(parse_duration_ns("250us", 60000000000ull, &v), 0);
	cr_assert_eq(v, 250000);
	cr_assert_eq(parse_duration_ns("1.5ms", 60000000000ull, &v), 0);
	cr_assert_eq(v, 1500000);
	cr_assert_eq(parse_duration_ns("2s", 60000000000ull, &v), 0);
	cr_assert_eq(v, 2000000000);
	cr_assert_eq(parse_duration_ns("5000", 60000000000ull, &v), 0);
	cr_assert_eq(v, 5000);
	cr_assert_eq(parse_duration_ns("61s", 60000000000ull, &v), -ERANGE);
	cr_assert_eq(parse_duration_ns("-1ms", 60000000000ull, &v), -EINVAL);
	cr_assert_eq(parse_duration_ns("1m", 60000000000ull, &v), -EINVAL);
	cr_assert_eq(parse_duration_ns("ms", 60000000000ull, &v), -EINVAL);
	cr_assert_eq(v, 5000, "unchanged on errors");
}

Test(parse, seconds)
{
	double v = 0;

	cr_assert_eq(parse_seconds("0.5", 10, &v), 0);
	cr_assert_float_eq(v, 0.5, 1e-12);
	cr_assert_eq(parse_seconds("0", 10, &v), -EINVAL);
	cr_assert_eq(parse_seconds("-3", 10, &v), -EINVAL);
	cr_assert_eq(parse_seconds("nan", 10, &v), -EINVAL);
	cr_assert_eq(parse_seconds("3s", 10, &v), -EINVAL);
	cr_assert_eq(parse_seconds("11", 10, &v), -ERANGE);
}

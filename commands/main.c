// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "commands/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: profd COMMAND [OPTIONS]\n"
		   "\n"
		   "A sampling CPU profiler for Linux: eBPF capture, offline unwinding, pprof output.\n"
		   "\n"
		   "Commands:\n"
		   "  record     profile processes or the whole host, write a pprof file\n"
		   "  convert    raw capture or perf.data (--call-graph dwarf) → pprof or folded\n"
		   "  stack      unwind and symbolize every thread of a core dump (--core FILE)\n"
		   "  daemon     profile the whole host continuously (systemd service)\n"
		   "\n"
		   "Run 'profd COMMAND --help' for a command's options.\n"
		   "  -h, --help       show this help\n"
		   "  -V, --version    show the version\n");
}

int main(int argc, char **argv)
{
	int r;

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("profd %s\n", PROFD_VERSION);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "record"))
		r = cmd_record(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "convert"))
		r = cmd_convert(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "stack"))
		r = cmd_stack(argc - 1, argv + 1);
	else if (!strcmp(argv[1], "daemon"))
		r = cmd_daemon(argc - 1, argv + 1);
	else {
		log_error("Unknown command '%s'. Try 'profd --help'.", argv[1]);
		return CLI_EXIT_USAGE;
	}
	return cli_exit_code(r);
}

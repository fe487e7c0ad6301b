// SPDX-License-Identifier: MIT
/*
 * A program that embeds CPython through libpython3.X.so (the shared-library interpreter, as in
 * uwsgi, Blender or a C++ service with a scripting layer): runs the script argv[1] with the
 * remaining arguments as sys.argv[1:].
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	PyConfig config;
	PyStatus st;
	FILE *f;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: pyembed SCRIPT [ARGS...]\n");
		return 2;
	}
	PyConfig_InitPythonConfig(&config);
	config.parse_argv = 0; /* sys.argv is [SCRIPT, ARGS...], not options for the interpreter */
	st = PyConfig_SetBytesArgv(&config, argc - 1, argv + 1);
	if (PyStatus_Exception(st))
		goto fail;
	st = Py_InitializeFromConfig(&config);
	if (PyStatus_Exception(st))
		goto fail;
	PyConfig_Clear(&config);
	f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	r = PyRun_SimpleFileExFlags(f, argv[1], 1, NULL);
	if (Py_FinalizeEx() < 0)
		return 120;
	return r == 0 ? 0 : 1;
fail:
	PyConfig_Clear(&config);
	Py_ExitStatusException(st);
}

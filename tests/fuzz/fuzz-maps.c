// SPDX-License-Identifier: MIT
/* proc_maps_parse_line(): /proc/PID/maps text, one line at a time as proc_load_maps() reads it. */
#include <errno.h>

#include "pipeline/proc.h"
#include "tests/fuzz/fuzz-common.h"

static void parse_one(const uint8_t *p, size_t len)
{
	/* Exactly len + 1 bytes, so a read past the NUL is an ASan report. */
	char *line = malloc(len + 1);
	struct maps_entry e;
	int r;

	if (!line)
		return;
	memcpy(line, p, len);
	line[len] = '\0';
	r = proc_maps_parse_line(line, &e);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL);
	} else {
		FUZZ_CHECK(r == 0);
		FUZZ_CHECK(e.start < e.end);
		if (e.path) {
			/* Points into the line and is NUL-terminated there. */
			FUZZ_CHECK(e.path >= line && e.path <= line + len);
			FUZZ_CHECK(e.path + strlen(e.path) <= line + len);
		}
	}
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t start = 0;

	/* Lines keep their '\n' (getline() does); the last one may lack it. */
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n') {
			parse_one(data + start, i + 1 - start);
			start = i + 1;
		}
	if (start < size || size == 0)
		parse_one(data + start, size - start);
	return 0;
}

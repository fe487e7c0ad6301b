// SPDX-License-Identifier: MIT
/*
 * daemon_config_load(): the daemon's configuration file. Besides memory safety, a round trip:
 * a file that loads and passes daemon_config_check() is written back with
 * daemon_config_write(), and that text must load again into the same configuration.
 * (Errors are logged to stderr by design: expect noise.)
 */
#include <errno.h>

#include "service/config.h"
#include "tests/fuzz/fuzz-common.h"

static int load_text(const uint8_t *text, size_t size, struct daemon_config *c)
{
	char path[64];
	int fd = fuzz_memfd(text, size);

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return daemon_config_load(c, path);
}

static void check_same(const struct daemon_config *a, const struct daemon_config *b)
{
	FUZZ_CHECK(a->frequency == b->frequency && a->interval_s == b->interval_s);
	FUZZ_CHECK(a->retention_count == b->retention_count &&
		   a->retention_bytes == b->retention_bytes);
	FUZZ_CHECK(a->stack_bytes == b->stack_bytes && a->spool_bytes == b->spool_bytes);
	FUZZ_CHECK(a->log_level == b->log_level);
	FUZZ_CHECK(!strcmp(a->output_dir, b->output_dir) && !strcmp(a->listen, b->listen));
	FUZZ_CHECK(!strcmp(a->push_url, b->push_url) && !strcmp(a->push_name, b->push_name));
	FUZZ_CHECK(!strcmp(a->push_labels, b->push_labels) && !strcmp(a->spool_dir, b->spool_dir));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_config c, again;
	char *text = NULL;
	size_t text_len = 0;
	FILE *f;
	int r;

	daemon_config_init(&c);
	r = load_text(data, size, &c);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == 0 && daemon_config_check(&c) == 0) {
		char *host = NULL;
		unsigned port;

		if (c.listen[0] && daemon_parse_listen(c.listen, &host, &port) == 0)
			FUZZ_CHECK(host != NULL);
		free(host);

		f = open_memstream(&text, &text_len);
		if (!f)
			abort();
		daemon_config_write(&c, f);
		if (fclose(f) != 0)
			abort();
		daemon_config_init(&again);
		r = load_text((const uint8_t *)text, text_len, &again);
		if (r != 0)
			fprintf(stderr, "written config does not load back:\n%s", text);
		FUZZ_CHECK(r == 0);
		check_same(&c, &again);
		daemon_config_done(&again);
		free(text);
	}
	daemon_config_done(&c);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Demangling with libiberty's callback entry points rather than cplus_demangle(): those
 * allocate with xmalloc(), which exits the process on allocation failure, while the callback
 * forms only build a bounded tree on the stack (sized by the input length, hence the input
 * limit) and hand us the text in pieces.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>
/* demangle.h drags in libiberty.h, whose ARRAY_SIZE differs in spelling from ours. */
#undef ARRAY_SIZE

#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

/*
 * Same options as __cxa_demangle (what `eu-addr2line -C` prints): parameters, no
 * DMGL_VERBOSE, so standard substitutions stay short ("std::string") and Rust legacy names
 * lose their "::h0123456789abcdef" hash suffix.
 */
#define DEMANGLE_OPTS (DMGL_PARAMS | DMGL_ANSI)

static void buf_append(const char *s, size_t n, void *opaque)
{
	struct demangle_buf *b = opaque;
	size_t need;

	/* libiberty's Rust demangler emits empty pieces as (NULL, 0): nothing to copy. */
	if (b->overflow || n == 0)
		return;
	if (size_add(b->len, n, &need) < 0 || size_add(need, 1, &need) < 0 || need > b->max) {
		b->overflow = true;
		return;
	}
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < need)
			cap *= 2;
		cap = MIN(cap, b->max);
		char *nb = realloc(b->buf, cap);
		if (!nb) {
			b->overflow = true;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

void demangle_buf_done(struct demangle_buf *b)
{
	if (!b)
		return;
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
}

static bool looks_mangled(const char *name)
{
	/* Itanium C++ and Rust legacy start with _Z, Rust v0 with _R. Anything else (C names,
	 * "i" for int) is left alone even though libiberty could "demangle" it as a type. */
	return name[0] == '_' && (name[1] == 'Z' || name[1] == 'R');
}

int demangle_into(const char *name, struct demangle_buf *b)
{
	if (!name || !b)
		return -EINVAL;
	if (strnlen(name, SYM_DEMANGLE_MAX_INPUT + 1) > SYM_DEMANGLE_MAX_INPUT)
		return -E2BIG;
	if (!looks_mangled(name))
		return -EINVAL;

	/* Rust first: legacy Rust names are also valid Itanium names, and only the Rust
	 * demangler knows to drop the hash. */
	b->len = 0;
	b->overflow = false;
	int ok = rust_demangle_callback(name, DEMANGLE_OPTS, buf_append, b);
	if (!ok && !b->overflow && name[1] == 'Z') {
		/* A failed Rust attempt may have emitted a prefix. */
		b->len = 0;
		ok = cplus_demangle_v3_callback(name, DEMANGLE_OPTS, buf_append, b);
	}
	if (b->overflow)
		return -ENOBUFS;
	if (!ok || b->len == 0)
		return -EINVAL;
	return (int)MIN(b->len, (size_t)INT32_MAX);
}

int sym_demangle(const char *name, char *buf, size_t buf_size)
{
	if (!buf || buf_size == 0)
		return -EINVAL;

	struct demangle_buf b = { .max = MIN(buf_size, (size_t)SYM_DEMANGLE_MAX_OUTPUT + 1) };
	int r = demangle_into(name, &b);
	if (r >= 0) {
		memcpy(buf, b.buf, b.len + 1);
		r = (int)b.len;
	}
	demangle_buf_done(&b);
	return r;
}

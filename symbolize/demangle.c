/* SPDX-License-Identifier: MIT */
/*
 * Demangling with libiberty's callback entry points rather than cplus_demangle(): those
 * allocate with xmalloc(), which exits the process on allocation failure, while the callback
 * forms only build a bounded tree on the stack (sized by the input length, hence the input
 * limit) and hand us the text in pieces.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libiberty/demangle.h>
/* demangle.h drags in libiberty.h, whose ARRAY_SIZE differs in spelling from ours. */
#undef ARRAY_SIZE

#include "common/grow.h"
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
	if (GROW_ARRAY(b->buf, b->cap, need, b->max) < 0) {
		b->overflow = true;
		return;
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

/*
 * Template (generic) argument lists out of a demangled name, in place, as pprof's default
 * mode drops them: "std::vector<int, A>::push_back" -> "std::vector::push_back". Kept: the
 * '<' and '>' of operator names ("operator<", "operator<<=", "operator->"), and a '<' that
 * starts a path, i.e. a Rust qualified path "<Vec<T> as Drop>::drop" (its inside is still
 * simplified). A Rust turbofish "f::<T>" loses its "::" with the list. Parentheses inside a
 * list are balanced on their own, so "(a > b)" does not close it. Unbalanced text is left
 * as it was. Returns the new length.
 */
size_t demangle_strip_templates(char *s, size_t n)
{
	static const char op[] = "operator";
	const size_t op_len = sizeof(op) - 1;
	_cleanup_free_ char *out = malloc(n + 1);
	size_t i = 0, o = 0;

	if (!out)
		return n;
	while (i < n) {
		char c = s[i];
		bool ident_before = o > 0 && (isalnum((unsigned char)out[o - 1]) || out[o - 1] == '_');

		if (c == 'o' && !ident_before && n - i > op_len && !memcmp(s + i, op, op_len) &&
		    s[i + op_len] != '\0' && strchr("<>=-", s[i + op_len])) {
			/* Longest first. */
			static const char *const tokens[] = { "<=>", "<<=", ">>=", "->*", "<<", ">>",
							      "<=",  ">=",  "->",  "-=",  "--", "==",
							      "<",   ">",   "-",   "=" };
			size_t t_len = 0;
			for (size_t t = 0; t < ARRAY_SIZE(tokens) && !t_len; t++) {
				size_t l = strlen(tokens[t]);
				if (n - i - op_len >= l && !memcmp(s + i + op_len, tokens[t], l))
					t_len = l;
			}
			memcpy(out + o, s + i, op_len + t_len);
			o += op_len + t_len;
			i += op_len + t_len;
			/* libiberty writes "operator< <int>": the list after the space is a list. */
			if (i + 1 < n && s[i] == ' ' && s[i + 1] == '<')
				i++;
			if (i >= n || s[i] != '<')
				continue;
			c = '<';
			ident_before = true;
		}
		if (c != '<') {
			out[o++] = s[i++];
			continue;
		}
		bool turbofish = o >= 2 && out[o - 1] == ':' && out[o - 2] == ':';
		bool path_start = o == 0 || strchr(" (<,&*[;{", out[o - 1]);
		if (!turbofish && path_start && !ident_before) {
			out[o++] = s[i++];
			continue;
		}
		size_t j = i, angle = 0, paren = 0;
		for (; j < n; j++) {
			if (s[j] == '(')
				paren++;
			else if (s[j] == ')' && paren > 0)
				paren--;
			else if (paren == 0 && s[j] == '<')
				angle++;
			else if (paren == 0 && s[j] == '>' && --angle == 0)
				break;
		}
		if (j >= n)
			return n; /* unbalanced: leave the name as it was */
		if (turbofish)
			o -= 2;
		i = j + 1;
	}
	memcpy(s, out, o);
	s[o] = '\0';
	return o;
}

static int demangle_mode(const char *name, enum sym_demangle_mode mode, bool clones,
			 struct demangle_buf *b)
{
	char cut[SYM_DEMANGLE_MAX_INPUT + 1];

	if (!name || !b)
		return -EINVAL;
	if (strnlen(name, SYM_DEMANGLE_MAX_INPUT + 1) > SYM_DEMANGLE_MAX_INPUT)
		return -E2BIG;
	if (!looks_mangled(name) || mode == SYM_DEMANGLE_NONE)
		return -EINVAL;

	/* Rust first: legacy Rust names are also valid Itanium names, and only the Rust
	 * demangler knows to drop the hash. */
	b->len = 0;
	b->overflow = false;
	int ok = rust_demangle_callback(name, DEMANGLE_OPTS, buf_append, b);
	if (!ok && !b->overflow && name[1] == 'Z') {
		/* A failed Rust attempt may have emitted a prefix. */
		b->len = 0;
		/* An Itanium encoding has no '.': what follows one is a clone suffix
		 * (".constprop.0", ".cold"), which pprof's modes drop (its NoClones). */
		const char *dot = clones ? NULL : strchr(name, '.');
		if (dot) {
			memcpy(cut, name, (size_t)(dot - name));
			cut[dot - name] = '\0';
			name = cut;
		}
		ok = cplus_demangle_v3_callback(name,
						mode == SYM_DEMANGLE_FULL ? DEMANGLE_OPTS : DMGL_ANSI,
						buf_append, b);
	}
	if (b->overflow)
		return -ENOBUFS;
	if (!ok || b->len == 0)
		return -EINVAL;
	if (mode == SYM_DEMANGLE_SIMPLE)
		b->len = demangle_strip_templates(b->buf, b->len);
	return (int)MIN(b->len, (size_t)INT32_MAX);
}

int demangle_into(const char *name, enum sym_demangle_mode mode, struct demangle_buf *b)
{
	return demangle_mode(name, mode, false, b);
}

int sym_demangle(const char *name, char *buf, size_t buf_size)
{
	if (!buf || buf_size == 0)
		return -EINVAL;

	struct demangle_buf b = { .max = MIN(buf_size, (size_t)SYM_DEMANGLE_MAX_OUTPUT + 1) };
	int r = demangle_mode(name, SYM_DEMANGLE_FULL, true, &b);
	if (r >= 0) {
		memcpy(buf, b.buf, b.len + 1);
		r = (int)b.len;
	}
	demangle_buf_done(&b);
	return r;
}

int sym_demangle_as(const char *name, enum sym_demangle_mode mode, char *buf, size_t buf_size)
{
	if (!buf || buf_size == 0)
		return -EINVAL;

	struct demangle_buf b = { .max = MIN(buf_size, (size_t)SYM_DEMANGLE_MAX_OUTPUT + 1) };
	int r = demangle_into(name, mode, &b);
	if (r >= 0) {
		memcpy(buf, b.buf, b.len + 1);
		r = (int)b.len;
	}
	demangle_buf_done(&b);
	return r;
}

static const char *const mode_names[] = {
	[SYM_DEMANGLE_SIMPLE] = "simple",
	[SYM_DEMANGLE_TEMPLATES] = "templates",
	[SYM_DEMANGLE_FULL] = "full",
	[SYM_DEMANGLE_NONE] = "none",
};

int sym_demangle_mode_from_string(const char *s, enum sym_demangle_mode *ret)
{
	if (!s || !ret)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++)
		if (!strcmp(s, mode_names[i])) {
			*ret = (enum sym_demangle_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *sym_demangle_mode_to_string(enum sym_demangle_mode mode)
{
	return (size_t)mode < ARRAY_SIZE(mode_names) ? mode_names[mode] : "unknown";
}

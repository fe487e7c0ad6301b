/* SPDX-License-Identifier: MIT */
/*
 * struct sym_warmer: threads that open binaries in a sym_cache and read what their lookups
 * will need, while the cache's owner is busy with something else (see symbolize.h). The owner
 * does not touch the cache until sym_warmer_finish(); the warmer's threads share it under one
 * lock held only around the cache's bookkeeping (sym_cache_prepare_shared()), so two large
 * debug files (glibc's and libstdc++'s, each tens of ms of zlib) are read at the same time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "symbolize/internal.h"
#include "symbolize/symbolize.h"

struct warm_item {
	struct warm_item *next;
	int fd;
	struct sym_root *root; /* reference, or NULL */
	struct sym_file_id file_id; /* the caller's file: the key its lookups will use */
	size_t build_id_len;
	uint8_t build_id[64];
	char path[]; /* "" when none was given */
};

struct sym_warmer {
	struct sym_cache *cache;
	pthread_t threads[SYM_WARMER_THREADS];
	size_t n_threads;
	pthread_mutex_t cache_lock; /* the cache, between the warmer's threads */
	pthread_mutex_t lock;       /* the queue */
	pthread_cond_t cond;
	struct warm_item *head, *tail;
	size_t n_added;
	bool done;
};

static void item_free(struct warm_item *it)
{
	if (!it)
		return;
	if (it->fd >= 0)
		close(it->fd);
	sym_root_unref(it->root);
	free(it);
}

static void *warm_thread(void *userdata)
{
	struct sym_warmer *w = userdata;

	for (;;) {
		struct warm_item *it;

		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->done)
			pthread_cond_wait(&w->cond, &w->lock);
		it = w->head;
		if (it) {
			w->head = it->next;
			if (!w->head)
				w->tail = NULL;
		}
		pthread_mutex_unlock(&w->lock);
		if (!it)
			return NULL; /* done, and nothing left */
		(void)sym_cache_prepare_shared(w->cache,
					       &(struct sym_binary){
						   .build_id = it->build_id_len ? it->build_id : NULL,
						   .build_id_len = it->build_id_len,
						   .fd = it->fd,
						   .path = it->path[0] ? it->path : NULL,
						   .root = it->root,
						   .file_id = &it->file_id,
					       },
					       &w->cache_lock);
		item_free(it);
	}
}

int sym_warmer_new(struct sym_cache *c, struct sym_warmer **ret)
{
	struct sym_warmer *w;
	int r;

	if (!c || !ret)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cache = c;
	pthread_mutex_init(&w->cache_lock, NULL);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	/* One thread per CPU beyond the caller's, at least one. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = cpus > 1 ? MIN((size_t)cpus, (size_t)SYM_WARMER_THREADS) : 1;

	for (r = 0; w->n_threads < want; w->n_threads++) {
		r = pthread_create(&w->threads[w->n_threads], NULL, warm_thread, w);
		if (r != 0)
			break;
	}
	if (w->n_threads == 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		pthread_mutex_destroy(&w->cache_lock);
		free(w);
		return -r;
	}
	*ret = w;
	return 0;
}

int sym_warmer_add(struct sym_warmer *w, const struct sym_binary *bin)
{
	size_t plen;
	struct warm_item *it;

	if (!w || !bin || bin->fd < 0 || bin->build_id_len > sizeof(it->build_id) ||
	    (bin->build_id_len && !bin->build_id))
		return -EINVAL;
	if (w->n_added >= SYM_WARMER_MAX)
		return -E2BIG;
	plen = bin->path ? strnlen(bin->path, 4096) : 0;
	it = calloc(1, sizeof(*it) + plen + 1);
	if (!it)
		return -ENOMEM;
	/* Our own fd: the caller may close its own meanwhile. */
	it->fd = fcntl(bin->fd, F_DUPFD_CLOEXEC, 3);
	if (it->fd < 0) {
		int r = -errno;

		free(it);
		return r;
	}
	it->root = sym_root_ref(bin->root);
	if (bin->file_id) {
		it->file_id = *bin->file_id;
	} else {
		int r = sym_file_id_from_fd(it->fd, &it->file_id);

		if (r < 0) {
			item_free(it);
			return r;
		}
	}
	it->build_id_len = bin->build_id_len;
	if (bin->build_id_len)
		memcpy(it->build_id, bin->build_id, bin->build_id_len);
	if (plen)
		memcpy(it->path, bin->path, plen);

	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	w->n_added++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void sym_warmer_finish(struct sym_warmer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	/* They empty the queue before they return: what was asked for is ready. */
	for (size_t i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	while (w->head) {
		struct warm_item *it = w->head;

		w->head = it->next;
		item_free(it);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->cache_lock);
	free(w);
}

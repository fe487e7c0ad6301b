// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/util.h"
#include "common/log.h"
#include "common/grow.h"
#include "common/macro.h"
#include "service/push.h"
#include "output/output.h"

#define SPOOL_PREFIX "push-"
#define SPOOL_SUFFIX ".pb.gz"
#define SPOOL_TMP_PREFIX ".push-"
#define SPOOL_MAX_FILES 100000
#define PUSH_RESPONSE_MAX 512
/* Spooled profiles are interval profiles: the same modes as the daemon's output files. */
#define SPOOL_FILE_MODE 0640
#define SPOOL_DIR_MODE 0750

struct push {
	char *url, *name, *labels, *spool_dir;
	uint64_t spool_bytes;
	int dir_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	/* Under lock: */
	bool stop, wake;
	uint64_t flush_deadline_ns;
	unsigned seq;
	struct push_stats st;
	/* Worker only: */
	struct log_ratelimit rl;
};

struct spool_entry {
	char *name;
	uint64_t size;
};

static void spool_free(struct spool_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct spool_entry *)a)->name, ((const struct spool_entry *)b)->name);
}

static bool is_spool_name(const char *n)
{
	size_t len = strlen(n);

	return !strncmp(n, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) && len > strlen(SPOOL_SUFFIX) &&
	       !strcmp(n + len - strlen(SPOOL_SUFFIX), SPOOL_SUFFIX);
}

/* Spooled files, oldest first (names sort by time). */
static int spool_list(struct push *p, struct spool_entry **ret, size_t *ret_n, uint64_t *ret_bytes)
{
	struct spool_entry *e = NULL;
	size_t n = 0, cap = 0;
	uint64_t bytes = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(p->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat sb;

		if (!is_spool_name(de->d_name) || n >= SPOOL_MAX_FILES)
			continue;
		if (fstatat(p->dir_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if (GROW_ARRAY(e, cap, n + 1, SPOOL_MAX_FILES) < 0)
			goto oom;
		e[n].name = strdup(de->d_name);
		if (!e[n].name)
			goto oom;
		e[n++].size = sb.st_size;
		bytes += sb.st_size;
	}
	closedir(d);
	if (n)
		qsort(e, n, sizeof(*e), cmp_entry);
	*ret = e;
	*ret_n = n;
	if (ret_bytes)
		*ret_bytes = bytes;
	return 0;
oom:
	closedir(d);
	spool_free(e, n);
	return -ENOMEM;
}

static void update_spool_stats(struct push *p, size_t n, uint64_t bytes)
{
	pthread_mutex_lock(&p->lock);
	p->st.spool_files = n;
	p->st.spool_bytes = bytes;
	pthread_mutex_unlock(&p->lock);
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t k = write(fd, data, len);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += k;
		len -= k;
	}
	return 0;
}

static int spool_one(struct push *p, const void *data, size_t len, int64_t from_s,
		     int64_t until_s, unsigned sample_rate)
{
	_cleanup_free_ char *tmp = NULL;
	char name[128];
	_cleanup_close_ int fd = -1;
	struct spool_entry *e = NULL;
	size_t n = 0, first = 0;
	uint64_t bytes = 0;
	unsigned seq;
	int r;

	if (asprintf(&tmp, "%s/" SPOOL_TMP_PREFIX "XXXXXX", p->spool_dir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = fchmod(fd, SPOOL_FILE_MODE) < 0 ? -errno : 0;
	if (r == 0)
		r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	for (;;) {
		pthread_mutex_lock(&p->lock);
		seq = p->seq++;
		pthread_mutex_unlock(&p->lock);
		/* Zero-padded: names sort in time order. */
		snprintf(name, sizeof(name),
			 SPOOL_PREFIX "%020" PRId64 "-%020" PRId64 "-%u-%06u" SPOOL_SUFFIX, from_s,
			 until_s, sample_rate, seq % 1000000);
		if (renameat2(AT_FDCWD, tmp, p->dir_fd, name, RENAME_NOREPLACE) == 0)
			break;
		if (errno != EEXIST) {
			r = -errno;
			unlink(tmp);
			return r;
		}
	}
	(void)fsync(p->dir_fd);

	/* Bounded: drop the oldest beyond spool_bytes, but never the profile just spooled. */
	if (spool_list(p, &e, &n, &bytes) == 0) {
		while (bytes > p->spool_bytes && n - first > 1) {
			log_warning("Push spool %s is over spool_bytes (%" PRIu64 " > %" PRIu64
				    " bytes): dropped the oldest profile %s.",
				    p->spool_dir, bytes, p->spool_bytes, e[first].name);
			if (unlinkat(p->dir_fd, e[first].name, 0) == 0 || errno == ENOENT) {
				pthread_mutex_lock(&p->lock);
				p->st.dropped++;
				pthread_mutex_unlock(&p->lock);
			}
			bytes -= e[first].size;
			first++;
		}
		update_spool_stats(p, n - first, bytes);
		spool_free(e, n);
	}

	return 0;
}

struct spool_part {
	struct push *p;
	int64_t from_s, until_s;
	unsigned sample_rate;
};

static int spool_part(void *userdata, const uint8_t *gz, size_t len)
{
	struct spool_part *sp = userdata;

	return spool_one(sp->p, gz, len, sp->from_s, sp->until_s, sp->sample_rate);
}

int push_submit(struct push *p, const void *data, size_t len, int64_t from_s, int64_t until_s,
		unsigned sample_rate)
{
	struct spool_part sp = { .p = p, .from_s = from_s, .until_s = until_s,
				 .sample_rate = sample_rate };
	struct output_split_stats st = {};
	int r;

	/* Within the server's limits, or in parts that are (each a whole profile of the same
	 * interval: the server adds them up). */
	r = output_split_pprof(data, len, PUSH_MAX_SAMPLES, PUSH_MAX_PROFILE_BYTES, spool_part, &sp,
			       &st);
	pthread_mutex_lock(&p->lock);
	if (st.parts > 1)
		p->st.split += st.parts - 1;
	p->st.oversize_samples += st.dropped_samples;
	p->wake = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (st.parts > 1)
		log_info("Push: the interval's profile is over Pyroscope's limits (%d samples, %d "
			 "bytes): spooled as %zu profiles.",
			 PUSH_MAX_SAMPLES, PUSH_MAX_PROFILE_BYTES, st.parts);
	if (st.dropped_samples)
		log_warning("Push: %zu samples larger than %d bytes on their own were not sent.",
			    st.dropped_samples, PUSH_MAX_PROFILE_BYTES);
	return r;
}

/* ---- the worker -------------------------------------------------------------------------- */

enum send_result { SEND_OK, SEND_RETRY, SEND_REJECTED };

struct response {
	char buf[PUSH_RESPONSE_MAX];
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct response *resp = userdata;
	size_t n = size * nmemb, k = MIN(n, sizeof(resp->buf) - 1 - resp->len);

	memcpy(resp->buf + resp->len, data, k);
	resp->len += k;
	resp->buf[resp->len] = '\0';
	return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct push *p = userdata;
	bool abort_now;

	pthread_mutex_lock(&p->lock);
	abort_now = p->stop && mono_ns() >= p->flush_deadline_ns;
	pthread_mutex_unlock(&p->lock);
	return abort_now ? 1 : 0;
}

static int read_spooled(struct push *p, const char *name, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(p->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	uint8_t *buf;
	size_t off = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size > p->spool_bytes + (1u << 20))
		return -EFBIG;
	buf = malloc(sb.st_size ? sb.st_size : 1);
	if (!buf)
		return -ENOMEM;
	while (off < (size_t)sb.st_size) {
		ssize_t k = read(fd, buf + off, sb.st_size - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(buf);
			return k < 0 ? -errno : -EIO;
		}
		off += k;
	}
	*ret = buf;
	*ret_len = off;
	return 0;
}

static enum send_result send_one(struct push *p, CURL *curl, const char *name, uint64_t timeout_ms)
{
	int64_t from, until;
	unsigned rate, seq;
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *app = NULL, *url = NULL;
	char *esc = NULL, errbuf[CURL_ERROR_SIZE] = "";
	struct response resp = {};
	curl_mime *mime = NULL;
	curl_mimepart *part;
	size_t len = 0;
	long code = 0;
	CURLcode cr;
	int r;

	if (sscanf(name, SPOOL_PREFIX "%" SCNd64 "-%" SCNd64 "-%u-%u", &from, &until, &rate,
		   &seq) != 4) {
		log_warning("Push spool: ignoring unexpected file %s/%s.", p->spool_dir, name);
		return SEND_REJECTED;
	}
	r = read_spooled(p, name, &data, &len);
	if (r == -ENOENT)
		return SEND_OK; /* dropped meanwhile (spool limit) */
	if (r < 0) {
		log_error_errno(r, "Push spool: cannot read %s/%s: %m", p->spool_dir, name);
		return SEND_REJECTED;
	}
	if (asprintf(&app, "%s{%s}", p->name, p->labels) < 0)
		return SEND_RETRY;
	esc = curl_easy_escape(curl, app, 0);
	if (!esc)
		return SEND_RETRY;
	r = asprintf(&url,
		     "%s/ingest?name=%s&from=%" PRId64 "&until=%" PRId64
		     "&format=pprof&sampleRate=%u&spyName=profd",
		     p->url, esc, from, until, rate);
	curl_free(esc);
	if (r < 0)
		return SEND_RETRY;

	curl_easy_reset(curl);
	mime = curl_mime_init(curl);
	part = mime ? curl_mime_addpart(mime) : NULL;
	if (!part || curl_mime_name(part, "profile") != CURLE_OK ||
	    curl_mime_filename(part, "profile.pprof") != CURLE_OK ||
	    curl_mime_type(part, "application/octet-stream") != CURLE_OK ||
	    curl_mime_data(part, (const char *)data, len) != CURLE_OK) {
		curl_mime_free(mime);
		return SEND_RETRY;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)PUSH_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "profd/" PROFD_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	cr = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	curl_mime_free(mime);

	if (cr == CURLE_OK && code >= 200 && code < 300)
		return SEND_OK;
	if (cr == CURLE_OK && code >= 400 && code < 500 && code != 408 && code != 425 &&
	    code != 429) {
		for (char *c = resp.buf; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		log_error("Push: %s refused %s with HTTP %ld (%s): dropped it.", p->url, name, code,
			  resp.buf[0] ? resp.buf : "no message");
		return SEND_REJECTED;
	}
	if (log_ratelimit_ok(&p->rl)) {
		if (cr != CURLE_OK)
			log_warning("Push to %s failed: %s; keeping %s in the spool, will retry.",
				    p->url, errbuf[0] ? errbuf : curl_easy_strerror(cr), name);
		else
			log_warning(
			    "Push to %s failed: HTTP %ld; keeping %s in the spool, will retry.",
			    p->url, code, name);
	}
	return SEND_RETRY;
}

static void *worker(void *arg)
{
	struct push *p = arg;
	CURL *curl = curl_easy_init();
	uint64_t backoff_ms = 0, next_try_ns = 0;
	bool pending = true, failed_while_stopping = false;

	if (!curl) {
		log_error("Push: cannot initialize libcurl; profiles stay in %s.", p->spool_dir);
		return NULL;
	}
	for (;;) {
		struct spool_entry *e = NULL;
		size_t n = 0;
		uint64_t bytes = 0, timeout_ms = PUSH_TIMEOUT_MS, now;
		enum send_result res;
		bool stopping;

		pthread_mutex_lock(&p->lock);
		for (;;) {
			struct timespec ts;
			uint64_t until;

			now = mono_ns();
			if (p->stop || p->wake || (pending && now >= next_try_ns))
				break;
			until = pending ? next_try_ns : now + 3600ull * 1000000000ull;
			ts.tv_sec = until / 1000000000ull;
			ts.tv_nsec = until % 1000000000ull;
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		}
		p->wake = false;
		stopping = p->stop;
		if (stopping) {
			now = mono_ns();
			timeout_ms =
			    p->flush_deadline_ns > now ? (p->flush_deadline_ns - now) / 1000000 : 0;
		}
		pthread_mutex_unlock(&p->lock);
		if (stopping && (timeout_ms == 0 || failed_while_stopping))
			break;

		if (spool_list(p, &e, &n, &bytes) < 0) {
			pending = true;
			next_try_ns = mono_ns() + PUSH_BACKOFF_MAX_MS * 1000000ull;
			continue;
		}
		update_spool_stats(p, n, bytes);
		if (n == 0) {
			spool_free(e, n);
			pending = false;
			if (stopping)
				break;
			continue;
		}
		pending = true;
		res = send_one(p, curl, e[0].name, MIN(timeout_ms, (uint64_t)PUSH_TIMEOUT_MS));
		if (res != SEND_RETRY) {
			if (unlinkat(p->dir_fd, e[0].name, 0) == 0 || errno == ENOENT)
				update_spool_stats(p, n - 1, bytes - e[0].size);
			pthread_mutex_lock(&p->lock);
			if (res == SEND_OK)
				p->st.sent++;
			else
				p->st.rejected++;
			p->st.failing = false;
			pthread_mutex_unlock(&p->lock);
			if (backoff_ms && res == SEND_OK)
				log_notice("Push to %s works again; sending %zu spooled profile%s.",
					   p->url, n - 1, n - 1 == 1 ? "" : "s");
			backoff_ms = 0;
			next_try_ns = 0;
		} else {
			pthread_mutex_lock(&p->lock);
			p->st.failures++;
			p->st.failing = true;
			pthread_mutex_unlock(&p->lock);
			backoff_ms = backoff_ms ? MIN(backoff_ms * 2, (uint64_t)PUSH_BACKOFF_MAX_MS)
						: PUSH_BACKOFF_MIN_MS;
			next_try_ns = mono_ns() + backoff_ms * 1000000ull;
			if (stopping)
				failed_while_stopping = true;
		}
		spool_free(e, n);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

/* Like the interval files: 0750 when created here (an existing directory keeps its mode). */
static int spool_dir_create(const char *dir)
{
	int r;

	if (mkdir(dir, SPOOL_DIR_MODE) < 0) {
		if (errno == EEXIST)
			return 0;
		if (errno != ENOENT)
			return -errno;
		r = mkdir_p(dir, SPOOL_DIR_MODE);
		if (r < 0)
			return r;
	}
	return chmod(dir, SPOOL_DIR_MODE) < 0 ? -errno : 0;
}

static void remove_stale_temp_files(struct push *p)
{
	int fd = openat(p->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	/* Left by a crash between write and rename: incomplete, never sent. */
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, SPOOL_TMP_PREFIX, strlen(SPOOL_TMP_PREFIX)))
			unlinkat(p->dir_fd, de->d_name, 0);
	closedir(d);
}

static void push_release(struct push *p)
{
	if (p->dir_fd >= 0)
		close(p->dir_fd);
	free(p->url);
	free(p->name);
	free(p->labels);
	free(p->spool_dir);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int push_new(const struct push_config *cfg, struct push **ret)
{
	static bool curl_ready;
	pthread_condattr_t ca;
	struct push *p;
	size_t ulen;
	int r;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -ENOMEM;
		curl_ready = true;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dir_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	p->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(300, 3);
	p->spool_bytes = cfg->spool_bytes;
	p->url = strdup(cfg->url);
	p->name = strdup(cfg->name);
	p->labels = strdup(cfg->labels ? cfg->labels : "");
	p->spool_dir = strdup(cfg->spool_dir);
	if (!p->url || !p->name || !p->labels || !p->spool_dir) {
		r = -ENOMEM;
		goto fail;
	}
	ulen = strlen(p->url);
	while (ulen > 0 && p->url[ulen - 1] == '/')
		p->url[--ulen] = '\0';
	r = spool_dir_create(p->spool_dir);
	if (r < 0)
		goto fail;
	p->dir_fd = open(p->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dir_fd < 0) {
		r = -errno;
		goto fail;
	}
	remove_stale_temp_files(p);
	r = -pthread_create(&p->thread, NULL, worker, p);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	push_release(p);
	return r;
}

void push_free(struct push *p, unsigned flush_ms)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	p->flush_deadline_ns = mono_ns() + flush_ms * 1000000ull;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	push_release(p);
}

void push_get_stats(struct push *p, struct push_stats *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->st;
	pthread_mutex_unlock(&p->lock);
}

/*
 * dest_dicomweb.c - the dicomweb destination: STOW-RS (PS3.18 10.5) with
 * libcurl.
 *
 * DESIGN:
 * - One request per send() (a batch): POST {url}/studies, Content-Type
 *   multipart/related; type="application/dicom"; boundary=<random>, one
 *   part per instance holding the Part 10 file as it is (streamed from the
 *   spool, never held in memory), Accept: application/dicom+json. The
 *   study-less form is used because a batch may hold instances of several
 *   studies; {url}/studies/{study} makes the server refuse every instance
 *   of another study (409).
 * - The answer is decided from the body, not the status alone: each
 *   instance is stored when it is in ReferencedSOPSequence (0008,1199),
 *   failed when it is in FailedSOPSequence (0008,1198) with its
 *   FailureReason (0008,1197) (A7xx out of resources: retry; anything
 *   else: the server will not take it), and "not confirmed" (retry) when
 *   in neither after 200/202. 5xx, 408, 429, 401, 403 and transport errors
 *   retry everything (a token or a server being fixed must not make the
 *   batch dead); other 4xx fail everything with the status and a body
 *   excerpt; 409/400 bodies are still read per instance.
 * - The bearer token is read from token_file for every request (so it can
 *   be rotated), trimmed, never logged, wiped after use. TLS verification
 *   is always on (ca_file adds a private CA bundle); only http and https;
 *   no redirects; the response is read up to max_response_kb.
 * - Timeouts: connect 10 s (or timeout_s if shorter); a transfer that
 *   moves nothing for timeout_s is abandoned (this also bounds the
 *   server's processing time after the upload); the whole request ends at
 *   the caller's deadline.
 */
#include "clock.h"
#include "dest.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define TOKEN_MAX        8192
#define CONNECT_MAX_S    10
#define EXCERPT_MAX      160
#define BOUNDARY_LEN     (8 + 32)

struct dest_dicomweb_state {
	char    name[CONFIG_NAME_MAX + 1];
	char   *url;                 /* base, without a trailing slash */
	char   *token_file;          /* or NULL */
	char   *ca_file;             /* or NULL */
	int     timeout_s;
	size_t  max_response;        /* bytes */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- state ---------------------------------------------------------------- */

static void
dicomweb_close(void *state)
{
	struct dest_dicomweb_state *s = state;

	if (!s)
		return;
	free(s->url);
	free(s->token_file);
	free(s->ca_file);
	free(s);
}

static int
dicomweb_open(const struct config *cfg, const struct config_destination *d, void **state,
              char *err, size_t errlen)
{
	struct dest_dicomweb_state *s;
	const char *v;
	long kb = 1024;
	size_t len;

	(void)cfg;
	*state = NULL;
	if (!d->url || !*d->url) {
		snprintf(err, errlen, "destination %s: url is required", d->name);
		return -EINVAL;
	}
	v = config_kv_get(d->kv, d->nkv, "max_response_kb");
	if (v && *v) {
		char *end;

		kb = strtol(v, &end, 10);
		if (*end || kb < 1 || kb > 65536) {
			snprintf(err, errlen, "destination %s: bad max_response_kb '%s'", d->name, v);
			return -EINVAL;
		}
	}
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed: %s", curl_easy_strerror(curl_init_rc));
		return -EIO;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto oom;
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	len = strlen(d->url);
	while (len > 0 && d->url[len - 1] == '/')
		len--;
	if (!(s->url = strndup(d->url, len)))
		goto oom;
	if (d->token_file && *d->token_file && !(s->token_file = strdup(d->token_file)))
		goto oom;
	v = config_kv_get(d->kv, d->nkv, "ca_file");
	if (v && *v && !(s->ca_file = strdup(v)))
		goto oom;
	s->timeout_s = d->timeout_s > 0 ? d->timeout_s : 60;
	s->max_response = (size_t)kb * 1024;
	*state = s;
	return 0;
oom:
	dicomweb_close(s);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/* ---- the token ------------------------------------------------------------- */

/* "Authorization: Bearer <token>" into *HDR (malloc'd; wipe and free it),
 * or NULL when there is no token_file. 0, or a negative errno with WHY. */
static int
auth_header(const struct dest_dicomweb_state *s, char **hdr, char *why, size_t whylen)
{
	char buf[TOKEN_MAX + 1];
	size_t len = 0, start = 0;
	ssize_t n;
	int fd, r = 0;

	*hdr = NULL;
	if (!s->token_file)
		return 0;
	fd = open(s->token_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(why, whylen, "cannot read token_file %.150s: %s", s->token_file, strerror(-r));
		return r;
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		snprintf(why, whylen, "cannot read token_file %.150s: %s", s->token_file, strerror(-r));
		goto out;
	}
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
	                   buf[len - 1] == '\t'))
		buf[--len] = '\0';
	while (start < len && (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\n' ||
	                       buf[start] == '\r'))
		start++;
	if (start == len) {
		snprintf(why, whylen, "token_file %.150s is empty", s->token_file);
		r = -EINVAL;
		goto out;
	}
	for (size_t i = start; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c < 0x21 || c == 0x7f) {
			snprintf(why, whylen, "token_file %.150s holds a space or control character "
			         "inside the token", s->token_file);
			r = -EINVAL;
			goto out;
		}
	}
	if (asprintf(hdr, "Authorization: Bearer %s", buf + start) < 0) {
		*hdr = NULL;
		snprintf(why, whylen, "out of memory");
		r = -ENOMEM;
	}
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

static void
free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Free a header list, wiping curl's copy of the Authorization header. */
static void
free_headers(struct curl_slist *h)
{
	for (struct curl_slist *e = h; e; e = e->next)
		if (e->data && strncasecmp(e->data, "Authorization:", 14) == 0)
			explicit_bzero(e->data, strlen(e->data));
	curl_slist_free_all(h);
}

/* ---- the response ------------------------------------------------------------ */

struct body {
	char   *data;
	size_t  len, max;
	bool    too_long;
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > b->max) {
		b->too_long = true;
		return 0;               /* makes curl stop with CURLE_WRITE_ERROR */
	}
	grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* The first MAX characters of BODY, printable, whitespace collapsed. */
static void
excerpt(const char *body, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	bool space = false;

	for (size_t i = 0; body && i < len && o + 4 < outlen && o < EXCERPT_MAX; i++) {
		unsigned char c = (unsigned char)body[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = o > 0;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (body && len > 0 && o >= EXCERPT_MAX && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
}

/* The items (objects) of the sequence attribute TAG of OBJ, or NULL. */
static const cJSON *
sequence(const cJSON *obj, const char *tag)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, tag);
	const cJSON *v = a ? cJSON_GetObjectItemCaseSensitive(a, "Value") : NULL;

	return cJSON_IsArray(v) ? v : NULL;
}

/* The first value of attribute TAG of ITEM, as a string (or NULL). */
static const char *
first_string(const cJSON *item, const char *tag)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(item, tag);
	const cJSON *v = a ? cJSON_GetObjectItemCaseSensitive(a, "Value") : NULL;
	const cJSON *f = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : NULL;

	return cJSON_IsString(f) ? f->valuestring : NULL;
}

/* The first value of attribute TAG of ITEM, as a number; -1 if none. */
static long
first_number(const cJSON *item, const char *tag)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(item, tag);
	const cJSON *v = a ? cJSON_GetObjectItemCaseSensitive(a, "Value") : NULL;
	const cJSON *f = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : NULL;

	if (cJSON_IsNumber(f))
		return f->valuedouble >= 0 && f->valuedouble <= 65535 ? (long)f->valuedouble : -1;
	if (cJSON_IsString(f) && f->valuestring[0]) {
		char *end;
		long n = strtol(f->valuestring, &end, 0);
		return *end == '\0' && n >= 0 && n <= 65535 ? n : -1;
	}
	return -1;
}

/* UIDs compare after trailing pad (space or NUL) is dropped. */
static bool
uid_equal(const char *a, const char *b)
{
	size_t la, lb;

	if (!a || !b)
		return false;
	la = strlen(a);
	lb = strlen(b);
	while (la > 0 && a[la - 1] == ' ')
		la--;
	while (lb > 0 && b[lb - 1] == ' ')
		lb--;
	return la == lb && la > 0 && memcmp(a, b, la) == 0;
}

/* The item of SEQ whose ReferencedSOPInstanceUID is UID, or NULL. */
static const cJSON *
find_sop(const cJSON *seq, const char *uid)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, seq)
		if (uid_equal(first_string(it, "00081155"), uid))
			return it;
	return NULL;
}

static void
set_all(struct dest_item_result *res, size_t n, int status, const char *msg)
{
	for (size_t i = 0; i < n; i++) {
		res[i].status = status;
		res[i].dimse_status = 0xFFFF;
		snprintf(res[i].message, sizeof(res[i].message), "%.*s",
		         (int)sizeof(res[i].message) - 1, msg);
	}
}

void
dest_dicomweb_map_response(long http, const char *body, size_t len,
                           const struct dest_item *items, size_t n,
                           struct dest_item_result *res)
{
	char ex[EXCERPT_MAX + 8], msg[sizeof(res[0].message)];
	const cJSON *obj = NULL, *ref = NULL, *failed = NULL;
	cJSON *doc = NULL;
	/* 2xx, and 400/409 (PS3.18: none stored), may list instances */
	bool lists = (http >= 200 && http < 300) || http == 409 || http == 400;

	excerpt(body, len, ex, sizeof(ex));
	if (http >= 500 || http == 408 || http == 429 || http == 401 || http == 403) {
		snprintf(msg, sizeof(msg), "STOW-RS: HTTP %ld%s%s", http, ex[0] ? ": " : "", ex);
		set_all(res, n, DEST_RETRY, msg);
		return;
	}
	if (lists && body && len > 0) {
		doc = cJSON_ParseWithLength(body, len);
		obj = cJSON_IsArray(doc) ? cJSON_GetArrayItem(doc, 0) : doc;
		if (!cJSON_IsObject(obj))
			obj = NULL;
		ref = obj ? sequence(obj, "00081199") : NULL;
		failed = obj ? sequence(obj, "00081198") : NULL;
	}
	if (!lists || (http >= 300 && !ref && !failed)) {
		snprintf(msg, sizeof(msg), "STOW-RS: HTTP %ld%s%s", http, ex[0] ? ": " : "", ex);
		set_all(res, n, DEST_FAIL, msg);
		cJSON_Delete(doc);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const cJSON *hit;
		struct dest_item_result *r = &res[i];

		r->dimse_status = 0xFFFF;
		if ((hit = find_sop(ref, items[i].sop_uid))) {
			long w = first_number(hit, "00081196");

			r->status = DEST_OK;
			if (w > 0)
				snprintf(r->message, sizeof(r->message),
				         "stored with WarningReason 0x%04lX (HTTP %ld)", w, http);
			else
				r->message[0] = '\0';
		} else if ((hit = find_sop(failed, items[i].sop_uid))) {
			long f = first_number(hit, "00081197");

			r->dimse_status = f >= 0 ? (uint16_t)f : 0xFFFF;
			r->status = f >= 0 && (f & 0xFF00) == 0xA700 ? DEST_RETRY : DEST_FAIL;
			if (f >= 0)
				snprintf(r->message, sizeof(r->message),
				         "STOW-RS: failed with FailureReason 0x%04lX (HTTP %ld)", f, http);
			else
				snprintf(r->message, sizeof(r->message),
				         "STOW-RS: failed, no FailureReason (HTTP %ld)", http);
		} else if (http >= 300) {
			r->status = DEST_FAIL;
			snprintf(r->message, sizeof(r->message), "STOW-RS: HTTP %ld%s%s", http,
			         ex[0] ? ": " : "", ex);
		} else {
			r->status = DEST_RETRY;
			snprintf(r->message, sizeof(r->message),
			         "STOW-RS: not confirmed by the server (HTTP %ld, %s)", http,
			         !obj ? "the response is not a DICOM JSON object" :
			         "in neither ReferencedSOPSequence nor FailedSOPSequence");
		}
	}
	cJSON_Delete(doc);
}

/* ---- the request body ------------------------------------------------------- */

struct part {
	size_t    index;           /* into the caller's items */
	const char *path;
	uint64_t  size;
};

struct upload {
	const struct part *parts;
	size_t    nparts;
	const char *boundary;
	size_t    cur;             /* part */
	int       phase;           /* 0 header, 1 file, 2 CRLF, 3 closing, 4 done */
	char      head[256];
	size_t    head_len, head_off;
	int       fd;
	uint64_t  done;            /* of the current file */
	char      why[200];        /* why the upload was abandoned */
};

static int
part_header(char *buf, size_t len, const char *boundary, uint64_t size)
{
	return snprintf(buf, len, "--%s\r\nContent-Type: application/dicom\r\n"
	                "Content-Length: %llu\r\n\r\n", boundary, (unsigned long long)size);
}

static size_t
on_read(char *out, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t room = size * nmemb, w = 0;

	while (w < room && u->phase < 4) {
		if (u->phase == 0) {
			if (u->head_len == 0) {
				int k = part_header(u->head, sizeof(u->head), u->boundary,
				                    u->parts[u->cur].size);
				u->head_len = (size_t)k;
				u->head_off = 0;
			}
			size_t k = u->head_len - u->head_off;
			if (k > room - w)
				k = room - w;
			memcpy(out + w, u->head + u->head_off, k);
			w += k;
			u->head_off += k;
			if (u->head_off == u->head_len) {
				u->head_len = 0;
				u->phase = 1;
				u->done = 0;
				u->fd = open(u->parts[u->cur].path, O_RDONLY | O_CLOEXEC);
				if (u->fd < 0) {
					snprintf(u->why, sizeof(u->why), "cannot open %.150s: %s",
					         u->parts[u->cur].path, strerror(errno));
					return CURL_READFUNC_ABORT;
				}
			}
		} else if (u->phase == 1) {
			uint64_t left = u->parts[u->cur].size - u->done;
			size_t k = room - w;
			ssize_t n;

			if (left == 0) {
				close(u->fd);
				u->fd = -1;
				u->phase = 2;
				continue;
			}
			if (k > left)
				k = (size_t)left;
			n = read(u->fd, out + w, k);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				snprintf(u->why, sizeof(u->why), "reading %.150s failed: %s",
				         u->parts[u->cur].path, n < 0 ? strerror(errno) : "file shrank");
				return CURL_READFUNC_ABORT;
			}
			w += (size_t)n;
			u->done += (uint64_t)n;
		} else if (u->phase == 2 || u->phase == 3) {
			const char *t;

			if (u->head_len == 0) {
				if (u->phase == 2)
					snprintf(u->head, sizeof(u->head), "\r\n");
				else
					snprintf(u->head, sizeof(u->head), "--%s--\r\n", u->boundary);
				u->head_len = strlen(u->head);
				u->head_off = 0;
			}
			t = u->head + u->head_off;
			size_t k = u->head_len - u->head_off;
			if (k > room - w)
				k = room - w;
			memcpy(out + w, t, k);
			w += k;
			u->head_off += k;
			if (u->head_off == u->head_len) {
				u->head_len = 0;
				if (u->phase == 2) {
					u->cur++;
					u->phase = u->cur < u->nparts ? 0 : 3;
				} else {
					u->phase = 4;
				}
			}
		}
	}
	return w;
}

/* ---- send ----------------------------------------------------------------- */

static int
make_boundary(char *out, size_t len)
{
	unsigned char rnd[16];
	size_t got = 0;

	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	snprintf(out, len, "triaged-");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(out + 8 + 2 * i, len - 8 - 2 * i, "%02x", rnd[i]);
	return 0;
}

/* Set the options every request shares. */
static void
common_options(CURL *c, const struct dest_dicomweb_state *s, int64_t deadline_ms, char *errbuf)
{
	long connect = s->timeout_s < CONNECT_MAX_S ? s->timeout_s : CONNECT_MAX_S;

	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->ca_file)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect);
	(void)curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	(void)curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)s->timeout_s);
	if (deadline_ms > 0) {
		int64_t left = deadline_ms - mono_ms();
		(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(left < 1000 ? 1000 : left));
	}
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, "triaged/" TRIAGED_VERSION);
}

static int
dicomweb_send(void *state, const struct dest_item *items, size_t n,
              struct dest_item_result *res, int64_t deadline_ms)
{
	const struct dest_dicomweb_state *s = state;
	struct part *parts = NULL;
	struct dest_item *sent_items = NULL;
	struct dest_item_result *sent_res = NULL;
	struct curl_slist *headers = NULL;
	struct body body = { .max = s->max_response };
	struct upload up = { .fd = -1 };
	char boundary[BOUNDARY_LEN + 1], why[300], errbuf[CURL_ERROR_SIZE], ctype[128];
	char url[PATH_MAX], *auth = NULL;
	uint64_t total = 0;
	size_t nparts = 0, i;
	CURL *c = NULL;
	CURLcode cc;
	long http = 0;
	int r = 0;

	if (n == 0)
		return 0;
	errbuf[0] = '\0';
	parts = calloc(n, sizeof(*parts));
	sent_items = calloc(n, sizeof(*sent_items));
	sent_res = calloc(n, sizeof(*sent_res));
	if (!parts || !sent_items || !sent_res) {
		set_all(res, n, DEST_RETRY, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if (snprintf(url, sizeof(url), "%s/studies", s->url) >= (int)sizeof(url)) {
		set_all(res, n, DEST_FAIL, "url too long");
		r = -ENAMETOOLONG;
		goto out;
	}
	if ((r = make_boundary(boundary, sizeof(boundary))) < 0) {
		set_all(res, n, DEST_RETRY, "no random bytes for the multipart boundary");
		goto out;
	}

	/* the parts: every file that is there, with its size now */
	for (i = 0; i < n; i++) {
		struct stat st;
		char head[256];
		int e = 0;

		res[i].dimse_status = 0xFFFF;
		if (!items[i].path)
			e = ENOENT;
		else if (stat(items[i].path, &st) < 0)
			e = errno;
		else if (!S_ISREG(st.st_mode))
			e = EINVAL;
		if (e) {
			res[i].status = e == ENOENT || e == EINVAL ? DEST_FAIL : DEST_RETRY;
			snprintf(res[i].message, sizeof(res[i].message), "not sent: %.150s: %s",
			         items[i].path ? items[i].path : "(no file)", strerror(e));
			continue;
		}
		if (!items[i].sop_uid || !*items[i].sop_uid) {
			res[i].status = DEST_FAIL;
			snprintf(res[i].message, sizeof(res[i].message),
			         "not sent: no SOP Instance UID to match the STOW-RS response");
			continue;
		}
		parts[nparts] = (struct part){ .index = i, .path = items[i].path,
		                               .size = (uint64_t)st.st_size };
		sent_items[nparts] = items[i];
		total += (uint64_t)part_header(head, sizeof(head), boundary, (uint64_t)st.st_size) +
		         (uint64_t)st.st_size + 2;
		nparts++;
	}
	if (nparts == 0)
		goto out;
	total += strlen(boundary) + 6;          /* "--" boundary "--\r\n" */

	if ((r = auth_header(s, &auth, why, sizeof(why))) < 0) {
		for (i = 0; i < nparts; i++)
			set_all(&res[parts[i].index], 1, DEST_RETRY, why);
		goto out;
	}
	snprintf(ctype, sizeof(ctype),
	         "Content-Type: multipart/related; type=\"application/dicom\"; boundary=%s", boundary);
	struct curl_slist *h;
	if (!(h = curl_slist_append(headers, ctype)) || !(headers = h) ||
	    !(h = curl_slist_append(headers, "Accept: application/dicom+json")) || !(headers = h) ||
	    !(h = curl_slist_append(headers, "Expect:")) || !(headers = h) ||
	    (auth && (!(h = curl_slist_append(headers, auth)) || !(headers = h)))) {
		for (i = 0; i < nparts; i++)
			set_all(&res[parts[i].index], 1, DEST_RETRY, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	c = curl_easy_init();
	if (!c) {
		for (i = 0; i < nparts; i++)
			set_all(&res[parts[i].index], 1, DEST_RETRY, "curl_easy_init failed");
		r = -ENOMEM;
		goto out;
	}
	up.parts = parts;
	up.nparts = nparts;
	up.boundary = boundary;
	common_options(c, s, deadline_ms, errbuf);
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_POST, 1L);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	(void)curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	(void)curl_easy_setopt(c, CURLOPT_READDATA, &up);
	(void)curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)total);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);

	cc = curl_easy_perform(c);
	if (up.fd >= 0)
		close(up.fd);
	if (cc != CURLE_OK) {
		if (up.why[0])
			snprintf(why, sizeof(why), "STOW-RS to %.100s abandoned: %.150s", url, up.why);
		else if (body.too_long)
			snprintf(why, sizeof(why), "STOW-RS to %.100s: response larger than "
			         "max_response_kb (%zu)", url, s->max_response / 1024);
		else
			snprintf(why, sizeof(why), "STOW-RS to %.100s failed: %s%s%.120s", url,
			         curl_easy_strerror(cc), errbuf[0] ? ": " : "", errbuf);
		for (i = 0; i < nparts; i++)
			set_all(&res[parts[i].index], 1, DEST_RETRY, why);
		r = cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED :
		    cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT :
		    cc == CURLE_COULDNT_RESOLVE_HOST ? -EHOSTUNREACH : -EIO;
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	dest_dicomweb_map_response(http, body.data, body.len, sent_items, nparts, sent_res);
	for (i = 0; i < nparts; i++)
		res[parts[i].index] = sent_res[i];
	r = 0;
out:
	curl_easy_cleanup(c);
	free_headers(headers);
	free_secret(auth);
	free(body.data);
	free(parts);
	free(sent_items);
	free(sent_res);
	return r;
}

/* Reachability: GET {url}/studies?limit=1 (QIDO-RS) with the token. A 2xx,
 * or 405 (no QIDO on this server), counts as reachable. */
static int
dicomweb_echo(void *state, char *msg, size_t msglen)
{
	const struct dest_dicomweb_state *s = state;
	struct curl_slist *headers = NULL, *h;
	struct body body = { .max = 64 * 1024 };
	char url[PATH_MAX], errbuf[CURL_ERROR_SIZE], why[300], ex[EXCERPT_MAX + 8], *auth = NULL;
	CURL *c = NULL;
	CURLcode cc;
	long http = 0;
	int r;

	errbuf[0] = '\0';
	snprintf(url, sizeof(url), "%s/studies?limit=1", s->url);
	if ((r = auth_header(s, &auth, why, sizeof(why))) < 0) {
		snprintf(msg, msglen, "%s", why);
		return r;
	}
	if (!(h = curl_slist_append(headers, "Accept: application/dicom+json")) || !(headers = h) ||
	    (auth && (!(h = curl_slist_append(headers, auth)) || !(headers = h))) ||
	    !(c = curl_easy_init())) {
		snprintf(msg, msglen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	common_options(c, s, mono_ms() + (int64_t)s->timeout_s * 1000, errbuf);
	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK && !body.too_long) {
		snprintf(msg, msglen, "GET %.100s failed: %s%s%.120s", url, curl_easy_strerror(cc),
		         errbuf[0] ? ": " : "", errbuf);
		r = cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED :
		    cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	if ((http >= 200 && http < 300) || http == 405) {
		r = 0;
		goto out;
	}
	excerpt(body.data, body.len, ex, sizeof(ex));
	snprintf(msg, msglen, "GET %.100s: HTTP %ld%s%s", url, http, ex[0] ? ": " : "", ex);
	r = http == 401 || http == 403 ? -EACCES : http == 404 ? -ENOENT : -EIO;
out:
	curl_easy_cleanup(c);
	free_headers(headers);
	free_secret(auth);
	free(body.data);
	return r;
}

static const struct dest_ops dicomweb_ops = {
	.open  = dicomweb_open,
	.echo  = dicomweb_echo,
	.send  = dicomweb_send,
	.close = dicomweb_close,
};

const struct dest_type dest_dicomweb = { .name = "dicomweb", .ops = &dicomweb_ops };

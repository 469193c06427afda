/*
 * backend_http.c - the "http" backend: the generic JSON protocol of
 * design.md section 5 over libcurl.
 *
 * DESIGN
 *
 * One state per worker thread (the type is not THREADSAFE), each with its
 * own CURL easy handle, reset before every request so no option leaks from
 * one request to the next while connections and DNS entries are reused.
 *
 * analyze():
 *   1. the deadline is the earlier of timeout_s and the host's; every
 *      request gets CURLOPT_TIMEOUT_MS / CONNECTTIMEOUT_MS from what is left;
 *   2. the bearer token is read from token_file at each analysis (so it can
 *      be rotated without a reload), trimmed, checked to be header-safe, and
 *      wiped from our memory after use; it is never logged;
 *   3. POST multipart/form-data: part "request" (application/json, the
 *      request JSON), one part "file" per instance: the spooled DICOM file
 *      streamed from disk (application/dicom, filename <SOP UID>.dcm), or,
 *      with send = png, its first frame rendered by host->image_load (at
 *      most 2048 pixels a side) as an 8-bit grayscale PNG encoded by cairo
 *      (image/png, filename <SOP UID>.png); boxes in the answer are still
 *      in source pixels (the request gives each instance's rows/columns);
 *   4. the answer:
 *        200          the result JSON -> host->result_parse_json (wrapped
 *                     {"status":"done","result":{...}} is unwrapped; a body
 *                     that is not JSON is a RETRY: likely a proxy's page);
 *        202 / 303    poll: Location (resolved against the request URL) or
 *                     a {"status_url": ...} body; GET it every
 *                     poll_interval_s, until 200, an error, or the deadline;
 *                     a 200 whose body says "queued"/"running" keeps polling;
 *        408, 429, 5xx, connection and timeout errors: RETRY;
 *        other 4xx:   FAIL, with the code and a sanitized excerpt (<= 200
 *                     characters) of the body;
 *      the body is limited to max_response_kb in the write callback
 *      (beyond: FAIL).
 *
 * Safety: only http and https (also for redirects, which only polls
 * follow, at most 5); TLS peer and host verification always on (ca_file
 * adds a CA bundle); CURLOPT_NOSIGNAL; the token goes only to the origin
 * of `url` (a poll URL on another host gets no Authorization header, and
 * libcurl does not forward it across redirects to another host).
 *
 * ready(): when health_url is set, GET it: any 2xx is ready.
 *
 * Logging is at debug level only and never includes the token.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cairo.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "text.h"
#include "triaged/backend.h"

#ifndef TRIAGED_VERSION
#define TRIAGED_VERSION "0"
#endif

#define HTTP_DEFAULT_POLL_S       2
#define HTTP_DEFAULT_TIMEOUT_S    300
#define HTTP_DEFAULT_CONNECT_S    10
#define HTTP_DEFAULT_RESPONSE_KB  1024
#define HTTP_URL_MAX              2048
#define HTTP_TOKEN_MAX            4096
#define HTTP_EXCERPT_MAX          200
#define HTTP_PNG_MAX_DIM          2048
#define HTTP_PNG_MAX_BYTES        (64u * 1024 * 1024)
#define HTTP_MAX_REDIRS           5
#define HTTP_HEALTH_TIMEOUT_MS    10000

extern const struct triaged_backend_type backend_http;

struct http_state {
	const struct triaged_host *host;
	char    name[80];
	CURL   *curl;
	char   *url;
	char   *token_file;     /* NULL: no Authorization header */
	char   *health_url;     /* NULL: ready() always ready */
	char   *ca_file;        /* NULL: the system's CA store */
	bool    send_png;
	int     poll_interval_s;
	int     timeout_s;
	int     connect_timeout_s;
	size_t  max_response;   /* bytes */
	char    errbuf[CURL_ERROR_SIZE];
};

/* What one request brought back. */
struct http_resp {
	long    code;
	char   *body;
	size_t  len, cap, max;
	bool    too_big;
	char    location[HTTP_URL_MAX + 1];
	bool    location_bad;   /* too long or with control characters */
	char    content_type[128];
};

/* Outcomes of looking at one answer, besides the triaged_status values. */
#define HTTP_PENDING  (-1)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static char *dup_or_null(const char *v)
{
	return v && *v ? strdup(v) : NULL;
}

/* A short, sanitized excerpt of an error body: its "message", "error",
 * "error.message" or "detail" when it is JSON, else its beginning. */
static void body_excerpt(const struct http_resp *resp, char *out, size_t n)
{
	char buf[HTTP_EXCERPT_MAX + 1];
	const char *text = resp->body;
	size_t len = resp->len;
	cJSON *j = NULL;

	out[0] = '\0';
	if (!resp->body || resp->len == 0)
		return;
	j = cJSON_ParseWithLength(resp->body, resp->len);
	if (cJSON_IsObject(j)) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "message");

		if (!cJSON_IsString(e))
			e = cJSON_GetObjectItemCaseSensitive(j, "error");
		if (cJSON_IsObject(e))
			e = cJSON_GetObjectItemCaseSensitive(e, "message");
		if (!cJSON_IsString(e))
			e = cJSON_GetObjectItemCaseSensitive(j, "detail");
		if (cJSON_IsString(e) && e->valuestring) {
			text = e->valuestring;
			len = strlen(text);
		}
	}
	text_sanitize(buf, sizeof(buf), text, len, false);
	snprintf(out, n, "%s", buf[0] == ' ' ? buf + 1 : buf);
	cJSON_Delete(j);
}

static void resp_reset(struct http_resp *resp)
{
	resp->code = 0;
	resp->len = 0;
	resp->too_big = false;
	resp->location[0] = '\0';
	resp->location_bad = false;
	resp->content_type[0] = '\0';
	if (resp->body)
		resp->body[0] = '\0';
}

static void resp_done(struct http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->cap = resp->len = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct http_resp *resp = user;
	size_t n = size * nmemb;

	if (resp->len + n > resp->max) {
		resp->too_big = true;
		return 0;                       /* aborts with CURLE_WRITE_ERROR */
	}
	if (resp->len + n + 1 > resp->cap) {
		size_t cap = resp->cap ? resp->cap : 16384;
		char *grown;

		while (cap < resp->len + n + 1)
			cap *= 2;
		if (cap > resp->max + 1)
			cap = resp->max + 1;
		grown = realloc(resp->body, cap);
		if (!grown)
			return 0;
		resp->body = grown;
		resp->cap = cap;
	}
	memcpy(resp->body + resp->len, data, n);
	resp->len += n;
	resp->body[resp->len] = '\0';
	return n;
}

/* Copy header value V (LEN bytes, CRLF included) into OUT, trimmed; false
 * when it does not fit or holds control characters. */
static bool header_value(const char *v, size_t len, char *out, size_t n)
{
	size_t i;

	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
	                   v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len + 1 > n)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return false;
	memcpy(out, v, len);
	out[len] = '\0';
	return true;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct http_resp *resp = user;
	size_t n = size * nmemb;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or a 100 Continue) */
		resp->location[0] = '\0';
		resp->location_bad = false;
		resp->content_type[0] = '\0';
	} else if (n > 9 && strncasecmp(data, "location:", 9) == 0) {
		if (!header_value(data + 9, n - 9, resp->location, sizeof(resp->location))) {
			resp->location[0] = '\0';
			resp->location_bad = true;
		}
	} else if (n > 13 && strncasecmp(data, "content-type:", 13) == 0) {
		if (!header_value(data + 13, n - 13, resp->content_type,
		                  sizeof(resp->content_type)))
			snprintf(resp->content_type, sizeof(resp->content_type), "?");
	}
	return n;
}

/* libcurl's sockets, O_CLOEXEC from birth like every fd of triaged. */
static curl_socket_t open_socket(void *user, curlsocktype purpose, struct curl_sockaddr *a)
{
	int fd;

	(void)user;
	(void)purpose;
	fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* Read, trim and check the bearer token. 0, or -errno with MSG. */
static int read_token(const char *path, char *tok, size_t n, char *msg, size_t msglen)
{
	size_t len = 0, i, start = 0;
	ssize_t got;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		snprintf(msg, msglen, "cannot read token_file %s: %s", path, strerror(-r));
		return r;
	}
	for (;;) {
		got = read(fd, tok + len, n - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			snprintf(msg, msglen, "cannot read token_file %s: %s", path, strerror(-r));
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len == n) {
			r = -EFBIG;
			snprintf(msg, msglen, "token_file %s is larger than %zu bytes", path, n - 1);
			goto out;
		}
	}
	while (len > 0 && isspace((unsigned char)tok[len - 1]))
		len--;
	while (start < len && isspace((unsigned char)tok[start]))
		start++;
	memmove(tok, tok + start, len - start);
	len -= start;
	tok[len] = '\0';
	if (len == 0) {
		r = -EINVAL;
		snprintf(msg, msglen, "token_file %s is empty", path);
		goto out;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f) {
			r = -EINVAL;
			snprintf(msg, msglen, "token_file %s holds characters that cannot "
			         "go in an HTTP header (spaces, control or non-ASCII)", path);
			goto out;
		}
	}
out:
	close(fd);
	if (r < 0)
		explicit_bzero(tok, n);
	return r;
}

/* Resolve REF against BASE into *OUT (malloc'd); only http(s) results. */
static int resolve_url(const char *base, const char *ref, char **out)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *full = NULL;
	int r = 0;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		r = -EINVAL;
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		r = -EPROTONOSUPPORT;
		goto out;
	}
	if (strlen(full) > HTTP_URL_MAX) {
		r = -ENAMETOOLONG;
		goto out;
	}
	*out = strdup(full);
	if (!*out)
		r = -ENOMEM;
out:
	curl_free(scheme);
	curl_free(full);
	curl_url_cleanup(u);
	return r;
}

/* Same scheme, host and port? (Where the token may go.) */
static bool same_origin(const char *a, const char *b)
{
	static const CURLUPart parts[] = { CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT };
	CURLU *ua = curl_url(), *ub = curl_url();
	bool same = false;
	size_t i;

	if (!ua || !ub || curl_url_set(ua, CURLUPART_URL, a, 0) != CURLUE_OK ||
	    curl_url_set(ub, CURLUPART_URL, b, 0) != CURLUE_OK)
		goto out;
	same = true;
	for (i = 0; same && i < sizeof(parts) / sizeof(parts[0]); i++) {
		char *pa = NULL, *pb = NULL;

		if (curl_url_get(ua, parts[i], &pa, CURLU_DEFAULT_PORT) != CURLUE_OK ||
		    curl_url_get(ub, parts[i], &pb, CURLU_DEFAULT_PORT) != CURLUE_OK ||
		    strcasecmp(pa, pb) != 0)
			same = false;
		curl_free(pa);
		curl_free(pb);
	}
out:
	curl_url_cleanup(ua);
	curl_url_cleanup(ub);
	return same;
}

static void sleep_until(const struct triaged_host *host, int64_t when_ms)
{
	for (;;) {
		int64_t left = when_ms - host->now_ms();
		struct timespec ts;

		if (left <= 0)
			return;
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		(void)nanosleep(&ts, NULL);
	}
}

/* ------------------------------------------------------------------------ */
/* PNG rendering (send = png)                                               */

struct png_buf {
	unsigned char *data;
	size_t len, cap;
};

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int n)
{
	struct png_buf *b = closure;

	if (b->len + n > HTTP_PNG_MAX_BYTES)
		return CAIRO_STATUS_WRITE_ERROR;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		unsigned char *grown;

		while (cap < b->len + n)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown)
			return CAIRO_STATUS_NO_MEMORY;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return CAIRO_STATUS_SUCCESS;
}

/* The first frame of PATH as an 8-bit grayscale PNG in *OUT. 0 or -errno
 * with ERR. */
static int png_render(const struct triaged_host *host, const char *path,
                      struct png_buf *out, char *err, size_t errlen)
{
	struct triaged_image *img = NULL;
	cairo_surface_t *s = NULL;
	cairo_status_t cs;
	unsigned char *data;
	uint32_t x, y;
	int stride, r;

	memset(out, 0, sizeof(*out));
	if (!host->image_load) {
		snprintf(err, errlen, "the host cannot decode images");
		return -ENOTSUP;
	}
	r = host->image_load(path, 1, HTTP_PNG_MAX_DIM, &img, err, errlen);
	if (r < 0)
		return r;
	if (!img || img->width == 0 || img->height == 0 || !img->pixels ||
	    img->width > INT32_MAX || img->height > INT32_MAX) {
		snprintf(err, errlen, "empty image");
		r = -EINVAL;
		goto out;
	}
	s = cairo_image_surface_create(CAIRO_FORMAT_A8, (int)img->width, (int)img->height);
	if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "cairo: %s", cairo_status_to_string(cairo_surface_status(s)));
		r = -ENOMEM;
		goto out;
	}
	cairo_surface_flush(s);
	data = cairo_image_surface_get_data(s);
	stride = cairo_image_surface_get_stride(s);
	for (y = 0; y < img->height; y++) {
		const uint16_t *src = img->pixels + (size_t)y * img->width;
		unsigned char *dst = data + (size_t)y * (size_t)stride;

		for (x = 0; x < img->width; x++)
			dst[x] = (unsigned char)(src[x] >> 8);
	}
	cairo_surface_mark_dirty(s);
	/* cairo writes an A8 surface as an 8-bit grayscale PNG */
	cs = cairo_surface_write_to_png_stream(s, png_write, out);
	if (cs != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "PNG encoding: %s", cairo_status_to_string(cs));
		r = cs == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EIO;
		goto out;
	}
	r = 0;
out:
	if (r < 0) {
		free(out->data);
		memset(out, 0, sizeof(*out));
	}
	if (s)
		cairo_surface_destroy(s);
	if (img && host->image_free)
		host->image_free(img);
	return r;
}

/* ------------------------------------------------------------------------ */
/* open / close                                                             */

static void http_close(void *state)
{
	struct http_state *st = state;

	if (!st)
		return;
	if (st->curl)
		curl_easy_cleanup(st->curl);
	free(st->url);
	free(st->token_file);
	free(st->health_url);
	free(st->ca_file);
	free(st);
}

static int http_open(const struct triaged_host *host, const struct triaged_section *section,
                     void **state, char *err, size_t errlen)
{
	struct http_state *st = NULL;
	const char *name, *v;
	long n;
	int r = -EINVAL;

	*state = NULL;
	if (!host || !section)
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return -EIO;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->host = host;
	name = host->section_name ? host->section_name(section) : NULL;
	snprintf(st->name, sizeof(st->name), "%s", name ? name : "http");

	v = host->config_get(section, "url");
	if (!v || (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0)) {
		snprintf(err, errlen, "url: an http:// or https:// URL is required");
		goto fail;
	}
	st->url = strdup(v);
	if (!st->url) {
		r = -ENOMEM;
		goto fail;
	}
	v = host->config_get(section, "token_file");
	if ((st->token_file = dup_or_null(v)) == NULL && v && *v) {
		r = -ENOMEM;
		goto fail;
	}
	v = host->config_get(section, "health_url");
	if ((st->health_url = dup_or_null(v)) == NULL && v && *v) {
		r = -ENOMEM;
		goto fail;
	}
	v = host->config_get(section, "ca_file");
	if ((st->ca_file = dup_or_null(v)) == NULL && v && *v) {
		r = -ENOMEM;
		goto fail;
	}
	if (st->health_url && strncasecmp(st->health_url, "http://", 7) != 0 &&
	    strncasecmp(st->health_url, "https://", 8) != 0) {
		snprintf(err, errlen, "health_url: an http:// or https:// URL is required");
		goto fail;
	}
	if (st->ca_file && access(st->ca_file, R_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "ca_file: %s: %s", st->ca_file, strerror(-r));
		goto fail;
	}

	v = host->config_get(section, "send");
	if (v && *v && strcmp(v, "png") != 0 && strcmp(v, "dicom") != 0) {
		snprintf(err, errlen, "send: must be dicom or png");
		goto fail;
	}
	st->send_png = v && strcmp(v, "png") == 0;
	if (text_parse_long(host->config_get(section, "poll_interval_s"), HTTP_DEFAULT_POLL_S,
	              1, 3600, &n) < 0) {
		snprintf(err, errlen, "poll_interval_s: must be an integer between 1 and 3600");
		goto fail;
	}
	st->poll_interval_s = (int)n;
	if (text_parse_long(host->config_get(section, "timeout_s"), HTTP_DEFAULT_TIMEOUT_S,
	              1, 86400, &n) < 0) {
		snprintf(err, errlen, "timeout_s: must be an integer between 1 and 86400");
		goto fail;
	}
	st->timeout_s = (int)n;
	if (text_parse_long(host->config_get(section, "connect_timeout_s"), HTTP_DEFAULT_CONNECT_S,
	              1, 600, &n) < 0) {
		snprintf(err, errlen, "connect_timeout_s: must be an integer between 1 and 600");
		goto fail;
	}
	st->connect_timeout_s = (int)n;
	if (text_parse_long(host->config_get(section, "max_response_kb"), HTTP_DEFAULT_RESPONSE_KB,
	              1, 1048576, &n) < 0) {
		snprintf(err, errlen, "max_response_kb: must be an integer between 1 and 1048576");
		goto fail;
	}
	st->max_response = (size_t)n * 1024;

	st->curl = curl_easy_init();
	if (!st->curl) {
		snprintf(err, errlen, "libcurl: cannot create a handle");
		r = -ENOMEM;
		goto fail;
	}
	host->log(LOG_DEBUG, "backend=%s http send=%s poll_interval_s=%d timeout_s=%d "
	          "token=%s health=%s", st->name, st->send_png ? "png" : "dicom",
	          st->poll_interval_s, st->timeout_s, st->token_file ? "yes" : "no",
	          st->health_url ? "yes" : "no");
	*state = st;
	return 0;
fail:
	http_close(st);
	return r;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

/* One request to URL before END (host->now_ms scale): POST of MIME, or GET
 * when MIME is NULL. AUTH is a complete "Authorization: ..." header or
 * NULL. Returns libcurl's code; RESP holds what came back. */
static CURLcode http_do(struct http_state *st, const char *url, curl_mime *mime,
                        const char *auth, int64_t end, struct http_resp *resp)
{
	struct curl_slist *hdrs = NULL, *h;
	CURL *c = st->curl;
	int64_t left = end - st->host->now_ms();
	long connect_ms;
	char *ct = NULL;
	CURLcode rc;

	resp_reset(resp);
	resp->max = st->max_response;
	st->errbuf[0] = '\0';
	if (left <= 0)
		return CURLE_OPERATION_TIMEDOUT;
	connect_ms = (long)st->connect_timeout_s * 1000;
	if (connect_ms > left)
		connect_ms = (long)left;

	curl_easy_reset(c);
	h = curl_slist_append(hdrs, "Accept: application/json");
	if (h)
		hdrs = h;
	h = curl_slist_append(hdrs, "Expect:");         /* no 100-continue round trip */
	if (h)
		hdrs = h;
	if (auth) {
		h = curl_slist_append(hdrs, auth);
		if (!h) {
			curl_slist_free_all(hdrs);
			return CURLE_OUT_OF_MEMORY;
		}
		hdrs = h;
	}

	(void)curl_easy_setopt(c, CURLOPT_URL, url);
	(void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (st->ca_file)
		(void)curl_easy_setopt(c, CURLOPT_CAINFO, st->ca_file);
	(void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
	(void)curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	(void)curl_easy_setopt(c, CURLOPT_USERAGENT, "triaged/" TRIAGED_VERSION);
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	(void)curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	(void)curl_easy_setopt(c, CURLOPT_ERRORBUFFER, st->errbuf);
	(void)curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	if (mime) {
		(void)curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
		(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	} else {
		(void)curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		(void)curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		(void)curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)HTTP_MAX_REDIRS);
	}

	rc = curl_easy_perform(c);
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->code);
	if (!resp->content_type[0] &&
	    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
		snprintf(resp->content_type, sizeof(resp->content_type), "%s", ct);

	/* the token is not left behind in freed memory */
	for (h = hdrs; h; h = h->next)
		if (h->data && strncasecmp(h->data, "Authorization:", 14) == 0)
			explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
	/* the handle keeps pointers to these until the next reset */
	(void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(c, CURLOPT_MIMEPOST, NULL);
	return rc;
}

/* A libcurl failure as a status and message. */
static int curl_failure(struct http_state *st, CURLcode rc, const struct http_resp *resp,
                        const char *what, int64_t start, char *msg, size_t msglen)
{
	const char *detail = st->errbuf[0] ? st->errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_WRITE_ERROR:
		if (resp->too_big) {
			snprintf(msg, msglen, "%s: answer larger than max_response_kb (%zu KiB)",
			         what, st->max_response / 1024);
			return TRIAGED_FAIL;
		}
		snprintf(msg, msglen, "%s: out of memory reading the answer", what);
		return TRIAGED_RETRY;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(msg, msglen, "%s: timed out after %lld s (%s)", what,
		         (long long)((st->host->now_ms() - start + 500) / 1000), detail);
		return TRIAGED_RETRY;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		snprintf(msg, msglen, "%s: TLS: %s", what, detail);
		return TRIAGED_FAIL;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_READ_ERROR:
	case CURLE_FILE_COULDNT_READ_FILE:
		snprintf(msg, msglen, "%s: %s", what, detail);
		return TRIAGED_FAIL;
	default:
		/* connection refused, resolution, reset, empty reply... */
		snprintf(msg, msglen, "%s: %s", what, detail);
		return TRIAGED_RETRY;
	}
}

static bool is_pending_status(const char *s)
{
	static const char *const pending[] = {
		"queued", "pending", "running", "processing", "in_progress",
		"submitted", "accepted", "started", NULL };
	size_t i;

	for (i = 0; s && pending[i]; i++)
		if (strcasecmp(s, pending[i]) == 0)
			return true;
	return false;
}

/* A 200 answer: the result (OK, RETRY or FAIL from result_parse_json),
 * HTTP_PENDING when the body says the job still runs, RETRY when the body
 * is not JSON. */
static int handle_result(struct http_state *st, const struct http_resp *resp,
                         struct triaged_result *r, char *msg, size_t msglen)
{
	const cJSON *status, *inner;
	char excerpt[HTTP_EXCERPT_MAX + 1];
	char *unwrapped = NULL;
	cJSON *j;
	int ret;

	j = resp->body ? cJSON_ParseWithLength(resp->body, resp->len) : NULL;
	if (!j) {
		text_sanitize(excerpt, sizeof(excerpt), resp->body ? resp->body : "", resp->len, false);
		snprintf(msg, msglen, "answer is not JSON (HTTP %ld, %s)%s%s", resp->code,
		         resp->content_type[0] ? resp->content_type : "no Content-Type",
		         excerpt[0] ? ": " : "", excerpt);
		return TRIAGED_RETRY;
	}
	status = cJSON_GetObjectItemCaseSensitive(j, "status");
	inner = cJSON_GetObjectItemCaseSensitive(j, "result");
	if (cJSON_IsObject(inner) && !cJSON_GetObjectItemCaseSensitive(j, "findings") &&
	    !cJSON_GetObjectItemCaseSensitive(j, "study")) {
		/* {"job_id":…, "status":"done", "result":{…}} */
		unwrapped = cJSON_PrintUnformatted(inner);
		if (!unwrapped) {
			cJSON_Delete(j);
			snprintf(msg, msglen, "out of memory");
			return TRIAGED_RETRY;
		}
	} else if (cJSON_IsString(status) && is_pending_status(status->valuestring)) {
		cJSON_Delete(j);
		return HTTP_PENDING;
	}
	cJSON_Delete(j);
	msg[0] = '\0';
	if (unwrapped)
		ret = st->host->result_parse_json(r, unwrapped, strlen(unwrapped), msg, msglen);
	else
		ret = st->host->result_parse_json(r, resp->body, resp->len, msg, msglen);
	free(unwrapped);
	if (ret != TRIAGED_OK && !msg[0])
		snprintf(msg, msglen, "the result was refused");
	return ret;
}

/* Where to poll, from a 2xx/303 answer: Location, else {"status_url"}.
 * 0 with *OUT (or *OUT NULL when the answer names none), -errno with MSG. */
static int poll_target(const struct http_resp *resp, const char *base, char **out,
                       char *msg, size_t msglen)
{
	const char *ref = NULL;
	cJSON *j = NULL;
	int r = 0;

	*out = NULL;
	if (resp->location_bad) {
		snprintf(msg, msglen, "HTTP %ld: Location header too long or malformed", resp->code);
		return -EINVAL;
	}
	if (resp->location[0]) {
		ref = resp->location;
	} else if (resp->body && resp->len) {
		const cJSON *su;

		j = cJSON_ParseWithLength(resp->body, resp->len);
		su = cJSON_GetObjectItemCaseSensitive(j, "status_url");
		if (cJSON_IsString(su) && su->valuestring && *su->valuestring) {
			size_t i, len = strlen(su->valuestring);

			ref = su->valuestring;
			for (i = 0; i < len; i++)
				if ((unsigned char)ref[i] <= 0x20 || ref[i] == 0x7f)
					break;
			if (len > HTTP_URL_MAX || i < len) {
				snprintf(msg, msglen, "HTTP %ld: status_url too long or malformed",
				         resp->code);
				r = -EINVAL;
				goto out;
			}
		}
	}
	if (ref) {
		r = resolve_url(base, ref, out);
		if (r < 0)
			snprintf(msg, msglen, "HTTP %ld: cannot poll '%.100s': %s", resp->code, ref,
			         r == -EPROTONOSUPPORT ? "not an http(s) URL" : strerror(-r));
	}
out:
	cJSON_Delete(j);
	return r;
}

/* The multipart body. TRIAGED_OK, or RETRY/FAIL with MSG. */
static int build_mime(struct http_state *st, const struct triaged_study *study,
                      curl_mime **out, char *msg, size_t msglen)
{
	curl_mime *mime = curl_mime_init(st->curl);
	curl_mimepart *part;
	char fname[96], err[256];
	size_t i;
	int ret = TRIAGED_RETRY;

	*out = NULL;
	if (!mime) {
		snprintf(msg, msglen, "out of memory");
		return TRIAGED_RETRY;
	}
	part = curl_mime_addpart(mime);
	if (!part || curl_mime_name(part, "request") != CURLE_OK ||
	    curl_mime_type(part, "application/json") != CURLE_OK ||
	    curl_mime_data(part, study->request_json ? study->request_json : "{}",
	                   CURL_ZERO_TERMINATED) != CURLE_OK) {
		snprintf(msg, msglen, "out of memory");
		goto fail;
	}
	for (i = 0; i < study->ninstances; i++) {
		const struct triaged_instance *in = &study->instances[i];
		const char *uid = in->sop_instance_uid ? in->sop_instance_uid : "instance";

		part = curl_mime_addpart(mime);
		if (!part || curl_mime_name(part, "file") != CURLE_OK) {
			snprintf(msg, msglen, "out of memory");
			goto fail;
		}
		if (!st->send_png) {
			CURLcode rc = curl_mime_filedata(part, in->path);

			if (rc != CURLE_OK) {
				snprintf(msg, msglen, "cannot read instance %s: %s", uid,
				         rc == CURLE_READ_ERROR ? "file missing or unreadable"
				                                : curl_easy_strerror(rc));
				ret = rc == CURLE_OUT_OF_MEMORY ? TRIAGED_RETRY : TRIAGED_FAIL;
				goto fail;
			}
			snprintf(fname, sizeof(fname), "%.64s.dcm", uid);
			if (curl_mime_filename(part, fname) != CURLE_OK ||
			    curl_mime_type(part, "application/dicom") != CURLE_OK) {
				snprintf(msg, msglen, "out of memory");
				goto fail;
			}
		} else {
			struct png_buf png;
			CURLcode rc;
			int r;

			err[0] = '\0';
			r = png_render(st->host, in->path, &png, err, sizeof(err));
			if (r < 0) {
				snprintf(msg, msglen, "cannot render instance %s as PNG: %s", uid,
				         err[0] ? err : strerror(-r));
				ret = r == -ENOMEM ? TRIAGED_RETRY : TRIAGED_FAIL;
				goto fail;
			}
			rc = curl_mime_data(part, (const char *)png.data, png.len);
			free(png.data);
			snprintf(fname, sizeof(fname), "%.64s.png", uid);
			if (rc != CURLE_OK || curl_mime_filename(part, fname) != CURLE_OK ||
			    curl_mime_type(part, "image/png") != CURLE_OK) {
				snprintf(msg, msglen, "out of memory");
				goto fail;
			}
		}
	}
	*out = mime;
	return TRIAGED_OK;
fail:
	curl_mime_free(mime);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* analyze / ready                                                          */

static int http_analyze(void *state, const struct triaged_study *study,
                        struct triaged_result *r, int64_t deadline_ms,
                        char *msg, size_t msglen)
{
	struct http_state *st = state;
	const struct triaged_host *host;
	struct http_resp resp;
	char token[HTTP_TOKEN_MAX + 1], auth[HTTP_TOKEN_MAX + 32];
	char what[48], excerpt[HTTP_EXCERPT_MAX + 1];
	curl_mime *mime = NULL;
	char *poll_url = NULL;
	int64_t start, end, t0, next;
	bool have_auth = false;
	int ret = TRIAGED_FAIL, polls = 0;

	if (msg && msglen)
		msg[0] = '\0';
	if (!st || !study || !r || !msg || msglen == 0)
		return TRIAGED_FAIL;
	host = st->host;
	memset(&resp, 0, sizeof(resp));

	start = host->now_ms();
	end = start + (int64_t)st->timeout_s * 1000;
	if (deadline_ms > 0 && deadline_ms < end)
		end = deadline_ms;

	if (st->token_file) {
		if (read_token(st->token_file, token, sizeof(token), msg, msglen) < 0)
			return TRIAGED_FAIL;
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		explicit_bzero(token, sizeof(token));
		have_auth = true;
	}

	ret = build_mime(st, study, &mime, msg, msglen);
	if (ret != TRIAGED_OK)
		goto out;

	for (;;) {
		const char *url = poll_url ? poll_url : st->url;
		const char *a = have_auth && (!poll_url || same_origin(st->url, poll_url))
		                ? auth : NULL;
		CURLcode rc;
		long code;

		if (poll_url)
			snprintf(what, sizeof(what), "poll %d", polls);
		else
			snprintf(what, sizeof(what), "POST");
		t0 = host->now_ms();
		rc = http_do(st, url, poll_url ? NULL : mime, a, end, &resp);
		host->log(LOG_DEBUG, "backend=%s job=%lld %s -> %s HTTP %ld, %zu bytes, %lld ms",
		          st->name, (long long)study->job_id, poll_url ? "GET" : "POST",
		          rc == CURLE_OK ? "ok" : curl_easy_strerror(rc), resp.code, resp.len,
		          (long long)(host->now_ms() - t0));
		if (rc != CURLE_OK) {
			if (rc == CURLE_OPERATION_TIMEDOUT && host->now_ms() >= end)
				snprintf(what, sizeof(what), "%s", poll_url ? "no result" : "no answer");
			ret = curl_failure(st, rc, &resp, what, start, msg, msglen);
			break;
		}
		code = resp.code;
		if (code == 200 || code == 201 || code == 202 || code == 303) {
			char *target = NULL;

			if (code == 200 || code == 201) {
				/* the result, or {"status":"running"} from a poll */
				ret = handle_result(st, &resp, r, msg, msglen);
				if (ret != HTTP_PENDING)
					break;
			}
			if (poll_target(&resp, url, &target, msg, msglen) < 0) {
				ret = TRIAGED_FAIL;
				break;
			}
			if (target) {
				free(poll_url);
				poll_url = target;
			} else if (!poll_url) {
				snprintf(msg, msglen, "HTTP %ld without a Location header or a status_url",
				         code);
				ret = TRIAGED_FAIL;
				break;
			}
			polls++;
			next = host->now_ms() + (int64_t)st->poll_interval_s * 1000;
			if (next >= end) {
				snprintf(msg, msglen, "timed out after %lld s: still running after %d "
				         "polls", (long long)((end - start + 500) / 1000), polls - 1);
				ret = TRIAGED_RETRY;
				break;
			}
			sleep_until(host, next);
			continue;
		}
		body_excerpt(&resp, excerpt, sizeof(excerpt));
		if (code >= 500 || code == 408 || code == 429) {
			snprintf(msg, msglen, "%s: HTTP %ld%s%s", poll_url ? "poll" : "POST", code,
			         excerpt[0] ? ": " : "", excerpt);
			ret = TRIAGED_RETRY;
		} else if (code >= 400) {
			snprintf(msg, msglen, "%s: HTTP %ld%s%s", poll_url ? "poll" : "POST", code,
			         excerpt[0] ? ": " : "", excerpt);
			ret = TRIAGED_FAIL;
		} else {
			snprintf(msg, msglen, "%s: unexpected HTTP status %ld%s%s",
			         poll_url ? "poll" : "POST", code, excerpt[0] ? ": " : "", excerpt);
			ret = TRIAGED_FAIL;
		}
		break;
	}
out:
	if (have_auth)
		explicit_bzero(auth, sizeof(auth));
	curl_mime_free(mime);
	free(poll_url);
	resp_done(&resp);
	host->log(LOG_DEBUG, "backend=%s job=%lld http -> %s after %lld ms", st->name,
	          (long long)study->job_id,
	          ret == TRIAGED_OK ? "ok" : ret == TRIAGED_RETRY ? "retry" : "fail",
	          (long long)(host->now_ms() - start));
	return ret;
}

static int http_ready(void *state, char *err, size_t errlen)
{
	struct http_state *st = state;
	struct http_resp resp;
	char token[HTTP_TOKEN_MAX + 1], auth[HTTP_TOKEN_MAX + 32];
	bool have_auth = false;
	int64_t end;
	CURLcode rc;
	int r = 0;

	if (!st)
		return -EINVAL;
	if (!st->health_url)
		return 0;
	memset(&resp, 0, sizeof(resp));
	if (st->token_file && same_origin(st->url, st->health_url) &&
	    read_token(st->token_file, token, sizeof(token), err, errlen) == 0) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		explicit_bzero(token, sizeof(token));
		have_auth = true;
	}
	end = st->host->now_ms() + HTTP_HEALTH_TIMEOUT_MS;
	rc = http_do(st, st->health_url, NULL, have_auth ? auth : NULL, end, &resp);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "health_url: %s",
		         st->errbuf[0] ? st->errbuf : curl_easy_strerror(rc));
		r = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	} else if (resp.code < 200 || resp.code > 299) {
		snprintf(err, errlen, "health_url answered HTTP %ld", resp.code);
		r = -EAGAIN;
	}
	if (have_auth)
		explicit_bzero(auth, sizeof(auth));
	resp_done(&resp);
	return r;
}

static const struct triaged_backend_ops http_ops = {
	.open = http_open,
	.ready = http_ready,
	.analyze = http_analyze,
	.close = http_close,
};

const struct triaged_backend_type backend_http = {
	.abi_version = TRIAGED_BACKEND_ABI_VERSION,
	.name = "http",
	.flags = 0,
	.ops = &http_ops,
};

/* test_dest.c - the destinations without a PACS: the type table, the
 * C-STORE status table of the SCU, the reading of STOW-RS answers (a table
 * of responses), the STOW-RS request as a small in-process HTTP server
 * sees it, the folder destination (layout, bytes, atomic replacement,
 * hostile UIDs, concurrent writers), and the dicom destination against a
 * closed port. Peers (Orthanc, storescp) are in the e2e cases 6xx. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "clock.h"
#include "config.h"
#include "dest.h"
#include "dicom/dicom.h"
#include "log.h"

static char samples[PATH_MAX];

static int
group_setup(void **state)
{
	const char *src = getenv("TRIAGED_SOURCE_DIR");
	char err[256];

	(void)state;
	if (src) {
		snprintf(samples, sizeof(samples), "%s/tests/data/samples", src);
	} else {
		/* __FILE__ is .../tests/unit/test_dest.c */
		snprintf(samples, sizeof(samples), "%s", __FILE__);
		char *p = strstr(samples, "/unit/test_dest.c");
		if (p)
			snprintf(p, sizeof(samples) - (size_t)(p - samples), "/data/samples");
	}
	log_set_level(LOG_ERR);
	assert_int_equal(dicom_global_init(err, sizeof(err)), 0);
	dicom_log_setup(LOG_ERR);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	dicom_global_done();
	return 0;
}

static void
sample(char *buf, size_t len, const char *rel)
{
	if (snprintf(buf, len, "%s/%s", samples, rel) >= (int)len || access(buf, R_OK) < 0)
		skip();
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static bool
same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	bool same = la == lb && memcmp(x, y, la) == 0;

	free(x);
	free(y);
	return same;
}

static struct config *
conf(const char *text)
{
	struct config *c = NULL;

	assert_int_equal(config_load_string(text, "t.conf", &c, stderr), 0);
	return c;
}

static char *
mkdtemp_dir(void)
{
	char *d = strdup("/tmp/test_dest.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void
rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int
count_files(const char *dir, const char *pattern)
{
	char cmd[PATH_MAX + 64];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "find '%s' -name '%s' | wc -l", dir, pattern);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* ---- the type table ------------------------------------------------------ */

static void
test_dest_type_find_knows_the_three_types(void **state)
{
	(void)state;
	assert_ptr_equal(dest_type_find("dicom"), &dest_dicom);
	assert_ptr_equal(dest_type_find("folder"), &dest_folder);
	assert_ptr_equal(dest_type_find("dicomweb"), &dest_dicomweb);
	assert_ptr_equal(dest_type_find("DICOMweb"), &dest_dicomweb);
	assert_null(dest_type_find("ftp"));
	assert_null(dest_type_find(""));
	assert_null(dest_type_find(NULL));
	assert_non_null(dest_dicom.ops->open);
	assert_non_null(dest_dicom.ops->send);
	assert_non_null(dest_folder.ops->echo);
	assert_non_null(dest_dicomweb.ops->close);
}

/* ---- C-STORE statuses ------------------------------------------------------ */

static void
test_dicom_scu_status_table(void **state)
{
	static const struct {
		bool answered;
		uint16_t status;
		int expect;
	} rows[] = {
		{ true, 0x0000, DEST_OK },      /* success */
		{ true, 0xB000, DEST_OK },      /* coercion of data elements */
		{ true, 0xB007, DEST_OK },      /* data set does not match SOP class (warning) */
		{ true, 0xB006, DEST_OK },      /* elements discarded */
		{ true, 0x0001, DEST_OK },      /* warning of other services */
		{ true, 0x0111, DEST_OK },      /* duplicate SOP instance: already there */
		{ true, 0xA700, DEST_RETRY },   /* out of resources */
		{ true, 0xA7FF, DEST_RETRY },
		{ true, 0xA701, DEST_RETRY },
		{ true, 0x0110, DEST_RETRY },   /* processing failure */
		{ true, 0x0213, DEST_RETRY },   /* resource limitation */
		{ true, 0xFE00, DEST_RETRY },   /* cancel */
		{ true, 0xFF00, DEST_RETRY },   /* pending: not a C-STORE answer */
		{ true, 0xFFFF, DEST_RETRY },   /* DcmStorageSCU's pseudo-statuses */
		{ true, 0xFFFE, DEST_RETRY },
		{ true, 0x0122, DEST_FAIL },    /* SOP class not supported */
		{ true, 0xA900, DEST_FAIL },    /* data set does not match SOP class */
		{ true, 0xA9FF, DEST_FAIL },
		{ true, 0xC000, DEST_FAIL },    /* cannot understand */
		{ true, 0xCFFF, DEST_FAIL },
		{ true, 0x0124, DEST_FAIL },    /* not authorized */
		{ true, 0x0117, DEST_FAIL },    /* invalid object instance */
		{ false, 0x0000, DEST_RETRY },  /* no response: never success */
		{ false, 0xA900, DEST_RETRY },
		{ false, 0xFFFF, DEST_RETRY },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int got = dicom_scu_outcome_of(rows[i].answered, rows[i].status);
		if (got != rows[i].expect)
			fail_msg("answered=%d status=0x%04X: got %d, expected %d", rows[i].answered,
			         rows[i].status, got, rows[i].expect);
	}
}

/* ---- STOW-RS answers -------------------------------------------------------- */

#define UID_A "1.2.3.1"
#define UID_B "1.2.3.2"
#define UID_C "1.2.3.3"

#define REF(uid) "{\"00081150\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.1\"]}," \
	"\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" uid "\"]}}"
#define FAILED(uid, reason) "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" uid "\"]}," \
	"\"00081197\":{\"vr\":\"US\",\"Value\":[" reason "]}}"
#define BODY(refs, fails) "{\"00081190\":{\"vr\":\"UR\",\"Value\":[\"http://x/studies/1\"]}," \
	"\"00081199\":{\"vr\":\"SQ\"" refs "},\"00081198\":{\"vr\":\"SQ\"" fails "}}"

struct stow_case {
	const char *name;
	long        http;
	const char *body;
	int         expect[3];         /* for UID_A, UID_B, UID_C */
	uint16_t    status[3];
	const char *msg[3];            /* substring of each message ("" = empty) */
};

static const struct stow_case stow_cases[] = {
	{ "200 all referenced", 200,
	  BODY(",\"Value\":[" REF(UID_A) "," REF(UID_B) "," REF(UID_C) "]", ""),
	  { DEST_OK, DEST_OK, DEST_OK }, { 0xFFFF, 0xFFFF, 0xFFFF }, { "", "", "" } },
	{ "200 one missing from both lists", 200,
	  BODY(",\"Value\":[" REF(UID_A) "," REF(UID_C) "]", ""),
	  { DEST_OK, DEST_RETRY, DEST_OK }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "", "not confirmed", "" } },
	{ "200 empty lists (Orthanc 1.7 after a failed part)", 200,
	  BODY("", ""),
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "not confirmed", "not confirmed", "not confirmed" } },
	{ "202 mixed: stored, out of resources, cannot understand", 202,
	  BODY(",\"Value\":[" REF(UID_A) "]",
	       ",\"Value\":[" FAILED(UID_B, "42752") "," FAILED(UID_C, "49152") "]"),
	  { DEST_OK, DEST_RETRY, DEST_FAIL }, { 0xFFFF, 0xA700, 0xC000 },
	  { "", "0xA700", "0xC000" } },
	{ "202 failure reason as a string, processing failure", 202,
	  BODY(",\"Value\":[" REF(UID_A) "," REF(UID_B) "]",
	       ",\"Value\":[{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" UID_C "\"]},"
	       "\"00081197\":{\"vr\":\"US\",\"Value\":[\"0x0110\"]}}]"),
	  { DEST_OK, DEST_OK, DEST_FAIL }, { 0xFFFF, 0xFFFF, 0x0110 }, { "", "", "0x0110" } },
	{ "202 failed item without a reason", 202,
	  BODY("", ",\"Value\":[{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" UID_A "\"]}}]"),
	  { DEST_FAIL, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "no FailureReason", "not confirmed", "not confirmed" } },
	{ "200 with a warning reason", 200,
	  BODY(",\"Value\":[{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"" UID_A "\"]},"
	       "\"00081196\":{\"vr\":\"US\",\"Value\":[45056]}}," REF(UID_B) "," REF(UID_C) "]", ""),
	  { DEST_OK, DEST_OK, DEST_OK }, { 0xFFFF, 0xFFFF, 0xFFFF }, { "0xB000", "", "" } },
	{ "200 wrapped in an array", 200,
	  "[" BODY(",\"Value\":[" REF(UID_A) "," REF(UID_B) "," REF(UID_C) "]", "") "]",
	  { DEST_OK, DEST_OK, DEST_OK }, { 0xFFFF, 0xFFFF, 0xFFFF }, { "", "", "" } },
	{ "200 UID with a trailing pad", 200,
	  BODY(",\"Value\":[" REF(UID_A " ") "," REF(UID_B) "," REF(UID_C) "]", ""),
	  { DEST_OK, DEST_OK, DEST_OK }, { 0xFFFF, 0xFFFF, 0xFFFF }, { "", "", "" } },
	{ "200 not JSON", 200, "<NativeDicomModel/>",
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "not a DICOM JSON object", "not a DICOM JSON object", "not a DICOM JSON object" } },
	{ "200 empty body", 200, "",
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "not confirmed", "not confirmed", "not confirmed" } },
	{ "409 all failed, per reason", 409,
	  BODY("", ",\"Value\":[" FAILED(UID_A, "43264") "," FAILED(UID_B, "42752") "," FAILED(UID_C, "290") "]"),
	  { DEST_FAIL, DEST_RETRY, DEST_FAIL }, { 0xA900, 0xA700, 0x0122 },
	  { "0xA900", "0xA700", "0x0122" } },
	{ "409 with a body that lists nothing", 409, "{\"error\":\"conflict\"}",
	  { DEST_FAIL, DEST_FAIL, DEST_FAIL }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 409: {\"error\":\"conflict\"}", "HTTP 409", "HTTP 409" } },
	{ "409 listing one: the others fail too", 409,
	  BODY("", ",\"Value\":[" FAILED(UID_A, "42752") "]"),
	  { DEST_RETRY, DEST_FAIL, DEST_FAIL }, { 0xA700, 0xFFFF, 0xFFFF },
	  { "0xA700", "HTTP 409", "HTTP 409" } },
	{ "400 bad request", 400, "Bad multipart",
	  { DEST_FAIL, DEST_FAIL, DEST_FAIL }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 400: Bad multipart", "HTTP 400", "HTTP 400" } },
	{ "415 unsupported media type", 415, "only application/dicom",
	  { DEST_FAIL, DEST_FAIL, DEST_FAIL }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 415: only application/dicom", "HTTP 415", "HTTP 415" } },
	{ "404 wrong url", 404, "",
	  { DEST_FAIL, DEST_FAIL, DEST_FAIL }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "STOW-RS: HTTP 404", "HTTP 404", "HTTP 404" } },
	{ "301 redirect is not followed", 301, "",
	  { DEST_FAIL, DEST_FAIL, DEST_FAIL }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 301", "HTTP 301", "HTTP 301" } },
	{ "401 token refused: retry", 401, "invalid token",
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 401: invalid token", "HTTP 401", "HTTP 401" } },
	{ "403 forbidden: retry", 403, "",
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 403", "HTTP 403", "HTTP 403" } },
	{ "429 too many requests", 429, "slow down",
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 429", "HTTP 429", "HTTP 429" } },
	{ "503 unavailable", 503, "maintenance\r\n  window",
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 503: maintenance window", "HTTP 503", "HTTP 503" } },
	{ "500 with a 202-like body is still a retry", 500,
	  BODY(",\"Value\":[" REF(UID_A) "]", ""),
	  { DEST_RETRY, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "HTTP 500", "HTTP 500", "HTTP 500" } },
	{ "200 with junk items in the list", 200,
	  "{\"00081199\":{\"vr\":\"SQ\",\"Value\":[1,\"x\",null," REF(UID_A) "]}}",
	  { DEST_OK, DEST_RETRY, DEST_RETRY }, { 0xFFFF, 0xFFFF, 0xFFFF },
	  { "", "not confirmed", "not confirmed" } },
};

static void
test_dicomweb_response_table(void **state)
{
	const struct dest_item items[3] = {
		{ .path = "/a", .sop_uid = UID_A }, { .path = "/b", .sop_uid = UID_B },
		{ .path = "/c", .sop_uid = UID_C },
	};
	(void)state;
	for (size_t k = 0; k < sizeof(stow_cases) / sizeof(stow_cases[0]); k++) {
		const struct stow_case *c = &stow_cases[k];
		struct dest_item_result res[3];

		memset(res, 0x55, sizeof(res));
		dest_dicomweb_map_response(c->http, c->body, strlen(c->body), items, 3, res);
		for (int i = 0; i < 3; i++) {
			if (res[i].status != c->expect[i] || res[i].dimse_status != c->status[i] ||
			    memchr(res[i].message, '\0', sizeof(res[i].message)) == NULL ||
			    (c->msg[i][0] ? !strstr(res[i].message, c->msg[i]) : res[i].message[0] != 0))
				fail_msg("case '%s', item %d: status %d (expected %d), dimse 0x%04X "
				         "(expected 0x%04X), message '%.256s' (expected '%s')", c->name, i,
				         res[i].status, c->expect[i], res[i].dimse_status, c->status[i],
				         res[i].message, c->msg[i]);
		}
	}
}

static void
test_dicomweb_response_excerpt_is_bounded_and_printable(void **state)
{
	const struct dest_item item = { .path = "/a", .sop_uid = UID_A };
	struct dest_item_result res;
	char body[4096];

	(void)state;
	memset(body, 'x', sizeof(body));
	body[10] = '\x01';
	body[11] = '\x1b';
	dest_dicomweb_map_response(400, body, sizeof(body), &item, 1, &res);
	assert_int_equal(res.status, DEST_FAIL);
	assert_non_null(strstr(res.message, "HTTP 400: xxxxxxxxxx??x"));
	assert_non_null(strstr(res.message, "..."));
	assert_true(strlen(res.message) < 200);
	for (const char *p = res.message; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
}

/* ---- STOW-RS on the wire: a one-request-at-a-time HTTP server ----------- */

struct http_server {
	int         fd, port;
	pthread_t   thread;
	int         status;            /* to answer */
	const char *response;          /* body to answer */
	int         requests;          /* served */
	char       *head;              /* request line and headers of the last request */
	char       *body;
	size_t      body_len;
};

static void *
server_main(void *arg)
{
	struct http_server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	size_t cap = 1 << 20, len = 0, need = 0;
	char *buf = malloc(cap), *end = NULL, hdr[256];

	if (c < 0 || !buf) {
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
		n = read(c, buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (!end && (end = memmem(buf, len, "\r\n\r\n", 4))) {
			const char *cl = NULL;
			for (char *p = buf; p < end; p++)
				if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
					cl = p + 17;
			need = (size_t)(end - buf) + 4 + (cl ? strtoul(cl, NULL, 10) : 0);
		}
		if (end && len >= need)
			break;
	}
	if (end) {
		s->head = strndup(buf, (size_t)(end - buf));
		s->body_len = len - (size_t)(end - buf) - 4;
		s->body = malloc(s->body_len + 1);
		memcpy(s->body, end + 4, s->body_len);
		s->body[s->body_len] = '\0';
	}
	snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d X\r\nContent-Type: application/dicom+json\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n", s->status, strlen(s->response));
	(void)!write(c, hdr, strlen(hdr));
	(void)!write(c, s->response, strlen(s->response));
	s->requests++;
	close(c);
	free(buf);
	return NULL;
}

static void
server_start(struct http_server *s, int status, const char *response)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->status = status;
	s->response = response;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 4), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void
server_stop(struct http_server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void
server_free(struct http_server *s)
{
	free(s->head);
	free(s->body);
	s->head = s->body = NULL;
}

/* A port nothing listens on. */
static int
closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

struct three {
	char path[3][PATH_MAX];
	struct dicom_meta meta[3];
	struct dest_item items[3];
};

static void
three_samples(struct three *t)
{
	static const char *const rel[3] = {
		"cr-chest-0001/1-1.dcm", "cr-chest-0001/1-2.dcm", "hand-bone-age-0001/1-1.dcm",
	};
	char err[256];

	for (int i = 0; i < 3; i++) {
		sample(t->path[i], sizeof(t->path[i]), rel[i]);
		assert_int_equal(dicom_meta_read(t->path[i], &t->meta[i], err, sizeof(err)), 0);
		t->items[i] = (struct dest_item){ .path = t->path[i], .sop_uid = t->meta[i].sop_uid,
		    .sop_class_uid = t->meta[i].sop_class_uid,
		    .transfer_syntax = t->meta[i].transfer_syntax, .study_uid = t->meta[i].study_uid };
	}
}

static void *
open_dest(const char *ini, const char *name, const struct dest_type **type, struct config **cfg)
{
	char err[256];
	void *st = NULL;
	const struct config_destination *d;

	*cfg = conf(ini);
	d = config_destination_find(*cfg, name);
	assert_non_null(d);
	*type = dest_type_find(d->type);
	assert_non_null(*type);
	if ((*type)->ops->open(*cfg, d, &st, err, sizeof(err)) < 0)
		fail_msg("open: %s", err);
	return st;
}

static void
test_dicomweb_request_on_the_wire(void **state)
{
	struct three t;
	struct http_server srv;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[1024], resp[4096], tok[] = "/tmp/test_dest.token.XXXXXX", *boundary, *p;
	void *st;
	int fd;

	(void)state;
	three_samples(&t);
	fd = mkstemp(tok);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "  s3cr3t-T0KEN\n\n", 16), 16);
	close(fd);
	snprintf(resp, sizeof(resp),
	         "{\"00081199\":{\"vr\":\"SQ\",\"Value\":[{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]}}]},"
	         "\"00081198\":{\"vr\":\"SQ\",\"Value\":["
	         "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},\"00081197\":{\"vr\":\"US\",\"Value\":[42752]}},"
	         "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]},\"00081197\":{\"vr\":\"US\",\"Value\":[49152]}}]}}",
	         t.meta[0].sop_uid, t.meta[1].sop_uid, t.meta[2].sop_uid);
	server_start(&srv, 202, resp);
	snprintf(ini, sizeof(ini), "[destination web]\ntype = dicomweb\n"
	         "url = http://127.0.0.1:%d/dicom-web/\ntoken_file = %s\ntimeout_s = 10\n", srv.port, tok);
	st = open_dest(ini, "web", &type, &cfg);
	assert_int_equal(type->ops->send(st, t.items, 3, res, mono_ms() + 20000), 0);
	server_stop(&srv);

	assert_int_equal(res[0].status, DEST_OK);
	assert_int_equal(res[1].status, DEST_RETRY);
	assert_int_equal(res[1].dimse_status, 0xA700);
	assert_int_equal(res[2].status, DEST_FAIL);
	assert_int_equal(res[2].dimse_status, 0xC000);
	for (int i = 0; i < 3; i++)
		assert_null(strstr(res[i].message, "s3cr3t"));

	/* what the server saw */
	assert_non_null(srv.head);
	if (strncmp(srv.head, "POST /dicom-web/studies HTTP/1.1\r\n", 34) != 0)
		fail_msg("request: %.200s", srv.head);
	assert_non_null(strstr(srv.head, "\r\nAuthorization: Bearer s3cr3t-T0KEN"));
	assert_null(strstr(srv.head, "T0KEN\n"));
	assert_non_null(strstr(srv.head, "\r\nAccept: application/dicom+json"));
	{
		static const char key[] =
		    "\r\nContent-Type: multipart/related; type=\"application/dicom\"; boundary=";

		p = strstr(srv.head, key);
		assert_non_null(p);
		p += strlen(key);
		boundary = strndup(p, strcspn(p, "\r\n"));
	}
	assert_true(strlen(boundary) >= 16);
	/* the body: three parts, each the file as it is, then the close */
	p = srv.body;
	for (int i = 0; i < 3; i++) {
		size_t flen;
		char *file = slurp(t.path[i], &flen), want[512];

		snprintf(want, sizeof(want), "--%s\r\nContent-Type: application/dicom\r\n"
		         "Content-Length: %zu\r\n\r\n", boundary, flen);
		assert_memory_equal(p, want, strlen(want));
		p += strlen(want);
		assert_true((size_t)(p - srv.body) + flen + 2 <= srv.body_len);
		assert_memory_equal(p, file, flen);
		p += flen;
		assert_memory_equal(p, "\r\n", 2);
		p += 2;
		free(file);
	}
	assert_int_equal(srv.body_len - (size_t)(p - srv.body), strlen(boundary) + 6);
	assert_memory_equal(p, "--", 2);
	assert_memory_equal(p + 2, boundary, strlen(boundary));
	assert_memory_equal(p + 2 + strlen(boundary), "--\r\n", 4);

	free(boundary);
	server_free(&srv);
	type->ops->close(st);
	config_unref(cfg);
	unlink(tok);
}

static void
test_dicomweb_token_file_missing_retries_without_a_request(void **state)
{
	struct three t;
	struct http_server srv;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512];
	void *st;

	(void)state;
	three_samples(&t);
	server_start(&srv, 200, "{}");
	snprintf(ini, sizeof(ini), "[destination web]\ntype = dicomweb\n"
	         "url = http://127.0.0.1:%d/dw\ntoken_file = /nonexistent/token\n", srv.port);
	st = open_dest(ini, "web", &type, &cfg);
	assert_true(type->ops->send(st, t.items, 3, res, mono_ms() + 5000) < 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DEST_RETRY);
		assert_non_null(strstr(res[i].message, "token_file /nonexistent/token"));
	}
	server_stop(&srv);
	server_free(&srv);
	assert_int_equal(srv.requests, 0);
	type->ops->close(st);
	config_unref(cfg);
}

static void
test_dicomweb_missing_file_fails_alone(void **state)
{
	struct three t;
	struct http_server srv;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], resp[1024];
	void *st;

	(void)state;
	three_samples(&t);
	t.items[1].path = "/nonexistent/file.dcm";
	snprintf(resp, sizeof(resp), "{\"00081199\":{\"vr\":\"SQ\",\"Value\":["
	         "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]}},"
	         "{\"00081155\":{\"vr\":\"UI\",\"Value\":[\"%s\"]}}]}}",
	         t.meta[0].sop_uid, t.meta[2].sop_uid);
	server_start(&srv, 200, resp);
	snprintf(ini, sizeof(ini), "[destination web]\ntype = dicomweb\nurl = http://127.0.0.1:%d\n",
	         srv.port);
	st = open_dest(ini, "web", &type, &cfg);
	assert_int_equal(type->ops->send(st, t.items, 3, res, mono_ms() + 20000), 0);
	server_stop(&srv);
	assert_int_equal(res[0].status, DEST_OK);
	assert_int_equal(res[1].status, DEST_FAIL);
	assert_non_null(strstr(res[1].message, "No such file"));
	assert_int_equal(res[2].status, DEST_OK);
	assert_null(strstr(srv.head, "Authorization"));
	server_free(&srv);
	type->ops->close(st);
	config_unref(cfg);
}

static void
test_dicomweb_large_response_and_refused_connection_retry(void **state)
{
	struct three t;
	struct http_server srv;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], msg[256], *big;
	void *st;

	(void)state;
	three_samples(&t);
	big = malloc(3000);
	memset(big, ' ', 2999);
	big[2999] = '\0';
	big[0] = '{';
	big[2998] = '}';
	server_start(&srv, 200, big);
	snprintf(ini, sizeof(ini), "[destination web]\ntype = dicomweb\nurl = http://127.0.0.1:%d\n"
	         "max_response_kb = 1\n", srv.port);
	st = open_dest(ini, "web", &type, &cfg);
	assert_true(type->ops->send(st, t.items, 3, res, mono_ms() + 20000) < 0);
	server_stop(&srv);
	server_free(&srv);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DEST_RETRY);
		assert_non_null(strstr(res[i].message, "larger than max_response_kb"));
	}
	type->ops->close(st);
	config_unref(cfg);
	free(big);

	snprintf(ini, sizeof(ini), "[destination web]\ntype = dicomweb\nurl = http://127.0.0.1:%d\n",
	         closed_port());
	st = open_dest(ini, "web", &type, &cfg);
	assert_int_equal(type->ops->send(st, t.items, 3, res, mono_ms() + 20000), -ECONNREFUSED);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DEST_RETRY);
		assert_non_null(strstr(res[i].message, "STOW-RS to http://127.0.0.1:"));
	}
	assert_int_equal(type->ops->echo(st, msg, sizeof(msg)), -ECONNREFUSED);
	assert_non_null(strstr(msg, "/studies?limit=1"));
	type->ops->close(st);
	config_unref(cfg);
}

/* ---- folder ----------------------------------------------------------------- */

static void
instance_path(char *buf, size_t len, const char *root, const struct dicom_meta *m)
{
	snprintf(buf, len, "%s/%s/%s.dcm", root, m->study_uid, m->sop_uid);
}

static void
test_folder_writes_study_sop_layout_bit_for_bit(void **state)
{
	struct three t;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], p[PATH_MAX * 2], *dir = mkdtemp_dir(), msg[256];
	struct stat st;
	void *s;

	(void)state;
	three_samples(&t);
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s/a/b/\n", dir);
	s = open_dest(ini, "out", &type, &cfg);
	assert_int_equal(type->ops->echo(s, msg, sizeof(msg)), 0);
	assert_int_equal(type->ops->send(s, t.items, 3, res, mono_ms() + 10000), 0);
	for (int i = 0; i < 3; i++) {
		char root[PATH_MAX];

		assert_int_equal(res[i].status, DEST_OK);
		assert_string_equal(res[i].message, "");
		snprintf(root, sizeof(root), "%s/a/b", dir);
		instance_path(p, sizeof(p), root, &t.meta[i]);
		assert_true(same_file(p, t.path[i]));
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777 & ~0640, 0);
	}
	/* two studies, three files, no temporary left, nothing else */
	assert_int_equal(count_files(dir, "*.dcm"), 3);
	assert_int_equal(count_files(dir, ".*.tmp"), 0);
	assert_int_equal(count_files(dir, ".triaged-echo*"), 0);
	type->ops->close(s);
	config_unref(cfg);
	rm_rf(dir);
	free(dir);
}

static void
test_folder_rewrite_replaces_atomically(void **state)
{
	struct three t;
	struct dest_item_result res[1];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], p[PATH_MAX * 2], *dir = mkdtemp_dir(), buf[64];
	struct stat before, after;
	void *s;
	int fd;

	(void)state;
	three_samples(&t);
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s\n", dir);
	s = open_dest(ini, "out", &type, &cfg);
	assert_int_equal(type->ops->send(s, &t.items[0], 1, res, 0), 0);
	assert_int_equal(res[0].status, DEST_OK);
	instance_path(p, sizeof(p), dir, &t.meta[0]);
	assert_int_equal(stat(p, &before), 0);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	/* the same instance again: a new file renamed over the old one */
	assert_int_equal(type->ops->send(s, &t.items[0], 1, res, 0), 0);
	assert_int_equal(res[0].status, DEST_OK);
	assert_int_equal(stat(p, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	assert_true(same_file(p, t.path[0]));
	/* a reader of the old file still reads it whole */
	assert_int_equal(pread(fd, buf, 4, 128), 4);
	assert_memory_equal(buf, "DICM", 4);
	assert_int_equal(lseek(fd, 0, SEEK_END), before.st_size);
	close(fd);
	assert_int_equal(count_files(dir, ".*.tmp"), 0);
	type->ops->close(s);
	config_unref(cfg);
	rm_rf(dir);
	free(dir);
}

static void
test_folder_refuses_hostile_uids(void **state)
{
	static const char *const bad[] = {
		"../../etc", "1.2/3", "1.2..3", "", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27",
		"1.2.a",
	};
	struct three t;
	struct dest_item_result res[1];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], *dir = mkdtemp_dir();
	void *s;

	(void)state;
	three_samples(&t);
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s/in\n", dir);
	s = open_dest(ini, "out", &type, &cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dest_item it = t.items[0];

		if (!bad[i][0])
			continue;
		it.study_uid = bad[i];
		assert_int_equal(type->ops->send(s, &it, 1, res, 0), 0);
		assert_int_equal(res[0].status, DEST_FAIL);
		assert_non_null(strstr(res[0].message, "invalid"));
		it = t.items[0];
		it.sop_uid = bad[i];
		assert_int_equal(type->ops->send(s, &it, 1, res, 0), 0);
		assert_int_equal(res[0].status, DEST_FAIL);
	}
	assert_int_equal(count_files(dir, "*"), 2);     /* dir and dir/in */
	type->ops->close(s);
	config_unref(cfg);
	rm_rf(dir);
	free(dir);
}

static void
test_folder_takes_uids_from_the_file_and_fails_missing_source(void **state)
{
	struct three t;
	struct dest_item items[2];
	struct dest_item_result res[2];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], p[PATH_MAX * 2], *dir = mkdtemp_dir();
	void *s;

	(void)state;
	three_samples(&t);
	items[0] = (struct dest_item){ .path = t.path[2] };            /* no UIDs given */
	items[1] = (struct dest_item){ .path = "/nonexistent/x.dcm", .sop_uid = "1.2.3",
	                               .study_uid = "1.2" };
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s\n", dir);
	s = open_dest(ini, "out", &type, &cfg);
	assert_int_equal(type->ops->send(s, items, 2, res, 0), 0);
	assert_int_equal(res[0].status, DEST_OK);
	instance_path(p, sizeof(p), dir, &t.meta[2]);
	assert_true(same_file(p, t.path[2]));
	assert_int_equal(res[1].status, DEST_FAIL);
	assert_non_null(strstr(res[1].message, "No such file"));
	assert_int_equal(count_files(dir, "*.dcm"), 1);
	assert_int_equal(count_files(dir, ".*.tmp"), 0);
	type->ops->close(s);
	config_unref(cfg);
	rm_rf(dir);
	free(dir);
}

static void
test_folder_unwritable_path_retries_and_echo_says_why(void **state)
{
	struct three t;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[PATH_MAX + 128], file[PATH_MAX], msg[256], *dir = mkdtemp_dir();
	void *s;
	FILE *f;

	(void)state;
	three_samples(&t);
	snprintf(file, sizeof(file), "%s/plain-file", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	/* a path below a regular file cannot be created, even by root */
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s/sub\n", file);
	s = open_dest(ini, "out", &type, &cfg);
	assert_int_equal(type->ops->echo(s, msg, sizeof(msg)), -ENOTDIR);
	assert_non_null(strstr(msg, "cannot create"));
	assert_int_equal(type->ops->send(s, t.items, 3, res, 0), -ENOTDIR);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DEST_RETRY);
		assert_non_null(strstr(res[i].message, "Not a directory"));
	}
	/* the deadline has passed: nothing is written, everything retries */
	type->ops->close(s);
	config_unref(cfg);
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s/ok\n", dir);
	s = open_dest(ini, "out", &type, &cfg);
	assert_int_equal(type->ops->send(s, t.items, 3, res, mono_ms() - 1), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(res[i].status, DEST_RETRY);
	assert_int_equal(count_files(dir, "*.dcm"), 0);
	type->ops->close(s);
	config_unref(cfg);
	rm_rf(dir);
	free(dir);
}

struct writer_arg {
	const struct dest_type *type;
	void *state;
	const struct dest_item *item;
	int failures;
};

static void *
writer_main(void *arg)
{
	struct writer_arg *w = arg;
	struct dest_item_result res;

	for (int i = 0; i < 20; i++)
		if (w->type->ops->send(w->state, w->item, 1, &res, 0) != 0 || res.status != DEST_OK)
			w->failures++;
	return NULL;
}

static void
test_folder_concurrent_writers_of_one_instance(void **state)
{
	struct three t;
	struct writer_arg w[4];
	pthread_t th[4];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], p[PATH_MAX * 2], *dir = mkdtemp_dir();
	void *s;

	(void)state;
	three_samples(&t);
	snprintf(ini, sizeof(ini), "[destination out]\ntype = folder\npath = %s\n", dir);
	s = open_dest(ini, "out", &type, &cfg);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer_arg){ .type = type, .state = s, .item = &t.items[1] };
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	instance_path(p, sizeof(p), dir, &t.meta[1]);
	assert_true(same_file(p, t.path[1]));
	assert_int_equal(count_files(dir, "*.dcm"), 1);
	assert_int_equal(count_files(dir, ".*.tmp"), 0);
	type->ops->close(s);
	config_unref(cfg);
	rm_rf(dir);
	free(dir);
}

/* ---- dicom, without a peer --------------------------------------------------- */

static void
test_dicom_open_and_closed_port(void **state)
{
	struct three t;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], msg[256];
	void *s;

	(void)state;
	three_samples(&t);
	snprintf(ini, sizeof(ini), "[server]\nae_title = NODE1\n[destination pacs]\ntype = dicom\n"
	         "host = 127.0.0.1\nport = %d\nae_title = PACS\ntimeout_s = 5\nmax_pdu = 16384\n",
	         closed_port());
	s = open_dest(ini, "pacs", &type, &cfg);
	assert_int_equal(type->ops->echo(s, msg, sizeof(msg)), -ECONNREFUSED);
	assert_non_null(strstr(msg, "cannot connect to PACS@127.0.0.1:"));
	assert_non_null(strstr(msg, "connection refused"));
	memset(res, 0, sizeof(res));
	assert_int_equal(type->ops->send(s, t.items, 3, res, mono_ms() + 10000), -ECONNREFUSED);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DEST_RETRY);
		assert_int_equal(res[i].dimse_status, 0xFFFF);
		assert_non_null(strstr(res[i].message, "connection refused"));
	}
	/* an unreadable file is settled before any connection is tried */
	t.items[1].path = "/nonexistent/file.dcm";
	assert_int_equal(type->ops->send(s, &t.items[1], 1, res, mono_ms() + 10000), 0);
	assert_int_equal(res[0].status, DEST_FAIL);
	assert_non_null(strstr(res[0].message, "No such file"));
	type->ops->close(s);
	config_unref(cfg);
}

static void
test_dicom_silent_peer_times_out(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct three t;
	struct dest_item_result res[3];
	const struct dest_type *type;
	struct config *cfg;
	char ini[512], msg[256];
	int64_t t0;
	void *s;
	int fd;

	(void)state;
	three_samples(&t);
	/* connections complete in the kernel's backlog; nobody ever answers */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	snprintf(ini, sizeof(ini), "[destination pacs]\ntype = dicom\nhost = 127.0.0.1\nport = %d\n"
	         "ae_title = PACS\ntimeout_s = 1\n", ntohs(a.sin_port));
	s = open_dest(ini, "pacs", &type, &cfg);
	t0 = mono_ms();
	assert_int_equal(type->ops->send(s, t.items, 3, res, mono_ms() + 10000), -ETIMEDOUT);
	assert_true(mono_ms() - t0 < 5000);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(res[i].status, DEST_RETRY);
		assert_non_null(strstr(res[i].message, "no answer to the association request from PACS@"));
		assert_non_null(strstr(res[i].message, "within 1 s"));
	}
	assert_int_equal(type->ops->echo(s, msg, sizeof(msg)), -ETIMEDOUT);
	type->ops->close(s);
	config_unref(cfg);
	close(fd);
}

static void
test_dicom_scu_rejects_bad_parameters(void **state)
{
	struct dicom_scu_params p = { .host = "127.0.0.1", .port = 104, .called_ae = "PACS",
	                              .calling_ae = "ME" };
	struct dicom_scu_item item = { .path = "/x" };
	struct dicom_scu_result r;
	char err[256], host[80];

	(void)state;
	p.port = 0;
	assert_int_equal(dicom_scu_store(&p, &item, 1, &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(r.outcome, DICOM_SCU_RETRY);
	p.port = 104;
	p.called_ae = "THIS-AE-IS-TOO-LONG";
	assert_int_equal(dicom_scu_echo(&p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "AE title"));
	p.called_ae = "PACS";
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	p.host = host;
	assert_int_equal(dicom_scu_echo(&p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
	p.host = "::1";
	assert_int_equal(dicom_scu_echo(&p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "IPv6"));
	/* nothing to send is fine */
	p.host = "127.0.0.1";
	assert_int_equal(dicom_scu_store(&p, NULL, 0, NULL, err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dest_type_find_knows_the_three_types),
		cmocka_unit_test(test_dicom_scu_status_table),
		cmocka_unit_test(test_dicomweb_response_table),
		cmocka_unit_test(test_dicomweb_response_excerpt_is_bounded_and_printable),
		cmocka_unit_test(test_dicomweb_request_on_the_wire),
		cmocka_unit_test(test_dicomweb_token_file_missing_retries_without_a_request),
		cmocka_unit_test(test_dicomweb_missing_file_fails_alone),
		cmocka_unit_test(test_dicomweb_large_response_and_refused_connection_retry),
		cmocka_unit_test(test_folder_writes_study_sop_layout_bit_for_bit),
		cmocka_unit_test(test_folder_rewrite_replaces_atomically),
		cmocka_unit_test(test_folder_refuses_hostile_uids),
		cmocka_unit_test(test_folder_takes_uids_from_the_file_and_fails_missing_source),
		cmocka_unit_test(test_folder_unwritable_path_retries_and_echo_says_why),
		cmocka_unit_test(test_folder_concurrent_writers_of_one_instance),
		cmocka_unit_test(test_dicom_open_and_closed_port),
		cmocka_unit_test(test_dicom_silent_peer_times_out),
		cmocka_unit_test(test_dicom_scu_rejects_bad_parameters),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

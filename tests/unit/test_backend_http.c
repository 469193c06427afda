/*
 * test_backend_http.c - unit tests of the http backend (src/backend_http.c)
 * against a real HTTP server: tests/e2e/servers/http_backend.py, started by
 * each test on a free port of 127.0.0.1 in the mode the test needs. The
 * server computes its answer from the files it receives and logs every
 * request (headers, parts, what it read from the DICOM files) to a JSON
 * lines file, which the tests read to check what the backend sent.
 *
 * Skipped when /usr/bin/python3 (or $TRIAGED_PYTHON) with pydicom is
 * missing. The study is two radiographs of tests/data/samples.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "dicom/dicom.h"
#include "result.h"

#define NINST 2

static const char *python;               /* NULL: skip everything */
static char server_py[1024];
static char sample_dir[1024];

struct fx {
	char dir[256];
	char log[300];
	char out[300];
	int port;
	pid_t server;
	char paths[NINST][1100];
	struct dicom_meta meta[NINST];
	struct result_image images[NINST];
	struct triaged_instance inst[NINST];
	struct triaged_study study;
	char *request;
	struct config *cfg;
	struct backend *b;
	struct triaged_result *res;
	char msg[1024];
	char err[512];
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static int64_t now_ms(void)
{
	return backend_host()->now_ms();
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(s >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

/* Start the server with these extra arguments (NULL-terminated). */
static void start_server(struct fx *f, ...)
{
	const char *argv[32];
	char port[16];
	va_list ap;
	int n = 0, i;

	snprintf(port, sizeof(port), "%d", f->port);
	argv[n++] = python;
	argv[n++] = server_py;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--log";
	argv[n++] = f->log;
	va_start(ap, f);
	while (n < 30 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;

	f->server = fork();
	assert_true(f->server >= 0);
	if (f->server == 0) {
		int fd = open(f->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(python, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		if (port_open(f->port))
			return;
		if (waitpid(f->server, NULL, WNOHANG) == f->server) {
			f->server = 0;
			break;
		}
		usleep(50000);
	}
	print_error("the test server did not start on port %d (see %s)\n", f->port, f->out);
	fail();
}

static void stop_server(struct fx *f)
{
	if (f->server > 0) {
		kill(f->server, SIGTERM);
		waitpid(f->server, NULL, 0);
	}
	f->server = 0;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* The server's log as a JSON array of request records. */
static cJSON *server_log(struct fx *f)
{
	cJSON *arr = cJSON_CreateArray();
	char *text = slurp(f->log), *line, *save = NULL;

	assert_non_null(arr);
	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(line);

		assert_non_null(j);
		cJSON_AddItemToArray(arr, j);
	}
	free(text);
	return arr;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int count_method(const cJSON *log, const char *method)
{
	const cJSON *rec;
	int n = 0;

	cJSON_ArrayForEach(rec, log)
		if (jstr(rec, "method") && strcmp(jstr(rec, "method"), method) == 0)
			n++;
	return n;
}

static const cJSON *first_method(const cJSON *log, const char *method)
{
	const cJSON *rec;

	cJSON_ArrayForEach(rec, log)
		if (jstr(rec, "method") && strcmp(jstr(rec, "method"), method) == 0)
			return rec;
	return NULL;
}

/* Open backend "ai" of type http at the test server's PATH, with EXTRA
 * config lines. */
__attribute__((format(printf, 3, 4)))
static int open_http(struct fx *f, const char *path, const char *fmt, ...)
{
	char text[2048], extra[1500];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(extra, sizeof(extra), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "[backend ai]\ntype = http\nurl = http://127.0.0.1:%d%s\n%s",
	         f->port, path, extra);
	config_unref(f->cfg);
	f->cfg = NULL;
	assert_int_equal(config_load_string(text, "t.conf", &f->cfg, stderr), 0);
	f->b = backend_close(f->b);
	f->err[0] = '\0';
	r = backend_open(f->cfg, "ai", &f->b, f->err, sizeof(f->err));
	if (r != 0)
		print_error("backend_open: %d %s\n", r, f->err);
	return r;
}

static int analyze(struct fx *f)
{
	result_free(f->res);
	f->res = result_new(f->images, NINST);
	assert_non_null(f->res);
	f->msg[0] = '\0';
	return f->b->type->ops->analyze(f->b->state, &f->study, f->res, now_ms() + 60000,
	                                f->msg, sizeof(f->msg));
}

/* The result holds one finding per instance, in the central region. */
static void assert_central_findings(const struct fx *f)
{
	size_t i;

	assert_int_equal(f->res->nfindings, NINST);
	for (i = 0; i < NINST; i++) {
		const struct result_finding *fd = &f->res->findings[i];
		double c = f->meta[i].columns, r = f->meta[i].rows;

		assert_string_equal(fd->sop_uid, f->meta[i].sop_uid);
		assert_true(fd->has_box);
		assert_true(fd->box[0] == c / 4 && fd->box[1] == r / 4);
		assert_true(fd->box[2] == c * 3 / 4 && fd->box[3] == r * 3 / 4);
		assert_true(fd->score > 0 && fd->score < 1);
	}
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                  */

static int group_setup(void **state)
{
	const char *src = getenv("TRIAGED_SOURCE_DIR");
	const char *py = getenv("TRIAGED_PYTHON");
	char cmd[1200], err[256];

	(void)state;
	if (!src) {
		/* __FILE__ is absolute in a CMake build: SOURCE/tests/unit/x.c */
		static char dir[1024];
		char *cut;

		snprintf(dir, sizeof(dir), "%s", __FILE__);
		cut = strstr(dir, "/tests/unit/");
		if (cut)
			*cut = '\0';
		src = dir;
	}
	if (snprintf(server_py, sizeof(server_py), "%s/tests/e2e/servers/http_backend.py",
	             src) >= (int)sizeof(server_py) ||
	    snprintf(sample_dir, sizeof(sample_dir), "%s/tests/data/samples/cr-chest-0001",
	             src) >= (int)sizeof(sample_dir))
		return -1;
	if (!py)
		py = "/usr/bin/python3";
	snprintf(cmd, sizeof(cmd), "'%s' -c 'import pydicom' >/dev/null 2>&1", py);
	if (access(py, X_OK) == 0 && access(server_py, R_OK) == 0 && system(cmd) == 0)
		python = py;
	else
		fprintf(stderr, "test_backend_http: no %s with pydicom, or no %s: skipping\n", py,
		        server_py);
	if (dicom_global_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "dicom_global_init: %s\n", err);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);        /* as the daemon does */
	return 0;
}

static int fx_setup(void **state)
{
	struct fx *f;
	cJSON *req, *arr;
	const char *tmp = getenv("TMPDIR");
	char err[256];
	int i;

	if (!python) {
		*state = NULL;
		return 0;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/test_backend_http.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->log, sizeof(f->log), "%s/requests.jsonl", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/server.out", f->dir);
	f->port = free_port();

	req = cJSON_CreateObject();
	cJSON_AddNumberToObject(req, "job_id", 42);
	cJSON_AddStringToObject(req, "route", "fracture");
	cJSON_AddStringToObject(req, "study_dir", sample_dir);
	arr = cJSON_AddArrayToObject(req, "instances");
	for (i = 0; i < NINST; i++) {
		cJSON *it = cJSON_CreateObject();

		snprintf(f->paths[i], sizeof(f->paths[i]), "%s/1-%d.dcm", sample_dir, i + 1);
		if (dicom_meta_read(f->paths[i], &f->meta[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s\n", f->paths[i], err);
			return -1;
		}
		f->images[i] = (struct result_image){ .sop_uid = f->meta[i].sop_uid,
			.columns = f->meta[i].columns, .rows = f->meta[i].rows, .frames = 1 };
		f->inst[i] = (struct triaged_instance){ .sop_instance_uid = f->meta[i].sop_uid,
			.sop_class_uid = f->meta[i].sop_class_uid, .path = f->paths[i],
			.rows = f->meta[i].rows, .columns = f->meta[i].columns, .frames = 1 };
		cJSON_AddStringToObject(it, "sop_instance_uid", f->meta[i].sop_uid);
		cJSON_AddStringToObject(it, "path", f->paths[i]);
		cJSON_AddNumberToObject(it, "rows", f->meta[i].rows);
		cJSON_AddNumberToObject(it, "columns", f->meta[i].columns);
		cJSON_AddItemToArray(arr, it);
	}
	f->request = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	f->study = (struct triaged_study){ .job_id = 42, .route = "fracture",
		.study_dir = sample_dir, .ninstances = NINST, .instances = f->inst,
		.request_json = f->request };
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[600];

	if (!f)
		return 0;
	stop_server(f);
	f->b = backend_close(f->b);
	config_unref(f->cfg);
	result_free(f->res);
	cJSON_free(f->request);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", f->dir);
	free(f);
	return 0;
}

#define NEED_SERVER(f) do { if (!(f)) { skip(); return; } } while (0)

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void test_http_direct(void **state)
{
	struct fx *f = *state;
	const cJSON *post, *parts, *part, *req;
	cJSON *log;
	int files = 0, i = 0;

	NEED_SERVER(f);
	start_server(f, "--mode", "direct", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_OK);
	assert_central_findings(f);

	/* what went over the wire */
	log = server_log(f);
	assert_int_equal(count_method(log, "POST"), 1);
	assert_int_equal(count_method(log, "GET"), 0);
	post = first_method(log, "POST");
	assert_string_equal(jstr(post, "path"), "/v1/jobs");
	assert_null(jstr(post, "authorization"));
	assert_true(strncmp(jstr(post, "content_type"), "multipart/form-data", 19) == 0);
	assert_true(strncmp(jstr(post, "user_agent"), "triaged/", 8) == 0);
	req = cJSON_GetObjectItemCaseSensitive(post, "request");
	assert_true(jnum(req, "job_id") == 42);
	assert_string_equal(jstr(req, "route"), "fracture");
	parts = cJSON_GetObjectItemCaseSensitive(post, "parts");
	cJSON_ArrayForEach(part, parts) {
		if (strcmp(jstr(part, "name"), "request") == 0) {
			assert_string_equal(jstr(part, "content_type"), "application/json");
			assert_true(jnum(part, "size") == (double)strlen(f->request));
			continue;
		}
		struct stat st;
		char fname[100];

		assert_string_equal(jstr(part, "name"), "file");
		assert_string_equal(jstr(part, "content_type"), "application/dicom");
		assert_int_equal(stat(f->paths[i], &st), 0);
		assert_true(jnum(part, "size") == (double)st.st_size);
		assert_string_equal(jstr(part, "sop_instance_uid"), f->meta[i].sop_uid);
		snprintf(fname, sizeof(fname), "%s.dcm", f->meta[i].sop_uid);
		assert_string_equal(jstr(part, "filename"), fname);
		assert_true(jnum(part, "rows") == f->meta[i].rows);
		files++;
		i++;
	}
	assert_int_equal(files, NINST);
	cJSON_Delete(log);
}

static void test_http_poll_location(void **state)
{
	struct fx *f = *state;
	int64_t t0;
	cJSON *log;

	NEED_SERVER(f);
	start_server(f, "--mode", "poll", "--polls", "2", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "poll_interval_s = 1\n"), 0);
	t0 = now_ms();
	assert_int_equal(analyze(f), TRIAGED_OK);
	assert_true(now_ms() - t0 >= 2900);             /* 3 polls, 1 s apart */
	assert_central_findings(f);
	log = server_log(f);
	assert_int_equal(count_method(log, "POST"), 1);
	assert_int_equal(count_method(log, "GET"), 3);
	/* Location "/jobs/ID" resolved against the URL */
	assert_true(strncmp(jstr(first_method(log, "GET"), "path"), "/jobs/", 6) == 0);
	cJSON_Delete(log);
}

static void test_http_poll_status_url(void **state)
{
	struct fx *f = *state;
	cJSON *log;

	NEED_SERVER(f);
	start_server(f, "--mode", "poll-body", "--polls", "1", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "poll_interval_s = 1\n"), 0);
	assert_int_equal(analyze(f), TRIAGED_OK);
	assert_central_findings(f);
	log = server_log(f);
	assert_int_equal(count_method(log, "GET"), 2);
	cJSON_Delete(log);
}

static void test_http_poll_wrapped_result(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "poll-wrapped", "--polls", "0", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "poll_interval_s = 1\n"), 0);
	assert_int_equal(analyze(f), TRIAGED_OK);
	assert_central_findings(f);
}

static void test_http_poll_until_deadline(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	NEED_SERVER(f);
	start_server(f, "--mode", "poll", "--polls", "1000", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "poll_interval_s = 1\ntimeout_s = 3\n"), 0);
	t0 = now_ms();
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_true(now_ms() - t0 < 4500);
	assert_non_null(strstr(f->msg, "still running"));
}

static void test_http_500_is_retry(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "error500", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_string_equal(f->msg, "POST: HTTP 500: model crashed");
}

static void test_http_503_is_retry(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "error503", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_string_equal(f->msg, "POST: HTTP 503: overloaded");
}

static void test_http_400_is_fail(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "error400", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_string_equal(f->msg, "POST: HTTP 400: unsupported SOP class");
}

static void test_http_garbage_is_retry(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "garbage", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_true(strncmp(f->msg, "answer is not JSON (HTTP 200, text/html)", 40) == 0);
	assert_non_null(strstr(f->msg, "proxy error"));
	assert_null(strchr(f->msg, '\001'));
}

static void test_http_oversized_is_fail(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "oversized", "--oversize-kb", "2048", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "max_response_kb = 64\n"), 0);
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "answer larger than max_response_kb (64 KiB)"));
}

static void test_http_401_without_token_is_fail(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "direct", "--token", "s3cr3t-token", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_string_equal(f->msg, "POST: HTTP 401: invalid or missing token");
}

static void test_http_token_sent(void **state)
{
	struct fx *f = *state;
	char tok[400];
	const cJSON *rec;
	cJSON *log;
	int n = 0;

	NEED_SERVER(f);
	snprintf(tok, sizeof(tok), "%s/token", f->dir);
	write_file(tok, "  s3cr3t-token\n\n");
	start_server(f, "--mode", "poll", "--polls", "1", "--token", "s3cr3t-token", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "token_file = %s\npoll_interval_s = 1\n", tok), 0);
	assert_int_equal(analyze(f), TRIAGED_OK);
	assert_central_findings(f);
	log = server_log(f);
	cJSON_ArrayForEach(rec, log) {
		assert_string_equal(jstr(rec, "authorization"), "Bearer s3cr3t-token");
		n++;
	}
	assert_int_equal(n, 3);             /* POST and both GETs */
	cJSON_Delete(log);

	/* rotated: read again at the next analysis */
	write_file(tok, "wrong-token");
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "HTTP 401"));
	assert_null(strstr(f->msg, "wrong-token"));
}

static void test_http_token_file_problems(void **state)
{
	struct fx *f = *state;
	char tok[400];

	NEED_SERVER(f);
	snprintf(tok, sizeof(tok), "%s/token", f->dir);
	start_server(f, "--mode", "direct", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "token_file = %s\n", tok), 0);
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "cannot read token_file"));
	write_file(tok, " \n");
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "is empty"));
	write_file(tok, "abc\r\nX-Injected: 1");
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "cannot go in an HTTP header"));
}

/* A status URL on another origin never gets the token. */
static void test_http_token_not_sent_to_other_origin(void **state)
{
	struct fx *f = *state;
	char tok[400], text[1200];
	const cJSON *rec;
	cJSON *log;

	NEED_SERVER(f);
	snprintf(tok, sizeof(tok), "%s/token", f->dir);
	write_file(tok, "s3cr3t-token");
	start_server(f, "--mode", "poll-body", "--polls", "0", "--token", "s3cr3t-token", NULL);
	/* url names "localhost", the status_url "127.0.0.1": another origin */
	snprintf(text, sizeof(text), "[backend ai]\ntype = http\nurl = http://localhost:%d/v1/jobs\n"
	         "token_file = %s\npoll_interval_s = 1\n", f->port, tok);
	assert_int_equal(config_load_string(text, "t.conf", &f->cfg, stderr), 0);
	assert_int_equal(backend_open(f->cfg, "ai", &f->b, f->err, sizeof(f->err)), 0);
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "HTTP 401"));
	log = server_log(f);
	cJSON_ArrayForEach(rec, log) {
		if (strcmp(jstr(rec, "method"), "GET") == 0)
			assert_null(jstr(rec, "authorization"));
		else
			assert_string_equal(jstr(rec, "authorization"), "Bearer s3cr3t-token");
	}
	assert_int_equal(count_method(log, "GET"), 1);
	cJSON_Delete(log);
}

static void test_http_slow_is_retry(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	NEED_SERVER(f);
	start_server(f, "--mode", "slow", "--sleep", "10", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "timeout_s = 1\n"), 0);
	t0 = now_ms();
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_true(now_ms() - t0 < 3000);
	assert_true(strncmp(f->msg, "no answer: timed out after 1 s", 30) == 0);
}

static void test_http_connection_refused_is_retry(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	/* nothing listens on f->port */
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_non_null(strstr(f->msg, "POST: "));
	assert_non_null(strstr(f->msg, "onnect"));
}

static void test_http_unknown_uid_is_fail(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "unknown-uid", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "unknown SOP Instance UID"));
}

static void test_http_retryable_error_json(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	start_server(f, "--mode", "retryable", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(analyze(f), TRIAGED_RETRY);
	assert_non_null(strstr(f->msg, "busy, try later"));
}

static void test_http_send_png(void **state)
{
	struct fx *f = *state;
	const cJSON *post, *part;
	cJSON *log;
	int files = 0;

	NEED_SERVER(f);
	start_server(f, "--mode", "direct", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "send = png\n"), 0);
	assert_int_equal(analyze(f), TRIAGED_OK);
	assert_central_findings(f);        /* boxes in source pixels */
	log = server_log(f);
	post = first_method(log, "POST");
	cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(post, "parts")) {
		if (strcmp(jstr(part, "name"), "file") != 0)
			continue;
		assert_string_equal(jstr(part, "content_type"), "image/png");
		assert_true(jnum(part, "png_color_type") == 0);     /* grayscale */
		assert_true(jnum(part, "png_bit_depth") == 8);
		assert_true(jnum(part, "png_width") == f->meta[files].columns);
		assert_true(jnum(part, "png_height") == f->meta[files].rows);
		assert_string_equal(jstr(part, "sop_instance_uid"), f->meta[files].sop_uid);
		files++;
	}
	assert_int_equal(files, NINST);
	cJSON_Delete(log);
}

static void test_http_ready(void **state)
{
	struct fx *f = *state;
	char text[600];

	NEED_SERVER(f);
	start_server(f, "--mode", "direct", NULL);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", ""), 0);
	assert_int_equal(f->b->type->ops->ready(f->b->state, f->err, sizeof(f->err)), 0);

	snprintf(text, sizeof(text), "health_url = http://127.0.0.1:%d/health\n", f->port);
	assert_int_equal(open_http(f, "/v1/jobs", "%s", text), 0);
	assert_int_equal(f->b->type->ops->ready(f->b->state, f->err, sizeof(f->err)), 0);
	stop_server(f);
	start_server(f, "--mode", "error503", NULL);
	assert_true(f->b->type->ops->ready(f->b->state, f->err, sizeof(f->err)) < 0);
	assert_string_equal(f->err, "health_url answered HTTP 503");
	stop_server(f);
	assert_true(f->b->type->ops->ready(f->b->state, f->err, sizeof(f->err)) < 0);
}

static void test_http_open_checks(void **state)
{
	struct fx *f = *state;

	NEED_SERVER(f);
	assert_int_equal(open_http(f, "/v1/jobs", "ca_file = %s/no-such-ca.pem\n", f->dir),
	                 -ENOENT);
	assert_non_null(strstr(f->err, "ca_file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_http_direct),
		T(test_http_poll_location),
		T(test_http_poll_status_url),
		T(test_http_poll_wrapped_result),
		T(test_http_poll_until_deadline),
		T(test_http_500_is_retry),
		T(test_http_503_is_retry),
		T(test_http_400_is_fail),
		T(test_http_garbage_is_retry),
		T(test_http_oversized_is_fail),
		T(test_http_401_without_token_is_fail),
		T(test_http_token_sent),
		T(test_http_token_file_problems),
		T(test_http_token_not_sent_to_other_origin),
		T(test_http_slow_is_retry),
		T(test_http_connection_refused_is_retry),
		T(test_http_unknown_uid_is_fail),
		T(test_http_retryable_error_json),
		T(test_http_send_png),
		T(test_http_ready),
		T(test_http_open_checks),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}

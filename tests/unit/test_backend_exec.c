/*
 * test_backend_exec.c - unit tests of the exec backend (src/backend_exec.c)
 * and of its command splitter (src/argv_split.c).
 *
 * The splitter is table-driven, and every row is also fed to the config
 * parser, so the splitter and config.c's check_command() cannot drift
 * apart. The backend runs small /bin/sh scripts that each test writes into
 * a temporary directory (they are execve'd, never run through a shell by
 * the backend), opened through the real host (backend_open on a config
 * parsed from text) with the real result builder.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "argv_split.h"
#include "backend.h"
#include "config.h"
#include "result.h"

#define SOP_UID   "1.2.826.0.1.3680043.10.1.1"
#define STUDY_UID "1.2.826.0.1.3680043.10.1"

/* ------------------------------------------------------------------------ */
/* argv splitting                                                           */

struct split_case {
	const char *line;
	const char *words[8];   /* NULL-terminated; words[0] NULL: an error */
	const char *error;      /* expected error text */
};

static const struct split_case split_cases[] = {
	{ "/bin/prog", { "/bin/prog" }, NULL },
	{ "  a   b\tc  ", { "a", "b", "c" }, NULL },
	{ "a 'b c' d", { "a", "b c", "d" }, NULL },
	{ "'it''s'", { "its" }, NULL },
	{ "\"a b\" c\\ d", { "a b", "c d" }, NULL },
	{ "\"say \\\"hi\\\"\"", { "say \"hi\"" }, NULL },
	{ "\"back\\\\slash\"", { "back\\slash" }, NULL },
	{ "\"\\x\"", { "x" }, NULL },
	{ "'single \\ keeps' x", { "single \\ keeps", "x" }, NULL },
	{ "--opt='x y'z", { "--opt=x yz" }, NULL },
	{ "p '' \"\"", { "p", "", "" }, NULL },
	{ "a\\\\b", { "a\\b" }, NULL },
	{ "p $HOME *.dcm | > ~ `x`", { "p", "$HOME", "*.dcm", "|", ">", "~", "`x`" }, NULL },
	{ "p \"mixed 'inner' quotes\"", { "p", "mixed 'inner' quotes" }, NULL },
	{ "p 'd\"q'", { "p", "d\"q" }, NULL },
	{ "/usr/lib/triaged/backends/example --model 'frac ture' \"a b\" c\\ d",
	  { "/usr/lib/triaged/backends/example", "--model", "frac ture", "a b", "c d" }, NULL },
	{ "", { NULL }, "names no program" },
	{ "   ", { NULL }, "names no program" },
	{ "a 'b", { NULL }, "unterminated ' quote" },
	{ "a \"b", { NULL }, "unterminated \" quote" },
	{ "a \\", { NULL }, "ends with a backslash" },
	{ "a \"b\\\"", { NULL }, "unterminated \" quote" },
};

static void test_argv_split_table(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		const struct split_case *c = &split_cases[i];
		char **argv = NULL, err[128] = "";
		size_t argc = 99;
		int r = argv_split(c->line, &argv, &argc, err, sizeof(err));

		if (!c->words[0]) {
			if (r != -EINVAL || strcmp(err, c->error) != 0) {
				print_error("case %zu [%s]: expected error '%s', got r=%d '%s'\n",
				            i, c->line, c->error, r, err);
				fail();
			}
			assert_null(argv);
			continue;
		}
		if (r != 0) {
			print_error("case %zu [%s]: unexpected error %d '%s'\n", i, c->line, r, err);
			fail();
		}
		for (j = 0; c->words[j]; j++) {
			if (j >= argc || strcmp(argv[j], c->words[j]) != 0) {
				print_error("case %zu [%s]: word %zu is [%s], expected [%s]\n", i,
				            c->line, j, j < argc ? argv[j] : "(none)", c->words[j]);
				fail();
			}
		}
		assert_int_equal(argc, j);
		assert_null(argv[argc]);
		argv_free(argv);
	}
	assert_null(argv_free(NULL));
}

/* Every row that splits passes config.c's check, every error row fails it. */
static void test_argv_split_agrees_with_config(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
		const struct split_case *c = &split_cases[i];
		struct config *cfg = NULL;
		char *text = NULL;
		int r;

		assert_true(asprintf(&text, "[backend b]\ntype = exec\ncommand = %s\n", c->line) > 0);
		r = config_load_string(text, "t.conf", &cfg, NULL);
		if ((r == 0) != (c->words[0] != NULL)) {
			print_error("case %zu [%s]: config says %d, the splitter disagrees\n", i,
			            c->line, r);
			fail();
		}
		config_unref(cfg);
		free(text);
	}
}

static void test_argv_split_limits(void **state)
{
	char *line, **argv = NULL, err[128];
	size_t i;

	(void)state;
	line = malloc(ARGV_SPLIT_MAX_WORDS * 2 + 4);
	assert_non_null(line);
	for (i = 0; i <= ARGV_SPLIT_MAX_WORDS; i++) {
		line[2 * i] = 'w';
		line[2 * i + 1] = ' ';
	}
	line[2 * i] = '\0';
	assert_int_equal(argv_split(line, &argv, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "more than 256 words");
	assert_null(argv);
	free(line);
	assert_int_equal(argv_split(NULL, &argv, NULL, err, sizeof(err)), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Fixture: a temp dir with a study folder, scripts, a config              */

struct fx {
	char dir[256];
	char study_dir[300];
	char dcm[400];
	char request[4096];
	struct result_image image;
	struct triaged_instance inst;
	struct triaged_study study;
	struct config *cfg;
	struct backend *b;
	struct triaged_result *res;
	char msg[1024];
	char err[512];
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	FILE *fp;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/test_backend_exec.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->study_dir, sizeof(f->study_dir), "%s/study", f->dir);
	if (mkdir(f->study_dir, 0755) < 0)
		return -1;
	snprintf(f->dcm, sizeof(f->dcm), "%s/%s.dcm", f->study_dir, SOP_UID);
	fp = fopen(f->dcm, "w");
	if (!fp)
		return -1;
	fputs("not really DICOM", fp);
	fclose(fp);
	snprintf(f->request, sizeof(f->request),
	         "{\"job_id\":42,\"route\":\"r\",\"study_uid\":\"" STUDY_UID "\","
	         "\"study_dir\":\"%s\",\"instances\":[{\"sop_instance_uid\":\"" SOP_UID "\","
	         "\"path\":\"%s\",\"rows\":416,\"columns\":512}]}", f->study_dir, f->dcm);
	f->image = (struct result_image){ .sop_uid = SOP_UID, .columns = 512, .rows = 416,
	                                  .frames = 1 };
	f->inst = (struct triaged_instance){ .sop_instance_uid = SOP_UID, .path = f->dcm,
	                                     .rows = 416, .columns = 512, .frames = 1 };
	f->study = (struct triaged_study){
		.job_id = 42, .route = "r", .study_uid = STUDY_UID, .study_dir = f->study_dir,
		.ninstances = 1, .instances = &f->inst, .request_json = f->request,
	};
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[600];

	if (!f)
		return 0;
	f->b = backend_close(f->b);
	config_unref(f->cfg);
	result_free(f->res);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", f->dir);
	free(f);
	return 0;
}

/* Write an executable /bin/sh script NAME into the fixture dir; BODY is a
 * printf format (the script's lines after the #! line). */
__attribute__((format(printf, 3, 4)))
static const char *script(struct fx *f, const char *name, const char *fmt, ...)
{
	static char path[512];
	va_list ap;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\n", fp);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fclose(fp);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

/* A result naming the fixture's instance, as a script prints it. */
#define OK_RESULT \
	"{\"status\":\"ok\",\"algorithm\":{\"name\":\"t\",\"version\":\"1\"}," \
	"\"study\":{\"outcome\":\"positive\",\"score\":0.9}," \
	"\"findings\":[{\"label\":\"fracture\",\"score\":0.9," \
	"\"sop_instance_uid\":\"" SOP_UID "\",\"frame\":1,\"box\":[10,20,110,220]}]}"

/* Open backend "x" from config lines EXTRA (after type = exec). */
static int open_backend(struct fx *f, const char *extra)
{
	char text[2048];
	int r;

	snprintf(text, sizeof(text), "[backend x]\ntype = exec\n%s", extra);
	config_unref(f->cfg);
	f->cfg = NULL;
	r = config_load_string(text, "t.conf", &f->cfg, stderr);
	assert_int_equal(r, 0);
	f->b = backend_close(f->b);
	f->err[0] = '\0';
	return backend_open(f->cfg, "x", &f->b, f->err, sizeof(f->err));
}

static void open_ok(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void open_ok(struct fx *f, const char *fmt, ...)
{
	char extra[1500];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(extra, sizeof(extra), fmt, ap);
	va_end(ap);
	r = open_backend(f, extra);
	if (r != 0)
		print_error("backend_open: %d %s\n", r, f->err);
	assert_int_equal(r, 0);
}

static int analyze(struct fx *f, int64_t deadline_ms)
{
	result_free(f->res);
	f->res = result_new(&f->image, 1);
	assert_non_null(f->res);
	f->msg[0] = '\0';
	if (deadline_ms == 0)
		deadline_ms = backend_host()->now_ms() + 60000;
	return f->b->type->ops->analyze(f->b->state, &f->study, f->res, deadline_ms,
	                                f->msg, sizeof(f->msg));
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

static int64_t now_ms(void)
{
	return backend_host()->now_ms();
}

/* Does process group PGID still have a live (non-zombie) member? Zombies
 * count as gone: in a container whose init does not reap orphans, a killed
 * grandchild stays a zombie forever. */
static bool group_alive(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool alive = false;

	assert_non_null(d);
	while (!alive && (e = readdir(d)) != NULL) {
		char path[300], buf[512], *p, state;
		long pg;
		FILE *fp;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fgets(buf, sizeof(buf), fp) && (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %c %*d %ld", &state, &pg) == 2 && pg == pgid &&
		    state != 'Z' && state != 'X')
			alive = true;
		fclose(fp);
	}
	closedir(d);
	return alive;
}

/* The process group PGID has no process left (waits up to 2 s). */
static void assert_group_gone(pid_t pgid)
{
	int i;

	for (i = 0; i < 200; i++) {
		if (!group_alive(pgid))
			return;
		usleep(10000);
	}
	print_error("process group %d still has processes\n", (int)pgid);
	fail();
}

static pid_t read_pid(const char *path)
{
	char *s = slurp(path);
	pid_t pid;

	assert_non_null(s);
	pid = (pid_t)atoi(s);
	free(s);
	assert_true(pid > 1);
	return pid;
}

/* ------------------------------------------------------------------------ */
/* open                                                                     */

static void test_exec_open_missing_program(void **state)
{
	struct fx *f = *state;
	char extra[600];

	snprintf(extra, sizeof(extra), "command = %s/no-such-program --x\n", f->dir);
	assert_int_equal(open_backend(f, extra), -ENOENT);
	assert_non_null(strstr(f->err, "no-such-program"));
	assert_non_null(strstr(f->err, "No such file or directory"));
	assert_null(f->b);
}

static void test_exec_open_not_executable(void **state)
{
	struct fx *f = *state;
	char extra[600];
	const char *p = script(f, "noexec.sh", "exit 0\n");

	assert_int_equal(chmod(p, 0644), 0);
	snprintf(extra, sizeof(extra), "command = %s\n", p);
	assert_int_equal(open_backend(f, extra), -EACCES);
	assert_non_null(strstr(f->err, "is not executable"));

	snprintf(extra, sizeof(extra), "command = %s\n", f->study_dir);
	assert_int_equal(open_backend(f, extra), -EACCES);
	assert_non_null(strstr(f->err, "is not a regular file"));

	assert_int_equal(open_backend(f, "command = no-such-program-xyz\n"), -ENOENT);
	assert_non_null(strstr(f->err, "not found in /usr/local/bin:/usr/bin:/bin"));
}

static void test_exec_open_searches_path(void **state)
{
	struct fx *f = *state;

	open_ok(f, "command = sh -c 'exit 0'\n");
	assert_non_null(f->b->state);
}

/* ------------------------------------------------------------------------ */
/* analyze                                                                  */

static void test_exec_ok_result(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "ok.sh", "cat >/dev/null\necho '%s'\n", OK_RESULT);

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	assert_int_equal(f->res->nfindings, 1);
	assert_string_equal(f->res->findings[0].sop_uid, SOP_UID);
	assert_true(f->res->findings[0].box[2] == 110.0);
	assert_int_equal(f->res->outcome, OUTCOME_POSITIVE);
}

static void test_exec_stdin_intact_and_large(void **state)
{
	struct fx *f = *state;
	char copy[400], *got, *big;
	size_t n = 600 * 1024, i;
	const char *p;

	/* a request larger than any pipe buffer, written while the script
	 * first floods stderr (200 KiB) before reading: nobody may block */
	big = malloc(n + 64);
	assert_non_null(big);
	i = (size_t)snprintf(big, n + 64, "{\"pad\":\"");
	for (; i < n; i++)
		big[i] = (char)('a' + i % 26);
	snprintf(big + i, 64, "\",\"instances\":[]}");
	f->study.request_json = big;
	snprintf(copy, sizeof(copy), "%s/stdin.copy", f->dir);
	p = script(f, "copy.sh",
	           "head -c 204800 /dev/zero | tr '\\0' e >&2\n"
	           "cat > '%s'\necho '%s'\n", copy, OK_RESULT);
	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	got = slurp(copy);
	assert_non_null(got);
	assert_int_equal(strlen(got), strlen(big));
	assert_true(strcmp(got, big) == 0);
	free(got);
	free(big);
	f->study.request_json = f->request;
}

static void test_exec_program_ignoring_stdin(void **state)
{
	struct fx *f = *state;
	char *big;
	size_t n = 2 * 1024 * 1024;
	const char *p = script(f, "nostdin.sh", "exec 0<&-\necho '%s'\n", OK_RESULT);

	/* the program closes stdin at once: our writes hit EPIPE, and neither
	 * SIGPIPE nor a blocked write may hurt the caller */
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[n] = '\0';
	f->study.request_json = big;
	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	f->study.request_json = f->request;
	free(big);
}

static void test_exec_argv_and_study_dir_last(void **state)
{
	struct fx *f = *state;
	char args[400], *got, expect[1024];
	const char *p;

	snprintf(args, sizeof(args), "%s/args", f->dir);
	p = script(f, "args.sh", "for a in \"$@\"; do printf '[%%s]\\n' \"$a\"; done > '%s'\n"
	           "echo '%s'\n", args, OK_RESULT);
	open_ok(f, "command = %s --model 'frac ture' \"a b\" c\\ d '$HOME'\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	got = slurp(args);
	snprintf(expect, sizeof(expect), "[--model]\n[frac ture]\n[a b]\n[c d]\n[$HOME]\n[%s]\n",
	         f->study_dir);
	assert_string_equal(got, expect);
	free(got);
}

static void test_exec_environment_minimal(void **state)
{
	struct fx *f = *state;
	char envf[400], cwdf[400], fdf[400], expect[600], *got, *line, *save = NULL;
	int leaked, seen = 0;
	const char *p;

	snprintf(envf, sizeof(envf), "%s/env", f->dir);
	snprintf(cwdf, sizeof(cwdf), "%s/cwd", f->dir);
	snprintf(fdf, sizeof(fdf), "%s/fds", f->dir);
	p = script(f, "env.sh",
	           "env > '%s'\npwd > '%s'\n"
	           "if [ -e /proc/$$/fd/77 ]; then echo leaked; else echo clean; fi > '%s'\n"
	           "echo '%s'\n", envf, cwdf, fdf, OK_RESULT);
	/* things the child must not see: our environment, an fd without CLOEXEC */
	setenv("TRIAGED_TEST_SECRET", "do-not-pass", 1);
	leaked = open("/dev/null", O_RDONLY);
	assert_true(leaked >= 0);
	assert_int_equal(dup2(leaked, 77), 77);
	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	close(77);
	close(leaked);
	unsetenv("TRIAGED_TEST_SECRET");

	got = slurp(envf);
	assert_non_null(got);
	for (line = strtok_r(got, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "PATH=/usr/local/bin:/usr/bin:/bin") == 0 ||
		    strcmp(line, "LANG=C.UTF-8") == 0 || strcmp(line, "HOME=/nonexistent") == 0 ||
		    strcmp(line, "TRIAGED_JOB_ID=42") == 0) {
			seen++;
			continue;
		}
		snprintf(expect, sizeof(expect), "TRIAGED_STUDY_DIR=%s", f->study_dir);
		if (strcmp(line, expect) == 0) {
			seen++;
			continue;
		}
		/* what /bin/sh itself exports */
		if (strncmp(line, "PWD=", 4) == 0 || strncmp(line, "OLDPWD=", 7) == 0 ||
		    strncmp(line, "SHLVL=", 6) == 0 || strncmp(line, "_=", 2) == 0)
			continue;
		print_error("unexpected environment variable: %s\n", line);
		fail();
	}
	assert_int_equal(seen, 5);
	free(got);
	got = slurp(cwdf);
	assert_string_equal(got, "/\n");
	free(got);
	got = slurp(fdf);
	assert_string_equal(got, "clean\n");
	free(got);
}

static void test_exec_exit_75_is_retry(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "busy.sh", "echo 'GPU busy, later' >&2\nexit 75\n");

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_RETRY);
	assert_non_null(strstr(f->msg, "status 75"));
	assert_non_null(strstr(f->msg, "GPU busy, later"));
}

static void test_exec_exit_3_is_fail_with_stderr_tail(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "fail.sh",
	                       "echo 'FIRST LINE' >&2\n"
	                       "i=0; while [ $i -lt 300 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done\n"
	                       "printf 'model: cannot load weights\\n\\001' >&2\n"
	                       "exit 3\n");

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "exited with status 3"));
	assert_non_null(strstr(f->msg, "model: cannot load weights"));
	assert_null(strstr(f->msg, "FIRST LINE"));     /* only the tail is kept */
	assert_null(strchr(f->msg, '\n'));
	assert_null(strchr(f->msg, '\001'));
	assert_true(strlen(f->msg) < sizeof(f->msg));
}

static void test_exec_signal_is_fail(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "segv.sh", "kill -SEGV $$\n");

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "killed by signal 11 (SIGSEGV)"));
}

static void test_exec_timeout_kills_group(void **state)
{
	struct fx *f = *state;
	char pidf[400];
	int64_t t0;
	const char *p;

	snprintf(pidf, sizeof(pidf), "%s/pid", f->dir);
	/* sh and its sleep child: the whole group must go */
	p = script(f, "slow.sh", "echo $$ > '%s'\nsleep 30\necho '%s'\n", pidf, OK_RESULT);
	open_ok(f, "command = %s\ntimeout_s = 1\n", p);
	t0 = now_ms();
	assert_int_equal(analyze(f, 0), TRIAGED_RETRY);
	assert_true(now_ms() - t0 < 4000);
	assert_true(strncmp(f->msg, "timed out after 1 s", 19) == 0);
	assert_group_gone(read_pid(pidf));
}

static void test_exec_timeout_sigkill_after_grace(void **state)
{
	struct fx *f = *state;
	char pidf[400];
	int64_t t0, took;
	const char *p;

	snprintf(pidf, sizeof(pidf), "%s/pid", f->dir);
	p = script(f, "stubborn.sh", "trap '' TERM\necho $$ > '%s'\nsleep 30\n", pidf);
	open_ok(f, "command = %s\ntimeout_s = 1\n", p);
	t0 = now_ms();
	assert_int_equal(analyze(f, 0), TRIAGED_RETRY);
	took = now_ms() - t0;
	assert_true(took >= 2900 && took < 6000);       /* 1 s + 2 s grace */
	assert_true(strncmp(f->msg, "timed out after 1 s", 19) == 0);
	assert_group_gone(read_pid(pidf));
}

static void test_exec_host_deadline_wins(void **state)
{
	struct fx *f = *state;
	int64_t t0;
	const char *p = script(f, "slow2.sh", "sleep 30\n");

	open_ok(f, "command = %s\ntimeout_s = 300\n", p);
	t0 = now_ms();
	assert_int_equal(analyze(f, t0 + 1000), TRIAGED_RETRY);
	assert_true(now_ms() - t0 < 4000);
	assert_true(strncmp(f->msg, "timed out after 1 s", 19) == 0);
}

static void test_exec_output_limit(void **state)
{
	struct fx *f = *state;
	char pidf[400];
	const char *p;

	snprintf(pidf, sizeof(pidf), "%s/pid", f->dir);
	p = script(f, "flood.sh", "echo $$ > '%s'\nexec yes\n", pidf);
	open_ok(f, "command = %s\nmax_output_kb = 1\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "output larger than max_output_kb (1 KiB)"));
	assert_group_gone(read_pid(pidf));

	/* exactly at the limit is fine: 1024 bytes of a valid result */
	p = script(f, "exact.sh", "printf '%%-1024s' '%s'\n", OK_RESULT);
	open_ok(f, "command = %s\nmax_output_kb = 1\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
}

static void test_exec_background_leftover_is_killed(void **state)
{
	struct fx *f = *state;
	char pidf[400];
	int64_t t0;
	const char *p;

	snprintf(pidf, sizeof(pidf), "%s/bgpid", f->dir);
	/* a background process keeps stdout open after the script exits */
	p = script(f, "bg.sh", "sleep 30 &\necho $$ > '%s'\necho '%s'\nexit 0\n", pidf, OK_RESULT);
	open_ok(f, "command = %s\n", p);
	t0 = now_ms();
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	assert_true(now_ms() - t0 < 4000);
	/* "sleep 30 &" stays in the script's process group */
	assert_group_gone(read_pid(pidf));
}

static void test_exec_empty_output_is_fail(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "empty.sh", "echo 'nothing to say' >&2\nexit 0\n");

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "without a result on stdout"));
	assert_non_null(strstr(f->msg, "nothing to say"));
}

static void test_exec_error_json_retryable(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "errjson.sh",
	                       "echo '{\"status\":\"error\",\"retryable\":true,\"message\":\"licence server down\"}'\n");

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_RETRY);
	assert_non_null(strstr(f->msg, "licence server down"));
}

static void test_exec_invalid_results_fail(void **state)
{
	struct fx *f = *state;
	const char *p = script(f, "garbage.sh", "echo 'this is not json'\n");

	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_FAIL);

	p = script(f, "unknown.sh",
	           "echo '{\"status\":\"ok\",\"study\":{\"outcome\":\"negative\"},"
	           "\"findings\":[{\"label\":\"x\",\"score\":0.5,\"sop_instance_uid\":\"1.2.3\"}]}'\n");
	open_ok(f, "command = %s\n", p);
	assert_int_equal(analyze(f, 0), TRIAGED_FAIL);
	assert_non_null(strstr(f->msg, "unknown SOP Instance UID"));
}

/* The shipped example backend (src/backends/example-backend), when python3
 * is there: one finding per instance, in the central region. */
static void test_exec_example_backend(void **state)
{
	struct fx *f = *state;
	const char *src = getenv("TRIAGED_SOURCE_DIR");
	char prog[600];

	if (!src || access("/usr/bin/python3", X_OK) < 0) {
		skip();
		return;
	}
	snprintf(prog, sizeof(prog), "%s/src/backends/example-backend", src);
	open_ok(f, "command = %s --model unit --threshold 0.2\n", prog);
	assert_int_equal(analyze(f, 0), TRIAGED_OK);
	assert_int_equal(f->res->nfindings, 1);
	assert_string_equal(f->res->findings[0].sop_uid, SOP_UID);
	assert_true(f->res->findings[0].box[0] == 128.0 && f->res->findings[0].box[1] == 104.0);
	assert_true(f->res->findings[0].box[2] == 384.0 && f->res->findings[0].box[3] == 312.0);
	/* "not really DICOM": mean byte 0x5e.. / 255 > 0.2 */
	assert_int_equal(f->res->outcome, OUTCOME_POSITIVE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_split_table),
		cmocka_unit_test(test_argv_split_agrees_with_config),
		cmocka_unit_test(test_argv_split_limits),
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_exec_open_missing_program),
		T(test_exec_open_not_executable),
		T(test_exec_open_searches_path),
		T(test_exec_ok_result),
		T(test_exec_stdin_intact_and_large),
		T(test_exec_program_ignoring_stdin),
		T(test_exec_argv_and_study_dir_last),
		T(test_exec_environment_minimal),
		T(test_exec_exit_75_is_retry),
		T(test_exec_exit_3_is_fail_with_stderr_tail),
		T(test_exec_signal_is_fail),
		T(test_exec_timeout_kills_group),
		T(test_exec_timeout_sigkill_after_grace),
		T(test_exec_host_deadline_wins),
		T(test_exec_output_limit),
		T(test_exec_background_leftover_is_killed),
		T(test_exec_empty_output_is_fail),
		T(test_exec_error_json_retryable),
		T(test_exec_invalid_results_fail),
		T(test_exec_example_backend),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

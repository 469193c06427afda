/*
 * backend_exec.c - the "exec" backend: one program run per job.
 *
 * DESIGN
 *
 * open() splits `command` like a shell would (argv_split.c, never through
 * a shell), resolves the program (a name without '/' is looked up in the
 * child's PATH, a relative path is made absolute) and checks it is an
 * executable regular file: triaged --check-config opens every backend, so
 * a typo is an error there (and a warning at start and reload) rather than
 * a surprise at the first study.
 *
 * analyze() runs the program with posix_spawn():
 *   - argv = the command's words, then the study folder as last argument;
 *   - a minimal environment: PATH, LANG=C.UTF-8, HOME=/nonexistent,
 *     TRIAGED_JOB_ID, TRIAGED_STUDY_DIR; working directory "/";
 *   - stdin, stdout, stderr on three pipes; every other fd is closed
 *     (closefrom) even if some library opened one without O_CLOEXEC;
 *   - its own process group, an empty signal mask and default dispositions;
 * then multiplexes the pipes with poll(): the request JSON is written to
 * stdin as the pipe accepts it while stdout and stderr are read, so neither
 * side ever blocks on a full pipe. stdout is kept up to max_output_kb
 * (beyond: the group is killed, FAIL); of stderr only the last 2 KiB are
 * kept, for the message. At the deadline (the earlier of timeout_s and the
 * host's) the group gets SIGTERM, then SIGKILL 2 s later (RETRY "timed out
 * after N s").
 *
 * The child's exit is noticed without reaping it (pidfd, else waitid
 * WNOWAIT), so the process group id cannot be reused while leftovers of the
 * group (a background process still holding stdout) are killed; only then
 * is the leader reaped. Exit 0: stdout goes to host->result_parse_json;
 * exit 75 (EX_TEMPFAIL): RETRY; any other status or a signal: FAIL, with
 * the tail of stderr.
 *
 * SIGPIPE: writing to the stdin of a program that does not read it must not
 * kill the daemon, so SIGPIPE is blocked in the calling thread during the
 * run and a pending one is consumed before the mask is restored.
 *
 * Logging is at debug level only: the worker logs the outcome once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "argv_split.h"
#include "text.h"
#include "triaged/backend.h"

#define EXEC_PATH              "/usr/local/bin:/usr/bin:/bin"
#define EXEC_STDERR_TAIL       2048       /* bytes of stderr kept */
#define EXEC_KILL_GRACE_MS     2000       /* SIGTERM -> SIGKILL */
#define EXEC_DRAIN_MS          1000       /* after exit, wait this long for EOF */
#define EXEC_POLL_MS           50         /* without a pidfd */
#define EXEC_IO_CHUNK          65536
#define EXEC_EX_TEMPFAIL       75         /* sysexits.h EX_TEMPFAIL */
#define EXEC_DEFAULT_OUTPUT_KB 1024
#define EXEC_DEFAULT_TIMEOUT_S 300

extern const struct triaged_backend_type backend_exec;

struct exec_state {
	const struct triaged_host *host;
	char    name[80];
	char  **words;          /* the split command */
	size_t  nwords;
	char   *program;        /* resolved path of words[0] */
	size_t  max_output;     /* bytes */
	int     timeout_s;
};

/* One run of the program. */
struct exec_run {
	pid_t   pid;
	int     in_fd, out_fd, err_fd, pid_fd;
	const char *in;
	size_t  in_len, in_off;
	char   *out;
	size_t  out_len, out_cap, out_max;
	bool    out_overflow;
	char    tail[EXEC_STDERR_TAIL];
	size_t  tail_len;
	size_t  err_total;
	bool    got_epipe;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static int close_fd(int fd)
{
	if (fd >= 0)
		(void)close(fd);
	return -1;
}

/* MSG = "PREFIX: TAIL" (or PREFIX alone when TAIL is empty), keeping the
 * end of TAIL when it does not fit: the last lines of stderr say the most. */
static void msg_with_tail(char *msg, size_t msglen, const char *prefix,
                          const char *tail, size_t tail_len)
{
	char clean[EXEC_STDERR_TAIL * 3 + 1];
	size_t plen, clen, room;
	const char *t;

	if (!msg || msglen == 0)
		return;
	clen = text_sanitize(clean, sizeof(clean), tail, tail_len, true);
	t = clean;
	while (*t == ' ')
		t++, clen--;
	plen = (size_t)snprintf(msg, msglen, "%s", prefix);
	if (clen == 0 || plen + 6 >= msglen)
		return;
	room = msglen - plen - 3;                       /* ": " and NUL */
	if (clen <= room) {
		snprintf(msg + plen, msglen - plen, ": %s", t);
		return;
	}
	t += clen - (room - 3);                         /* "..." */
	while (((unsigned char)*t & 0xc0) == 0x80)      /* not mid-character */
		t++;
	snprintf(msg + plen, msglen - plen, ": ...%s", t);
}

/* Make FD >= 3 (keeping O_CLOEXEC), so the dup2 onto 0..2 in the child
 * never meets one of our own pipe ends. */
static int fd_above_stdio(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	(void)close(fd);
	return nfd;
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	p[0] = fd_above_stdio(p[0]);
	p[1] = fd_above_stdio(p[1]);
	if (p[0] < 0 || p[1] < 0) {
		int r = -errno;

		p[0] = close_fd(p[0]);
		p[1] = close_fd(p[1]);
		return r;
	}
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Check that PATH is an executable regular file; ERR says why not. */
static int check_program(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;

		snprintf(err, errlen, "command: %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "command: %s is not a regular file", path);
		return -EACCES;
	}
	if (access(path, X_OK) < 0) {
		int r = -errno;

		snprintf(err, errlen, "command: %s is not executable: %s", path,
		         strerror(-r));
		return r;
	}
	return 0;
}

/* The path to execute for NAME: a name without '/' is searched in the
 * child's PATH (not the daemon's); a relative path is made absolute, since
 * the child runs in "/". */
static int resolve_program(const char *name, char **out, char *err, size_t errlen)
{
	char buf[PATH_MAX], cwd[PATH_MAX];
	const char *dir, *end;
	int r;

	*out = NULL;
	if (!*name) {
		snprintf(err, errlen, "command: the program name is empty");
		return -EINVAL;
	}
	if (strchr(name, '/')) {
		if (name[0] == '/') {
			r = snprintf(buf, sizeof(buf), "%s", name);
		} else {
			if (!getcwd(cwd, sizeof(cwd))) {
				r = -errno;
				snprintf(err, errlen, "command: cannot resolve %s: %s", name,
				         strerror(-r));
				return r;
			}
			r = snprintf(buf, sizeof(buf), "%s/%s", cwd, name);
		}
		if (r < 0 || (size_t)r >= sizeof(buf)) {
			snprintf(err, errlen, "command: program path too long");
			return -ENAMETOOLONG;
		}
		r = check_program(buf, err, errlen);
		if (r < 0)
			return r;
		*out = strdup(buf);
		return *out ? 0 : -ENOMEM;
	}
	for (dir = EXEC_PATH; *dir; dir = *end ? end + 1 : end) {
		struct stat st;

		end = strchr(dir, ':');
		if (!end)
			end = dir + strlen(dir);
		r = snprintf(buf, sizeof(buf), "%.*s/%s", (int)(end - dir), dir, name);
		if (r < 0 || (size_t)r >= sizeof(buf))
			continue;
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
			r = check_program(buf, err, errlen);
			if (r < 0)
				return r;
			*out = strdup(buf);
			return *out ? 0 : -ENOMEM;
		}
	}
	snprintf(err, errlen, "command: %s not found in %s", name, EXEC_PATH);
	return -ENOENT;
}

/* ------------------------------------------------------------------------ */
/* open / close                                                             */

static void exec_close(void *state)
{
	struct exec_state *st = state;

	if (!st)
		return;
	argv_free(st->words);
	free(st->program);
	free(st);
}

static int exec_open(const struct triaged_host *host, const struct triaged_section *section,
                     void **state, char *err, size_t errlen)
{
	struct exec_state *st = NULL;
	const char *name;
	long kb, timeout;
	int r;

	*state = NULL;
	if (!host || !section)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->host = host;
	name = host->section_name ? host->section_name(section) : NULL;
	snprintf(st->name, sizeof(st->name), "%s", name ? name : "exec");

	r = argv_split(host->config_get(section, "command"), &st->words, &st->nwords,
	               err, errlen);
	if (r == -EINVAL) {
		char why[128];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "command: %s", why);
	}
	if (r < 0)
		goto fail;
	r = resolve_program(st->words[0], &st->program, err, errlen);
	if (r < 0)
		goto fail;

	r = text_parse_long(host->config_get(section, "max_output_kb"), EXEC_DEFAULT_OUTPUT_KB,
	              1, 1048576, &kb);
	if (r < 0) {
		snprintf(err, errlen, "max_output_kb: must be an integer between 1 and 1048576");
		goto fail;
	}
	st->max_output = (size_t)kb * 1024;
	r = text_parse_long(host->config_get(section, "timeout_s"), EXEC_DEFAULT_TIMEOUT_S,
	              1, 86400, &timeout);
	if (r < 0) {
		snprintf(err, errlen, "timeout_s: must be an integer between 1 and 86400");
		goto fail;
	}
	st->timeout_s = (int)timeout;
	host->log(LOG_DEBUG, "backend=%s exec program=%s words=%zu max_output_kb=%ld timeout_s=%d",
	          st->name, st->program, st->nwords, kb, st->timeout_s);
	*state = st;
	return 0;
fail:
	exec_close(st);
	return r;
}

/* ------------------------------------------------------------------------ */
/* One run                                                                  */

static void run_done(struct exec_run *run)
{
	run->in_fd = close_fd(run->in_fd);
	run->out_fd = close_fd(run->out_fd);
	run->err_fd = close_fd(run->err_fd);
	run->pid_fd = close_fd(run->pid_fd);
	free(run->out);
	run->out = NULL;
}

static int spawn(const struct exec_state *st, const struct triaged_study *study,
                 struct exec_run *run, char *msg, size_t msglen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char *env[6] = { NULL }, **argv = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	bool fa_init = false, attr_init = false;
	sigset_t none, all;
	size_t i;
	int r;

	argv = calloc(st->nwords + 2, sizeof(*argv));
	if (!argv) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < st->nwords; i++)
		argv[i] = st->words[i];
	argv[st->nwords] = (char *)(uintptr_t)study->study_dir;

	env[0] = strdup("PATH=" EXEC_PATH);
	env[1] = strdup("LANG=C.UTF-8");
	env[2] = strdup("HOME=/nonexistent");
	if (asprintf(&env[3], "TRIAGED_JOB_ID=%lld", (long long)study->job_id) < 0)
		env[3] = NULL;
	if (asprintf(&env[4], "TRIAGED_STUDY_DIR=%s", study->study_dir) < 0)
		env[4] = NULL;
	for (i = 0; i < 5; i++) {
		if (!env[i]) {
			r = -ENOMEM;
			goto out;
		}
	}

	if ((r = make_pipe(in)) < 0 || (r = make_pipe(out)) < 0 ||
	    (r = make_pipe(errp)) < 0) {
		snprintf(msg, msglen, "cannot create pipes: %s", strerror(-r));
		goto out;
	}

	r = -posix_spawn_file_actions_init(&fa);
	if (r < 0)
		goto out;
	fa_init = true;
	r = -posix_spawnattr_init(&attr);
	if (r < 0)
		goto out;
	attr_init = true;
	sigemptyset(&none);
	sigfillset(&all);
	if ((r = -posix_spawn_file_actions_adddup2(&fa, in[0], 0)) < 0 ||
	    (r = -posix_spawn_file_actions_adddup2(&fa, out[1], 1)) < 0 ||
	    (r = -posix_spawn_file_actions_adddup2(&fa, errp[1], 2)) < 0 ||
	    (r = -posix_spawn_file_actions_addclosefrom_np(&fa, 3)) < 0 ||
	    (r = -posix_spawn_file_actions_addchdir_np(&fa, "/")) < 0 ||
	    (r = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	                                   POSIX_SPAWN_SETSIGMASK |
	                                   POSIX_SPAWN_SETSIGDEF)) < 0 ||
	    (r = -posix_spawnattr_setpgroup(&attr, 0)) < 0 ||
	    (r = -posix_spawnattr_setsigmask(&attr, &none)) < 0 ||
	    (r = -posix_spawnattr_setsigdefault(&attr, &all)) < 0)
		goto out;

	r = -posix_spawn(&run->pid, st->program, &fa, &attr, argv, env);
	if (r < 0) {
		run->pid = 0;
		snprintf(msg, msglen, "cannot run %s: %s", st->program, strerror(-r));
		goto out;
	}

	run->in_fd = in[1];
	run->out_fd = out[0];
	run->err_fd = errp[0];
	in[1] = out[0] = errp[0] = -1;
	(void)set_nonblock(run->in_fd);
	(void)set_nonblock(run->out_fd);
	(void)set_nonblock(run->err_fd);
#ifdef SYS_pidfd_open
	run->pid_fd = (int)syscall(SYS_pidfd_open, run->pid, 0);  /* O_CLOEXEC by design */
	if (run->pid_fd < 0)
		run->pid_fd = -1;
#endif
	r = 0;
out:
	if (r < 0 && r != -ENOMEM && !*msg)
		snprintf(msg, msglen, "cannot run %s: %s", st->program, strerror(-r));
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	close_fd(in[0]);
	close_fd(in[1]);
	close_fd(out[0]);
	close_fd(out[1]);
	close_fd(errp[0]);
	close_fd(errp[1]);
	for (i = 0; i < 5; i++)
		free(env[i]);
	free(argv);
	return r;
}

static void feed_stdin(struct exec_run *run)
{
	while (run->in_fd >= 0 && run->in_off < run->in_len) {
		size_t n = run->in_len - run->in_off;
		ssize_t w;

		if (n > EXEC_IO_CHUNK)
			n = EXEC_IO_CHUNK;
		w = write(run->in_fd, run->in + run->in_off, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			if (errno == EPIPE)
				run->got_epipe = true;
			/* the program does not read (all of) its stdin: its business */
			break;
		}
		run->in_off += (size_t)w;
	}
	run->in_fd = close_fd(run->in_fd);
}

/* Read what FD has; false at EOF or error. */
static bool drain_stdout(struct exec_run *run)
{
	char buf[EXEC_IO_CHUNK];

	for (;;) {
		ssize_t n = read(run->out_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		if (run->out_len + (size_t)n > run->out_max) {
			run->out_overflow = true;
			return false;
		}
		if (run->out_len + (size_t)n + 1 > run->out_cap) {
			size_t cap = run->out_cap ? run->out_cap * 2 : 16384;
			char *grown;

			while (cap < run->out_len + (size_t)n + 1)
				cap *= 2;
			if (cap > run->out_max + 1)
				cap = run->out_max + 1;
			grown = realloc(run->out, cap);
			if (!grown) {
				run->out_overflow = true;   /* treated as too large */
				return false;
			}
			run->out = grown;
			run->out_cap = cap;
		}
		memcpy(run->out + run->out_len, buf, (size_t)n);
		run->out_len += (size_t)n;
		run->out[run->out_len] = '\0';
	}
}

static bool drain_stderr(struct exec_run *run)
{
	char buf[EXEC_IO_CHUNK];

	for (;;) {
		ssize_t n = read(run->err_fd, buf, sizeof(buf));
		size_t k;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		run->err_total += (size_t)n;
		k = (size_t)n;
		if (k >= EXEC_STDERR_TAIL) {
			memcpy(run->tail, buf + k - EXEC_STDERR_TAIL, EXEC_STDERR_TAIL);
			run->tail_len = EXEC_STDERR_TAIL;
			continue;
		}
		if (run->tail_len + k > EXEC_STDERR_TAIL) {
			size_t drop = run->tail_len + k - EXEC_STDERR_TAIL;

			memmove(run->tail, run->tail + drop, run->tail_len - drop);
			run->tail_len -= drop;
		}
		memcpy(run->tail + run->tail_len, buf, k);
		run->tail_len += k;
	}
}

/* Has the child exited? Without reaping it, so its pid (the process group
 * id) stays reserved until the group's leftovers are killed. */
static bool child_exited(const struct exec_run *run)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno == ECHILD;
	return si.si_pid == run->pid;
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGHUP: return "SIGHUP";
	case SIGINT: return "SIGINT";
	case SIGQUIT: return "SIGQUIT";
	case SIGILL: return "SIGILL";
	case SIGABRT: return "SIGABRT";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGKILL: return "SIGKILL";
	case SIGSEGV: return "SIGSEGV";
	case SIGPIPE: return "SIGPIPE";
	case SIGALRM: return "SIGALRM";
	case SIGTERM: return "SIGTERM";
	case SIGXCPU: return "SIGXCPU";
	case SIGXFSZ: return "SIGXFSZ";
	default: return "signal";
	}
}

static int exec_analyze(void *state, const struct triaged_study *study,
                        struct triaged_result *r, int64_t deadline_ms,
                        char *msg, size_t msglen)
{
	struct exec_state *st = state;
	const struct triaged_host *host;
	struct exec_run run;
	sigset_t pipe_set, old_mask;
	int64_t start, end, now, kill_at = 0, exit_at = 0;
	int killing = 0;                /* 1: SIGTERM sent, 2: SIGKILL sent */
	bool exited = false, timed_out = false, masked = false;
	int status = 0, ret, rc, io_err = 0;
	char prefix[160];

	if (msg && msglen)
		msg[0] = '\0';
	if (!st || !study || !r || !msg || msglen == 0)
		return TRIAGED_FAIL;
	host = st->host;
	if (!study->study_dir || !*study->study_dir) {
		snprintf(msg, msglen, "no study folder");
		return TRIAGED_FAIL;
	}

	memset(&run, 0, sizeof(run));
	run.in_fd = run.out_fd = run.err_fd = run.pid_fd = -1;
	run.in = study->request_json ? study->request_json : "";
	run.in_len = strlen(run.in);
	run.out_max = st->max_output;

	start = host->now_ms();
	end = start + (int64_t)st->timeout_s * 1000;
	if (deadline_ms > 0 && deadline_ms < end)
		end = deadline_ms;
	if (end <= start) {
		snprintf(msg, msglen, "timed out after 0 s (no time left before the deadline)");
		return TRIAGED_RETRY;
	}

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask) == 0)
		masked = true;

	rc = spawn(st, study, &run, msg, msglen);
	if (rc < 0) {
		/* out of fds or processes; or the program vanished since open()
		 * (an upgrade in progress): all may pass, as a failed open does */
		ret = TRIAGED_RETRY;
		if (!*msg)
			snprintf(msg, msglen, "cannot run %s: %s", st->program, strerror(-rc));
		goto out;
	}
	host->log(LOG_DEBUG, "backend=%s job=%lld exec pid=%d program=%s",
	          st->name, (long long)study->job_id, (int)run.pid, st->program);
	feed_stdin(&run);

	for (;;) {
		struct pollfd pfd[4];
		int npfd = 0, timeout, n, i;
		int64_t next;

		if (!exited && child_exited(&run)) {
			exited = true;
			exit_at = host->now_ms();
		}
		now = host->now_ms();
		if (exited && run.out_fd < 0 && run.err_fd < 0)
			break;
		if (exited && now - exit_at >= EXEC_DRAIN_MS)
			break;          /* a leftover of the group holds the pipes */
		if (run.out_overflow && killing < 2) {
			(void)kill(-run.pid, SIGKILL);
			killing = 2;
		}
		if (!exited && killing == 0 && now >= end) {
			timed_out = true;
			(void)kill(-run.pid, SIGTERM);
			killing = 1;
			kill_at = now + EXEC_KILL_GRACE_MS;
		}
		if (!exited && killing == 1 && now >= kill_at) {
			(void)kill(-run.pid, SIGKILL);
			killing = 2;
		}

		if (run.in_fd >= 0)
			pfd[npfd++] = (struct pollfd){ .fd = run.in_fd, .events = POLLOUT };
		if (run.out_fd >= 0)
			pfd[npfd++] = (struct pollfd){ .fd = run.out_fd, .events = POLLIN };
		if (run.err_fd >= 0)
			pfd[npfd++] = (struct pollfd){ .fd = run.err_fd, .events = POLLIN };
		if (run.pid_fd >= 0 && !exited)
			pfd[npfd++] = (struct pollfd){ .fd = run.pid_fd, .events = POLLIN };

		if (exited)
			next = exit_at + EXEC_DRAIN_MS;
		else if (killing == 0)
			next = end;
		else if (killing == 1)
			next = kill_at;
		else
			next = now + EXEC_POLL_MS;
		if (run.pid_fd < 0 && !exited && next > now + EXEC_POLL_MS)
			next = now + EXEC_POLL_MS;
		timeout = next > now ? (int)(next - now) : 0;

		n = poll(pfd, (nfds_t)npfd, timeout);
		if (n < 0 && errno != EINTR && !io_err) {
			io_err = -errno;        /* ENOMEM: give up on this run */
			(void)kill(-run.pid, SIGKILL);
			killing = 2;
			continue;
		}
		for (i = 0; n > 0 && i < npfd; i++) {
			if (!pfd[i].revents)
				continue;
			if (pfd[i].fd == run.in_fd) {
				feed_stdin(&run);
			} else if (pfd[i].fd == run.out_fd) {
				if (!drain_stdout(&run))
					run.out_fd = close_fd(run.out_fd);
			} else if (pfd[i].fd == run.err_fd) {
				if (!drain_stderr(&run))
					run.err_fd = close_fd(run.err_fd);
			}
		}
	}

	/* Leftovers of the group (a background process of a script) go with
	 * the job; the leader is not reaped yet, so the id is still ours. */
	(void)kill(-run.pid, SIGKILL);
	while (waitpid(run.pid, &status, 0) < 0 && errno == EINTR)
		;

	if (io_err) {
		snprintf(msg, msglen, "poll: %s", strerror(-io_err));
		ret = TRIAGED_RETRY;
	} else if (run.out_overflow) {
		snprintf(prefix, sizeof(prefix), "output larger than max_output_kb (%zu KiB)",
		         st->max_output / 1024);
		msg_with_tail(msg, msglen, prefix, run.tail, run.tail_len);
		ret = TRIAGED_FAIL;
	} else if (timed_out) {
		snprintf(prefix, sizeof(prefix), "timed out after %lld s",
		         (long long)((end - start + 999) / 1000));
		msg_with_tail(msg, msglen, prefix, run.tail, run.tail_len);
		ret = TRIAGED_RETRY;
	} else if (WIFSIGNALED(status)) {
		snprintf(prefix, sizeof(prefix), "%s killed by signal %d (%s)",
		         st->words[0], WTERMSIG(status), signal_name(WTERMSIG(status)));
		msg_with_tail(msg, msglen, prefix, run.tail, run.tail_len);
		ret = TRIAGED_FAIL;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == EXEC_EX_TEMPFAIL) {
		snprintf(prefix, sizeof(prefix), "%s exited with status 75 (temporary failure)",
		         st->words[0]);
		msg_with_tail(msg, msglen, prefix, run.tail, run.tail_len);
		ret = TRIAGED_RETRY;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(prefix, sizeof(prefix), "%s exited with status %d",
		         st->words[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		msg_with_tail(msg, msglen, prefix, run.tail, run.tail_len);
		ret = TRIAGED_FAIL;
	} else if (run.out_len == 0) {
		snprintf(prefix, sizeof(prefix), "%s exited 0 without a result on stdout",
		         st->words[0]);
		msg_with_tail(msg, msglen, prefix, run.tail, run.tail_len);
		ret = TRIAGED_FAIL;
	} else {
		msg[0] = '\0';
		ret = host->result_parse_json(r, run.out, run.out_len, msg, msglen);
		if (ret != TRIAGED_OK && !msg[0])
			snprintf(msg, msglen, "the result on stdout was refused");
	}
	host->log(LOG_DEBUG, "backend=%s job=%lld exec pid=%d status=0x%x stdout=%zu stderr=%zu "
	          "ms=%lld -> %s", st->name, (long long)study->job_id, (int)run.pid, status,
	          run.out_len, run.err_total, (long long)(host->now_ms() - start),
	          ret == TRIAGED_OK ? "ok" : ret == TRIAGED_RETRY ? "retry" : "fail");
out:
	run_done(&run);
	if (masked) {
		struct timespec zero = { 0, 0 };

		/* a SIGPIPE raised by our own write: consume it before unblocking */
		if (run.got_epipe)
			while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
				;
		(void)pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	}
	return ret;
}

static const struct triaged_backend_ops exec_ops = {
	.open = exec_open,
	.ready = NULL,
	.analyze = exec_analyze,
	.close = exec_close,
};

const struct triaged_backend_type backend_exec = {
	.abi_version = TRIAGED_BACKEND_ABI_VERSION,
	.name = "exec",
	.flags = 0,
	.ops = &exec_ops,
};

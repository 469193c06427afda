/*
 * triaged.c - the daemon: options, configuration, start and stop of the
 * stages, signals, sd_notify.
 *
 * DESIGN: the main thread owns signals (blocked everywhere, taken with
 * sigtimedwait), the watchdog, reload and shutdown, and runs the once-a-
 * second housekeeping (study completion). The receiver's accept loop runs
 * in its own thread and starts one thread per association. Every stage
 * keeps its state in SQLite, so start-up is the same code path as
 * recovery: clean the spool's tmp/, re-index stored files that lack a row,
 * then go on.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "backend.h"
#include "config.h"
#include "db.h"
#include "dicom/dicom.h"
#include "dispatch.h"
#include "notice.h"
#include "fs.h"
#include "log.h"
#include "notify.h"
#include "queue.h"
#include "receiver.h"
#include "retention.h"
#include "router.h"
#include "spool.h"
#include "study.h"
#include "worker.h"

#define DRAIN_TIMEOUT_MS 30000
#define WORKER_STOP_MS   5000
#define DISPATCH_STOP_MS 10000
#define RETENTION_EVERY_S 60
#define RETENTION_MAX_STUDIES 256

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: triaged [-c FILE] [--check-config] [-v] [--version]\n"
	    "  -c, --config FILE   configuration (default /etc/triaged/triaged.conf)\n"
	    "      --check-config  validate the configuration and exit (0 ok, 1 errors)\n"
	    "  -v, --verbose       log at debug level (or TRIAGED_LOG_LEVEL=debug)\n"
	    "      --version       print the version and exit\n");
}

struct reconcile {
	struct db *db;
	unsigned indexed, known, foreign;
};

static int
reconcile_one(void *arg, const char *study_uid, const char *sop_uid, const char *path,
              int valid)
{
	struct reconcile *rc = arg;
	char err[256];
	struct stat st;
	int r;

	if (!valid) {
		log_warnx("spool entry %s is not named by valid UIDs, ignoring", path);
		rc->foreign++;
		return 0;
	}
	r = db_instance_lookup(rc->db, sop_uid, NULL);
	if (r < 0)
		return r;
	if (r == 2) {
		/* retention removed it, but the unlink did not survive a crash */
		if (unlink(path) == 0)
			log_info("removed %s again (retention had removed it)", path);
		rc->known++;
		return 0;
	}
	if (r > 0) {
		rc->known++;
		return 0;
	}
	if (stat(path, &st) < 0)
		return 0;
	r = receiver_index_file(rc->db, path, study_uid, sop_uid, (int64_t)st.st_mtime,
	    err, sizeof(err));
	if (r == 0 || r == -EEXIST) {
		log_notice("re-indexed spool file without database row study=%s sop=%s",
		    study_uid, sop_uid);
		rc->indexed++;
	} else {
		log_warnx("spool file %s cannot be indexed: %s, left in place", path,
		    r == -EBADMSG || r == -EINVAL ? err : strerror(-r));
		rc->foreign++;
	}
	return 0;
}

/* Spool and database back in step after whatever stopped us. */
static int
reconcile(struct spool *spool, struct db *db)
{
	struct reconcile rc = { .db = db };
	sqlite3_stmt *st = NULL;
	unsigned missing = 0;
	int n, r;

	n = spool_clean_tmp(spool);
	if (n > 0)
		log_notice("removed %d unfinished file(s) from %s", n, spool->tmp);
	r = spool_walk(spool, reconcile_one, &rc);
	if (r < 0) {
		log_errno(LOG_ERR, r, "reconciling spool %s", spool->studies);
		return r;
	}
	/* rows whose file has gone: say so loudly, keep the row */
	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT path FROM instances WHERE removed_at IS NULL", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *p = (const char *)sqlite3_column_text(st, 0);
			if (p && access(p, F_OK) < 0 && errno == ENOENT) {
				if (missing++ < 10)
					log_err("spool file %s recorded in the database is "
					    "missing", p);
			}
		}
		sqlite3_finalize(st);
	}
	log_info("spool reconciled: %u instance(s) known, %u re-indexed, %u ignored, "
	    "%u missing", rc.known, rc.indexed, rc.foreign, missing);
	return 0;
}

static void *
receiver_thread(void *arg)
{
	(void)receiver_run(arg);
	return NULL;
}

/* The systemd STATUS= line: what `systemctl status triaged` shows. */
static void
status_line(struct db *db, struct receiver *recv, char *buf, size_t len)
{
	sqlite3_stmt *st;
	long long n[7] = { 0 };
	struct receiver_stats rs;

	/* each count is a range of an index: cheap on a large queue */
	if (sqlite3_prepare_v2(db_handle(db),
	    "SELECT (SELECT count(*) FROM studies WHERE state = 'receiving'),"
	    " (SELECT count(*) FROM jobs WHERE state = 'pending'),"
	    " (SELECT count(*) FROM jobs WHERE state = 'running'),"
	    " (SELECT count(*) FROM jobs WHERE state = 'failed'),"
	    " (SELECT count(*) FROM dispatches WHERE state = 'pending'),"
	    " (SELECT count(*) FROM dispatches WHERE state = 'sending'),"
	    " (SELECT count(*) FROM dispatches WHERE state = 'dead')",
	    -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			for (int i = 0; i < 7; i++)
				n[i] = sqlite3_column_int64(st, i);
		sqlite3_finalize(st);
	}
	receiver_get_stats(recv, &rs);
	snprintf(buf, len, "associations %d, studies receiving %lld; jobs pending %lld, "
	    "running %lld, failed %lld; dispatches pending %lld, sending %lld, dead %lld; "
	    "since start stored %llu, refused %llu",
	    receiver_active(recv), n[0], n[1], n[2], n[3], n[4], n[5], n[6],
	    (unsigned long long)rs.stored, (unsigned long long)rs.refused);
}

/*
 * Open and close every [backend] once, as a worker would at its first job.
 * CHECK: print each failure as a --check-config error; else log it as a
 * warning (the daemon still receives; jobs for that backend are retried
 * until it opens). Returns the number that failed.
 */
static int
open_backends(const struct config *cfg, const char *path, bool check)
{
	struct backend *b;
	char err[512];
	int bad = 0;

	for (size_t i = 0; i < cfg->nbackends; i++) {
		const char *name = cfg->backends[i].name;
		if (backend_open(cfg, name, &b, err, sizeof(err)) == 0) {
			backend_close(b);
			continue;
		}
		bad++;
		if (check)
			fprintf(stderr, "%s: [backend %s]: %s\n", path, name, err);
		else
			log_warnx("[backend %s] cannot be opened: %s; its jobs are retried "
			    "until it can", name, err);
	}
	return bad;
}

/* *DST becomes a copy of SRC (a running value that a reload keeps). */
static int
keep_string(char **dst, const char *src)
{
	char *c;

	if (strcmp(*dst, src) == 0)
		return 0;
	if (!(c = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

/*
 * After a reload the dispatcher restarts with the new destinations once
 * its senders have finished their batches: waited for up to WAIT_MS here,
 * else on a later tick of the main loop, so the loop (and the watchdog)
 * never waits for a slow PACS. True once restarted.
 */
static bool
restart_dispatcher(struct config *cfg, struct dispatcher **disp, int wait_ms)
{
	if (dispatcher_stop(*disp, wait_ms) > 0)
		return false;
	*disp = dispatcher_free(*disp);
	if (dispatcher_start(cfg, disp) < 0)
		log_err("cannot start the dispatcher, delivery paused until the next reload");
	return true;
}

static struct config *
reload(const char *path, struct config *cur, struct receiver *recv, struct workers *workers,
       struct dispatcher **disp, bool *disp_restart)
{
	struct config *next = NULL;

	notify_reloading();
	if (config_load(path, &next, stderr) < 0) {
		log_err("reload of %s failed, keeping the running configuration", path);
		notify_ready("reload failed; running with the previous configuration");
		return cur;
	}
	(void)open_backends(next, path, false);
	if (strcmp(next->server.ae_title, cur->server.ae_title) != 0 ||
	    next->server.port != cur->server.port ||
	    strcmp(next->server.bind, cur->server.bind) != 0 ||
	    strcmp(next->storage.spool_dir, cur->storage.spool_dir) != 0 ||
	    strcmp(next->storage.database, cur->storage.database) != 0)
		log_warnx("reload: ae_title, port, bind, spool_dir and database take "
		    "effect at the next restart; the running values stay");
	/* what cannot change while running keeps its running value */
	snprintf(next->server.ae_title, sizeof(next->server.ae_title), "%s",
	    cur->server.ae_title);
	next->server.port = cur->server.port;
	if (keep_string(&next->server.bind, cur->server.bind) < 0 ||
	    keep_string(&next->storage.spool_dir, cur->storage.spool_dir) < 0 ||
	    keep_string(&next->storage.database, cur->storage.database) < 0) {
		log_err("reload: out of memory, keeping the running configuration");
		config_unref(next);
		notify_ready("reload failed; running with the previous configuration");
		return cur;
	}
	receiver_set_config(recv, next);
	workers_set_config(workers, next);
	/* destinations may have come or gone: new senders, after the
	 * current batches (what they leave is pending, not lost) */
	*disp_restart = !restart_dispatcher(next, disp, 1000);
	if (*disp_restart)
		log_notice("reload: a destination is still sending; delivery goes on with "
		    "the new destinations when its batch ends");
	log_notice("configuration reloaded from %s", path);
	notify_ready("configuration reloaded");
	config_unref(cur);
	return next;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = "/etc/triaged/triaged.conf", *lvl;
	struct config *cfg = NULL;
	struct spool *spool = NULL;
	struct db *db = NULL;
	struct receiver *recv = NULL;
	struct workers *workers = NULL;
	struct dispatcher *disp = NULL;
	struct notifier *notifier = NULL;
	pthread_t recv_tid;
	bool recv_started = false, check_only = false, detached = false, disp_restart = false;
	sigset_t sigs;
	char err[512], status[256];
	int c, r, lockfd = -1, rc = 1;
	uint64_t wd_us;
	struct timespec last_wd = { 0 }, last_status = { 0 }, last_retention = { 0 }, now;

	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'C': check_only = true; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'V': printf("triaged %s\n", TRIAGED_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((lvl = getenv("TRIAGED_LOG_LEVEL")) && log_level_from_name(lvl) >= 0)
		log_set_level(log_level_from_name(lvl));

	if (config_load(path, &cfg, stderr) < 0)
		return 1;
	if (check_only) {
		/* a backend that cannot be opened (an exec program that is not
		 * there, say) is an error here; at start it is a warning */
		r = open_backends(cfg, path, true);
		if (r == 0)
			printf("%s: configuration ok (%zu routes, %zu backends, %zu destinations)\n",
			    path, cfg->nroutes, cfg->nbackends, cfg->ndestinations);
		config_unref(cfg);
		return r == 0 ? 0 : 1;
	}
	(void)open_backends(cfg, path, false);

	/* signals are taken by this thread only; every thread inherits the mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("libcurl initialisation failed");
		goto out;
	}
	if (dicom_global_init(err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	if ((r = spool_open(cfg->storage.spool_dir, &spool)) < 0) {
		log_errno(LOG_ERR, r, "spool_dir %s", cfg->storage.spool_dir);
		goto out;
	}
	{
		pid_t holder = 0;
		lockfd = spool_lock(spool, &holder);
		if (lockfd < 0) {
			if (lockfd == -EWOULDBLOCK)
				log_err("another triaged (pid %ld) uses spool_dir %s",
				    (long)holder, cfg->storage.spool_dir);
			else
				log_errno(LOG_ERR, lockfd, "locking spool_dir %s",
				    cfg->storage.spool_dir);
			goto out;
		}
	}
	if (db_open(cfg->storage.database, DB_MIGRATE, &db, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	if (reconcile(spool, db) < 0)
		goto out;
	if ((r = queue_requeue_running(db, (int64_t)time(NULL))) > 0)
		log_notice("%d job(s) interrupted by the last stop are pending again", r);
	if ((r = dispatch_requeue_sending(db, (int64_t)time(NULL))) > 0)
		log_notice("%d dispatch(es) interrupted by the last stop are pending again", r);
	if (receiver_new(cfg, spool, &recv, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	if ((r = pthread_create(&recv_tid, NULL, receiver_thread, recv)) != 0) {
		log_errno(LOG_ERR, r, "starting the receiver");
		goto out;
	}
	recv_started = true;
	if ((r = workers_start(cfg, &workers)) < 0) {
		log_errno(LOG_ERR, r, "starting the workers");
		goto out;
	}
	if ((r = dispatcher_start(cfg, &disp)) < 0) {
		log_errno(LOG_ERR, r, "starting the dispatcher");
		goto out;
	}
	if ((r = notifier_start(cfg, &notifier)) < 0) {
		log_errno(LOG_ERR, r, "starting the webhook notifier");
		goto out;
	}
	log_notice("triaged %s listening ae_title=%s bind=%s port=%d max_associations=%d "
	    "spool=%s", TRIAGED_VERSION, cfg->server.ae_title, cfg->server.bind,
	    receiver_port(recv), cfg->server.max_associations, cfg->storage.spool_dir);
	status_line(db, recv, status, sizeof(status));
	notify_ready(status);
	wd_us = notify_watchdog_interval_us();

	for (;;) {
		struct timespec tick = { .tv_sec = 1 };
		siginfo_t si;
		int sig = sigtimedwait(&sigs, &si, &tick);

		if (sig == SIGTERM || sig == SIGINT) {
			log_notice("signal %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP) {
			cfg = reload(path, cfg, recv, workers, &disp, &disp_restart);
			last_retention.tv_sec = 0;   /* a retention pass now */
		}

		if (disp_restart && restart_dispatcher(cfg, &disp, -1))
			disp_restart = false;
		clock_gettime(CLOCK_MONOTONIC, &now);
		(void)router_check_expected(db, cfg, (int64_t)time(NULL));
		(void)study_sweep(db, cfg, (int64_t)time(NULL));
		if (router_route_complete(db, cfg, (int64_t)time(NULL)) > 0)
			workers_wake(workers);
		if (dispatch_queue_new(db, cfg, (int64_t)time(NULL)) > 0 && disp)
			dispatcher_wake(disp);
		if (now.tv_sec - last_retention.tv_sec >= RETENTION_EVERY_S) {
			(void)retention_sweep(db, spool->root, (int64_t)time(NULL),
			    (int64_t)cfg->storage.retention_hours * 3600, RETENTION_MAX_STUDIES,
			    NULL);
			last_retention = now;
		}
		if (wd_us && (uint64_t)(now.tv_sec - last_wd.tv_sec) * 1000000 >= wd_us) {
			notify_watchdog();
			last_wd = now;
		}
		if (now.tv_sec - last_status.tv_sec >= 5) {
			status_line(db, recv, status, sizeof(status));
			notify_status(status);
			last_status = now;
		}
	}

	notify_stopping();
	receiver_stop(recv);                 /* no new associations from here */
	pthread_join(recv_tid, NULL);
	recv_started = false;
	if (workers_stop(workers, WORKER_STOP_MS) > 0) {
		/* a backend is still busy: its job goes back to pending now
		 * (and is analysed again after the restart) */
		log_notice("analysis in progress left pending for the next start");
		(void)queue_requeue_running(db, (int64_t)time(NULL));
		workers = NULL;
		detached = true;
	}
	workers = workers_free(workers);
	if (dispatcher_stop(disp, DISPATCH_STOP_MS) > 0) {
		/* a batch is still on the wire: it is re-sent after the restart
		 * (safe: same SOP Instance UIDs) */
		(void)dispatch_requeue_sending(db, (int64_t)time(NULL));
		disp = NULL;
		detached = true;
	}
	disp = dispatcher_free(disp);
	notifier = notifier_free(notifier);
	r = receiver_drain(recv, DRAIN_TIMEOUT_MS);
	if (r > 0 || detached) {
		/* association or worker threads still run: leave everything */
		if (r > 0)
			log_err("%d association(s) did not finish within %d s; exiting "
			    "anyway (none of their unanswered C-STOREs were acknowledged)",
			    r, DRAIN_TIMEOUT_MS / 1000);
		log_notice("stopped");
		db_close(db);
		_exit(0);
	}
	log_notice("stopped");
	rc = 0;
out:
	if ((workers && workers_stop(workers, WORKER_STOP_MS) > 0) ||
	    (disp && dispatcher_stop(disp, DISPATCH_STOP_MS) > 0))
		_exit(rc);
	workers_free(workers);
	dispatcher_free(disp);
	notifier_free(notifier);
	if (recv_started) {
		receiver_stop(recv);
		pthread_join(recv_tid, NULL);
		(void)receiver_drain(recv, DRAIN_TIMEOUT_MS);
	}
	receiver_free(recv);
	db_close(db);
	if (lockfd >= 0)
		close(lockfd);
	spool_free(spool);
	config_unref(cfg);
	dicom_global_done();
	curl_global_cleanup();
	return rc;
}

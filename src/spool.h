/*
 * spool.h - the durable store of received instances.
 *
 * Layout under spool_dir:
 *   tmp/                         files being received (removed on start)
 *   studies/<StudyUID>/<SOPUID>.dcm      instances as received
 *   results/<StudyUID>/<SOPUID>.dcm      SR and secondary captures we wrote
 * A file appears under studies/ only complete and fsynced (rename into
 * place, then the directory is fsynced). Only validated UIDs name files.
 */
#ifndef TRIAGED_SPOOL_H
#define TRIAGED_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool {
	char *root;            /* spool_dir */
	char *tmp;             /* root/tmp */
	char *studies;         /* root/studies */
	char *results;         /* root/results */
};

/* Create the directories; 0 or negative errno. */
int  spool_open(const char *root, struct spool **out);
struct spool *spool_free(struct spool *s);

/* A new unique temp path in tmp/ (nothing is created). */
int  spool_tmp_path(const struct spool *s, char *buf, size_t len);

/* Final path of an instance; -EINVAL unless both UIDs are valid. */
int  spool_instance_path(const struct spool *s, const char *study_uid,
                         const char *sop_uid, char *buf, size_t len);
/* Directory of a study; -EINVAL unless the UID is valid. */
int  spool_study_dir(const struct spool *s, const char *study_uid,
                     char *buf, size_t len);

/*
 * Make TMP durable as the instance's file: fsync it, create the study
 * directory if needed (fsyncing its parent), rename without replacing,
 * fsync the directory. Returns 0, -EEXIST when the instance's file is
 * already there (TMP is left in place for the caller to remove), or
 * another negative errno. FINAL receives the path.
 */
int  spool_commit(const struct spool *s, const char *tmp, const char *study_uid,
                  const char *sop_uid, char *final, size_t len);

/* The same for a result object we wrote, under results/. */
int  spool_commit_result(const struct spool *s, const char *tmp, const char *study_uid,
                         const char *sop_uid, char *final, size_t len);

/* Remove every file in tmp/ (start-up). Returns the count removed. */
int  spool_clean_tmp(const struct spool *s);

/*
 * Walk studies/: call FN for every "<study>/<sop>.dcm" whose two names are
 * valid UIDs. Entries with other names are reported through FN with
 * valid = 0 (and never followed). Stops if FN returns < 0.
 */
typedef int (*spool_walk_fn)(void *arg, const char *study_uid, const char *sop_uid,
                             const char *path, int valid);
int  spool_walk(const struct spool *s, spool_walk_fn fn, void *arg);

#endif

/*
 * The daemon's lock: spool_dir/triaged.pid, held with flock(LOCK_EX) for
 * the daemon's life, so that two daemons never share a spool and
 * triagectl can tell whether one runs. spool_lock returns the fd, or
 * -EWOULDBLOCK with *HOLDER set to the running daemon's pid.
 */
#include <sys/types.h>
int  spool_lock(const struct spool *s, pid_t *holder);
/* 1 when a daemon holds the lock of spool ROOT (*PID set), 0 when none,
 * negative errno when it cannot be told. */
int  spool_lock_probe(const char *root, pid_t *pid);

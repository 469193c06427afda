/*
 * spool.c - durable store: temp file, fsync, rename, fsync directory.
 *
 * DESIGN: DCMTK writes the received dataset into a file under tmp/ (same
 * file system as studies/, so rename is atomic). Commit makes it durable
 * before anything records it: a file is visible under studies/ only whole.
 * renameat2(RENAME_NOREPLACE) makes a concurrent second copy of the same
 * SOP Instance UID fail with EEXIST instead of replacing the first.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "uid.h"

static int
dup_path(char **out, const char *a, const char *b)
{
	if (asprintf(out, "%s%s%s", a, b ? "/" : "", b ? b : "") < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

struct spool *
spool_free(struct spool *s)
{
	if (!s)
		return NULL;
	free(s->root);
	free(s->tmp);
	free(s->studies);
	free(s->results);
	free(s);
	return NULL;
}

int
spool_open(const char *root, struct spool **out)
{
	struct spool *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if ((r = dup_path(&s->root, root, NULL)) < 0 ||
	    (r = dup_path(&s->tmp, root, "tmp")) < 0 ||
	    (r = dup_path(&s->studies, root, "studies")) < 0 ||
	    (r = dup_path(&s->results, root, "results")) < 0)
		goto fail;
	if ((r = fs_mkdir_p(s->tmp, 0750)) < 0 ||
	    (r = fs_mkdir_p(s->studies, 0750)) < 0 ||
	    (r = fs_mkdir_p(s->results, 0750)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	spool_free(s);
	return r;
}

int
spool_tmp_path(const struct spool *s, char *buf, size_t len)
{
	static unsigned long counter;
	struct timespec ts;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	clock_gettime(CLOCK_REALTIME, &ts);
	return fs_path(buf, len, "%s/%ld.%ld.%lu.part", s->tmp, (long)getpid(),
	    (long)ts.tv_sec, n);
}

int
spool_study_dir(const struct spool *s, const char *study_uid, char *buf, size_t len)
{
	char u[UID_MAX + 1];

	if (uid_normalize(study_uid, u) < 0)
		return -EINVAL;
	return fs_path(buf, len, "%s/%s", s->studies, u);
}

int
spool_instance_path(const struct spool *s, const char *study_uid, const char *sop_uid,
                    char *buf, size_t len)
{
	char st[UID_MAX + 1], so[UID_MAX + 1];

	if (uid_normalize(study_uid, st) < 0 || uid_normalize(sop_uid, so) < 0)
		return -EINVAL;
	return fs_path(buf, len, "%s/%s/%s.dcm", s->studies, st, so);
}

/* Place TMP as AREA/<study>/<sop>.dcm durably (see spool_commit). */
static int
commit_in(const char *area, const char *tmp, const char *study_uid,
          const char *sop_uid, char *final, size_t len)
{
	char dir[PATH_MAX], st[UID_MAX + 1], so[UID_MAX + 1];
	int r, retried = 0;

	if (uid_normalize(study_uid, st) < 0 || uid_normalize(sop_uid, so) < 0)
		return -EINVAL;
	if ((r = fs_path(dir, sizeof(dir), "%s/%s", area, st)) < 0 ||
	    (r = fs_path(final, len, "%s/%s.dcm", dir, so)) < 0)
		return r;
	if ((r = fs_fsync_path(tmp)) < 0)
		return r;
again:
	if (mkdir(dir, 0750) == 0) {
		/* a new study directory must itself survive a crash */
		if ((r = fs_fsync_dir(area)) < 0)
			return r;
	} else if (errno != EEXIST) {
		return -errno;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST)
			return -EEXIST;
		/* retention removed the emptied directory meanwhile */
		if (errno == ENOENT && retried++ == 0 && access(tmp, F_OK) == 0)
			goto again;
		if (errno != EINVAL && errno != ENOSYS)
			return -errno;
		/* file system without RENAME_NOREPLACE: link + unlink */
		if (link(tmp, final) < 0)
			return -errno;
		(void)unlink(tmp);
	}
	return fs_fsync_dir(dir);
}

int
spool_commit(const struct spool *s, const char *tmp, const char *study_uid,
             const char *sop_uid, char *final, size_t len)
{
	return commit_in(s->studies, tmp, study_uid, sop_uid, final, len);
}

int
spool_commit_result(const struct spool *s, const char *tmp, const char *study_uid,
                    const char *sop_uid, char *final, size_t len)
{
	return commit_in(s->results, tmp, study_uid, sop_uid, final, len);
}

int
spool_clean_tmp(const struct spool *s)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	d = opendir(s->tmp);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int
spool_walk(const struct spool *s, spool_walk_fn fn, void *arg)
{
	DIR *top, *sub;
	struct dirent *e, *f;
	char path[PATH_MAX], sop[UID_MAX + 8];
	int r = 0;

	top = opendir(s->studies);
	if (!top)
		return -errno;
	while (r >= 0 && (e = readdir(top))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fs_path(path, sizeof(path), "%s/%s", s->studies, e->d_name) < 0)
			continue;
		if (!uid_valid(e->d_name) && uid_normalize(e->d_name, sop) < 0) {
			r = fn(arg, NULL, NULL, path, 0);
			continue;
		}
		sub = opendir(path);
		if (!sub)
			continue;
		while (r >= 0 && (f = readdir(sub))) {
			size_t l = strlen(f->d_name);
			if (strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0)
				continue;
			if (fs_path(path, sizeof(path), "%s/%s/%s", s->studies,
			    e->d_name, f->d_name) < 0)
				continue;
			if (l < 5 || l - 4 > UID_MAX || strcmp(f->d_name + l - 4, ".dcm") != 0) {
				r = fn(arg, NULL, NULL, path, 0);
				continue;
			}
			memcpy(sop, f->d_name, l - 4);
			sop[l - 4] = '\0';
			r = fn(arg, e->d_name, sop, path, uid_normalize(sop, sop) == 0);
		}
		closedir(sub);
	}
	closedir(top);
	return r < 0 ? r : 0;
}

#include <sys/file.h>

static pid_t
read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)atol(buf);
}

int
spool_lock(const struct spool *s, pid_t *holder)
{
	char path[PATH_MAX], buf[32];
	int fd, r, n;

	if ((r = fs_path(path, sizeof(path), "%s/triaged.pid", s->root)) < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		*holder = read_pid(fd);
		close(fd);
		return r;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int
spool_lock_probe(const char *root, pid_t *pid)
{
	char path[PATH_MAX];
	int fd, r;

	if ((r = fs_path(path, sizeof(path), "%s/triaged.pid", root)) < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? 1 : -errno;
		if (r == 1)
			*pid = read_pid(fd);
	} else {
		r = 0;
	}
	close(fd);
	return r;
}

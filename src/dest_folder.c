/*
 * dest_folder.c - the folder destination: every instance copied, byte for
 * byte, to PATH/<StudyInstanceUID>/<SOPInstanceUID>.dcm.
 *
 * DESIGN: like the spool (spool.c), a file is visible under its final name
 * only whole and durable: it is copied into a temporary name in the same
 * directory (".<SOP>.dcm.<pid>.<n>.tmp": a reader globbing *.dcm never sees
 * it), fsynced, renamed over the final name, and the directory fsynced (the
 * study directory's parent too when the study directory is new). Sending
 * the same instance again replaces the file atomically with the same
 * content; two senders writing the same instance at once each rename a
 * complete copy. The UIDs name files only after uid_normalize() accepts
 * them (digits and dots, 64 characters at most: no "/" and no ".."). Files
 * are created 0640 and directories 0750 (patient data; the process umask
 * applies on top): give the readers' group access, not the world. The
 * copy uses copy_file_range() (reflink or in-kernel copy), falling back to
 * read/write. State is read-only after open(): sender threads share it.
 */
#include "clock.h"
#include "dest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dicom/dicom.h"
#include "fs.h"
#include "uid.h"

#define FOLDER_DIR_MODE   0750
#define FOLDER_FILE_MODE  0640
#define COPY_BUF          (1024 * 1024)

struct dest_folder_state {
	char name[CONFIG_NAME_MAX + 1];
	char root[PATH_MAX];
};

static void
folder_close(void *state)
{
	free(state);
}

static int
folder_open(const struct config *cfg, const struct config_destination *d, void **state,
            char *err, size_t errlen)
{
	struct dest_folder_state *s;
	size_t len;

	(void)cfg;
	*state = NULL;
	if (!d->path || !*d->path) {
		snprintf(err, errlen, "destination %s: path is required", d->name);
		return -EINVAL;
	}
	len = strlen(d->path);
	while (len > 1 && d->path[len - 1] == '/')
		len--;
	if (len >= sizeof(s->root) - (UID_MAX + 1) * 2 - 32) {
		snprintf(err, errlen, "destination %s: path is too long", d->name);
		return -ENAMETOOLONG;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	memcpy(s->root, d->path, len);
	s->root[len] = '\0';
	*state = s;
	return 0;
}

/* A unique temporary name next to FINAL's name in DIR. */
static int
tmp_name(char *buf, size_t len, const char *dir, const char *sop)
{
	static unsigned long counter;
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	return fs_path(buf, len, "%s/.%s.dcm.%ld.%lu.tmp", dir, sop, (long)getpid(), n);
}

static int
copy_fd(int in, int out, uint64_t size)
{
	uint64_t done = 0;
	bool plain = false;
	char *buf = NULL;

	while (done < size) {
		ssize_t n;

		if (!plain) {
			n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			              errno == EOPNOTSUPP || errno == EPERM)) {
				plain = true;
				if (lseek(in, (off_t)done, SEEK_SET) < 0 ||
				    lseek(out, (off_t)done, SEEK_SET) < 0)
					return -errno;
				continue;
			}
		} else {
			if (!buf && !(buf = malloc(COPY_BUF)))
				return -ENOMEM;
			n = read(in, buf, COPY_BUF);
			if (n > 0) {
				ssize_t off = 0;

				while (off < n) {
					ssize_t w = write(out, buf + off, (size_t)(n - off));
					if (w < 0 && errno == EINTR)
						continue;
					if (w < 0) {
						int e = errno;
						free(buf);
						return -e;
					}
					off += w;
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (n == 0)
			break;          /* the source shrank */
		done += (uint64_t)n;
	}
	free(buf);
	return done == size ? 0 : -EIO;
}

/*
 * Copy SRC to ROOT/STUDY/SOP.dcm atomically and durably. 0, or a negative
 * errno with WHY; *SOURCE_GONE tells a missing source from a destination
 * problem.
 */
static int
write_one(const char *root, const char *study, const char *sop, const char *src,
          bool *source_gone, char *why, size_t whylen)
{
	char dir[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	bool new_dir = false;
	int in = -1, out = -1, r;

	*source_gone = false;
	if ((r = fs_path(dir, sizeof(dir), "%s/%s", root, study)) < 0 ||
	    (r = fs_path(final, sizeof(final), "%s/%s.dcm", dir, sop)) < 0 ||
	    (r = tmp_name(tmp, sizeof(tmp), dir, sop)) < 0) {
		snprintf(why, whylen, "path too long under %.150s", root);
		return r;
	}
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		r = -errno;
		*source_gone = r == -ENOENT;
		snprintf(why, whylen, "cannot read %.150s: %s", src, strerror(-r));
		goto out;
	}
	if (mkdir(dir, FOLDER_DIR_MODE) == 0) {
		new_dir = true;
	} else if (errno != EEXIST) {
		r = -errno;
		snprintf(why, whylen, "cannot create %.150s: %s", dir, strerror(-r));
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FOLDER_FILE_MODE);
	if (out < 0) {
		r = -errno;
		snprintf(why, whylen, "cannot create %.150s: %s", tmp, strerror(-r));
		goto out;
	}
	if ((r = copy_fd(in, out, (uint64_t)st.st_size)) < 0) {
		snprintf(why, whylen, "cannot write %.150s: %s", tmp, strerror(-r));
		goto out;
	}
	if (fsync(out) < 0) {
		r = -errno;
		snprintf(why, whylen, "fsync %.150s: %s", tmp, strerror(-r));
		goto out;
	}
	r = close(out);
	out = -1;
	if (r < 0) {
		r = -errno;
		snprintf(why, whylen, "close %.150s: %s", tmp, strerror(-r));
		goto out;
	}
	if (rename(tmp, final) < 0) {
		r = -errno;
		snprintf(why, whylen, "cannot rename to %.150s: %s", final, strerror(-r));
		goto out;
	}
	tmp[0] = '\0';
	if ((r = fs_fsync_dir(dir)) < 0 || (new_dir && (r = fs_fsync_dir(root)) < 0)) {
		snprintf(why, whylen, "fsync of the directory %.150s: %s", new_dir ? root : dir,
		         strerror(-r));
		goto out;
	}
	r = 0;
out:
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	if (r < 0 && tmp[0])
		(void)unlink(tmp);
	return r;
}

static void
set(struct dest_item_result *r, int status, const char *msg)
{
	r->status = status;
	r->dimse_status = 0xFFFF;
	snprintf(r->message, sizeof(r->message), "%s", msg);
}

static int
folder_send(void *state, const struct dest_item *items, size_t n,
            struct dest_item_result *res, int64_t deadline_ms)
{
	const struct dest_folder_state *s = state;
	char why[200];
	size_t i;
	int r;

	if ((r = fs_mkdir_p(s->root, FOLDER_DIR_MODE)) < 0) {
		snprintf(why, sizeof(why), "cannot create %.150s: %s", s->root, strerror(-r));
		for (i = 0; i < n; i++)
			set(&res[i], DEST_RETRY, why);
		return r;
	}
	for (i = 0; i < n; i++) {
		const struct dest_item *it = &items[i];
		char study[UID_MAX + 1], sop[UID_MAX + 1];
		const char *study_in = it->study_uid, *sop_in = it->sop_uid;
		struct dicom_meta *m = NULL;
		bool gone;

		if (deadline_ms > 0 && mono_ms() >= deadline_ms) {
			set(&res[i], DEST_RETRY, "not written: deadline reached");
			continue;
		}
		if (!it->path || !*it->path) {
			set(&res[i], DEST_FAIL, "no file");
			continue;
		}
		if (!study_in || !*study_in || !sop_in || !*sop_in) {
			/* not given: as the file says */
			m = calloc(1, sizeof(*m));
			if (!m) {
				set(&res[i], DEST_RETRY, "out of memory");
				continue;
			}
			r = dicom_meta_read(it->path, m, why, sizeof(why));
			if (r < 0) {
				if (r != -EBADMSG)
					snprintf(why, sizeof(why), "cannot read %.150s: %s", it->path,
					         strerror(-r));
				set(&res[i], r == -EBADMSG || r == -ENOENT ? DEST_FAIL : DEST_RETRY,
				    why);
				free(m);
				continue;
			}
			if (!study_in || !*study_in)
				study_in = m->study_uid;
			if (!sop_in || !*sop_in)
				sop_in = m->sop_uid;
		}
		if (uid_normalize(study_in, study) < 0 || uid_normalize(sop_in, sop) < 0) {
			set(&res[i], DEST_FAIL,
			    "refusing to name a file after an invalid Study or SOP Instance UID");
			free(m);
			continue;
		}
		free(m);
		r = write_one(s->root, study, sop, it->path, &gone, why, sizeof(why));
		if (r < 0)
			set(&res[i], gone ? DEST_FAIL : DEST_RETRY, why);
		else
			set(&res[i], DEST_OK, "");
	}
	return 0;
}

static int
folder_echo(void *state, char *msg, size_t msglen)
{
	const struct dest_folder_state *s = state;
	char probe[PATH_MAX];
	int fd, r;

	if ((r = fs_mkdir_p(s->root, FOLDER_DIR_MODE)) < 0) {
		snprintf(msg, msglen, "cannot create %.150s: %s", s->root, strerror(-r));
		return r;
	}
	if ((r = tmp_name(probe, sizeof(probe), s->root, "triaged-echo")) < 0) {
		snprintf(msg, msglen, "path too long: %.150s", s->root);
		return r;
	}
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FOLDER_FILE_MODE);
	if (fd < 0) {
		r = -errno;
		snprintf(msg, msglen, "%.150s is not writable: %s", s->root, strerror(-r));
		return r;
	}
	r = write(fd, "x", 1) == 1 ? 0 : -errno;
	close(fd);
	(void)unlink(probe);
	if (r < 0) {
		snprintf(msg, msglen, "cannot write in %.150s: %s", s->root, strerror(-r));
		return r;
	}
	return 0;
}

static const struct dest_ops folder_ops = {
	.open  = folder_open,
	.echo  = folder_echo,
	.send  = folder_send,
	.close = folder_close,
};

const struct dest_type dest_folder = { .name = "folder", .ops = &folder_ops };

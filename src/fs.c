/*
 * fs.c - file-system helpers: mkdir -p, fsync of files and directories,
 * free space, disk use.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int
fs_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int
fs_mkdir_p(const char *path, unsigned mode)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int
fsync_open(const char *path, int flags)
{
	int fd, r = 0;

	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int
fs_fsync_dir(const char *path)
{
	return fsync_open(path, O_RDONLY | O_DIRECTORY);
}

int
fs_fsync_path(const char *path)
{
	return fsync_open(path, O_RDONLY);
}

int
fs_free_bytes(const char *path, uint64_t *out)
{
	struct statvfs st;

	if (statvfs(path, &st) < 0)
		return -errno;
	*out = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	return 0;
}

static int
du_at(int dirfd, uint64_t *sum, int depth)
{
	DIR *d;
	struct dirent *e;
	struct stat st;
	int r = 0;

	if (depth > 16) {
		close(dirfd);
		return -ELOOP;
	}
	d = fdopendir(dirfd);
	if (!d) {
		r = -errno;
		close(dirfd);
		return r;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;  /* removed meanwhile */
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, e->d_name,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (sub >= 0)
				(void)du_at(sub, sum, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			*sum += (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(d);
	return r;
}

int
fs_du(const char *path, uint64_t *out)
{
	int fd;

	*out = 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return du_at(fd, out, 0);
}

/*
 * fs.h - small file-system helpers shared by the spool, the folder
 * destination and the tests. All return 0 or a negative errno.
 */
#ifndef TRIAGED_FS_H
#define TRIAGED_FS_H

#include <stddef.h>
#include <stdint.h>

/* mkdir -p with MODE; existing directories are fine. */
int fs_mkdir_p(const char *path, unsigned mode);
/* fsync the directory PATH (after a rename or create inside it). */
int fs_fsync_dir(const char *path);
/* fsync the file PATH. */
int fs_fsync_path(const char *path);
/* Free bytes for an unprivileged user on the file system holding PATH. */
int fs_free_bytes(const char *path, uint64_t *out);
/* Sum of st_blocks*512 of regular files under PATH (recursive). */
int fs_du(const char *path, uint64_t *out);
/* snprintf into BUF that fails with -ENAMETOOLONG instead of truncating. */
int fs_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

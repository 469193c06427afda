/*
 * dest_driver - send files to one configured destination through the
 * destination interface (src/dest.h), without the daemon, and print one
 * TSV line per file. Used by the e2e cases 6xx and bench/forward.
 *
 *   dest_driver -c CONF -d NAME [options] FILE...
 *   dest_driver -c CONF -d NAME --echo
 *
 * Options:
 *   --batch N       files per send() call (default: all in one call, i.e. one
 *                   association / request)
 *   --parallel P    P threads, each with its own open() state, each sending a
 *                   consecutive 1/P of the files (default 1)
 *   --deadline S    seconds each send() gets (default 600)
 *   --no-meta       do not read the files' UIDs first (items carry the path
 *                   only; the destination reads what it needs). Without it,
 *                   the UIDs come from dicom_meta_read(), or for a file it
 *                   refuses (malformed), the SOP Instance UID of the File Meta
 *   --log LEVEL     err, warning (default), notice, info, debug
 *
 * Output (stdout), one line per file in the order given:
 *   PATH <TAB> OK|RETRY|FAIL <TAB> 0xSSSS (DIMSE status, 0xFFFF none) <TAB> MESSAGE
 * then on stderr: "dest_driver: N files, B bytes, T s, X MB/s, ok=a retry=b
 * fail=c" (MB = 10^6 bytes). With --echo: "echo <TAB> OK" or
 * "echo <TAB> ERROR <TAB> why".
 *
 * Exit: 0 every file OK (or echo OK); 1 some file not OK (or echo failed);
 * 2 usage, config or open error.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "dest.h"
#include "dicom/dicom.h"
#include "log.h"

struct file {
	const char *path;
	uint64_t size;
	struct dicom_meta meta;
	bool meta_ok;
	char meta_sop[DICOM_UID_LEN + 1];   /* from the File Meta, when meta failed */
	struct dest_item item;
	struct dest_item_result res;
};

struct worker {
	pthread_t thread;
	const struct config *cfg;
	const struct config_destination *dest;
	const struct dest_type *type;
	struct file *files;
	size_t n, batch;
	int deadline_s;
	int rc;                        /* 0, or 2 when open() failed */
	char err[512];
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct dest_item *items;
	struct dest_item_result *res;
	void *state = NULL;

	if (w->type->ops->open(w->cfg, w->dest, &state, w->err, sizeof(w->err)) < 0) {
		w->rc = 2;
		return NULL;
	}
	items = calloc(w->batch, sizeof(*items));
	res = calloc(w->batch, sizeof(*res));
	if (!items || !res) {
		snprintf(w->err, sizeof(w->err), "out of memory");
		w->rc = 2;
		goto out;
	}
	for (size_t off = 0; off < w->n; off += w->batch) {
		size_t k = w->n - off < w->batch ? w->n - off : w->batch;

		for (size_t i = 0; i < k; i++) {
			items[i] = w->files[off + i].item;
			memset(&res[i], 0, sizeof(res[i]));
			res[i].status = DEST_RETRY;
			res[i].dimse_status = 0xFFFF;
			snprintf(res[i].message, sizeof(res[i].message), "not filled in by send()");
		}
		(void)w->type->ops->send(state, items, k, res,
		    mono_ms() + (int64_t)w->deadline_s * 1000);
		for (size_t i = 0; i < k; i++)
			w->files[off + i].res = res[i];
	}
out:
	free(items);
	free(res);
	w->type->ops->close(state);
	return NULL;
}

/* The Media Storage SOP Instance UID (0002,0003) of a Part 10 file, for
 * files dicom_meta_read() refuses (malformed test files): the destinations
 * still need a UID to match answers (STOW-RS) or to name files (folder). */
static bool
meta_sop_uid(const char *path, char *out, size_t outlen)
{
	unsigned char b[65536];
	size_t n, pos = 132;
	FILE *f = fopen(path, "rb");

	if (!f)
		return false;
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	if (n < 132 || memcmp(b + 128, "DICM", 4) != 0)
		return false;
	while (pos + 8 <= n && b[pos] == 2 && b[pos + 1] == 0) {
		unsigned elem = b[pos + 2] | b[pos + 3] << 8;
		bool lng = (b[pos + 4] == 'O' || b[pos + 4] == 'S' || b[pos + 4] == 'U') &&
		           (b[pos + 5] == 'B' || b[pos + 5] == 'W' || b[pos + 5] == 'Q' ||
		            b[pos + 5] == 'N' || b[pos + 5] == 'T');
		size_t hdr = lng ? 12 : 8, len;

		if (pos + hdr > n)
			return false;
		len = lng ? (size_t)(b[pos + 8] | b[pos + 9] << 8 | b[pos + 10] << 16 |
		                     (size_t)b[pos + 11] << 24)
		          : (size_t)(b[pos + 6] | b[pos + 7] << 8);
		if (len > n || pos + hdr + len > n)
			return false;
		if (elem == 0x0003 && len > 0 && len < outlen) {
			memcpy(out, b + pos + hdr, len);
			out[len] = '\0';
			while (len > 0 && (out[len - 1] == '\0' || out[len - 1] == ' '))
				out[--len] = '\0';
			return len > 0;
		}
		pos += hdr + len;
	}
	return false;
}

static const char *
status_name(int s)
{
	return s == DEST_OK ? "OK" : s == DEST_RETRY ? "RETRY" : s == DEST_FAIL ? "FAIL" : "?";
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: dest_driver -c CONF -d NAME [--batch N] [--parallel P] [--deadline S]\n"
	           "                   [--no-meta] [--log LEVEL] FILE...\n"
	           "       dest_driver -c CONF -d NAME --echo\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dest", required_argument, NULL, 'd' },
		{ "batch", required_argument, NULL, 'b' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "deadline", required_argument, NULL, 't' },
		{ "no-meta", no_argument, NULL, 'M' },
		{ "echo", no_argument, NULL, 'e' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL, *name = NULL;
	long batch = 0, parallel = 1, deadline = 600;
	bool echo = false, no_meta = false;
	struct config *cfg = NULL;
	const struct config_destination *dest;
	const struct dest_type *type;
	struct file *files = NULL;
	struct worker *workers = NULL;
	char err[512];
	int c, rc = 0, level = LOG_WARNING;
	size_t n, ok = 0, retry = 0, fail = 0;
	uint64_t bytes = 0;
	int64_t t0, t1;

	log_set_ident("dest_driver");
	while ((c = getopt_long(argc, argv, "c:d:b:p:t:Mel:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'd': name = optarg; break;
		case 'b': batch = strtol(optarg, NULL, 10); break;
		case 'p': parallel = strtol(optarg, NULL, 10); break;
		case 't': deadline = strtol(optarg, NULL, 10); break;
		case 'M': no_meta = true; break;
		case 'e': echo = true; break;
		case 'l':
			if ((level = log_level_from_name(optarg)) < 0) {
				fprintf(stderr, "dest_driver: unknown log level %s\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	log_set_level(level);
	if (!conf || !name || parallel < 1 || parallel > 64 || batch < 0 || deadline < 1 ||
	    (!echo && optind >= argc)) {
		usage(stderr);
		return 2;
	}
	if (config_load(conf, &cfg, stderr) < 0)
		return 2;
	if (!(dest = config_destination_find(cfg, name))) {
		fprintf(stderr, "dest_driver: no [destination %s] in %s\n", name, conf);
		config_unref(cfg);
		return 2;
	}
	if (!(type = dest_type_find(dest->type))) {
		fprintf(stderr, "dest_driver: destination type %s is not built in\n", dest->type);
		config_unref(cfg);
		return 2;
	}
	if (dicom_global_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "dest_driver: %s\n", err);
		config_unref(cfg);
		return 2;
	}
	dicom_log_setup(level);

	if (echo) {
		void *state = NULL;

		if (type->ops->open(cfg, dest, &state, err, sizeof(err)) < 0) {
			fprintf(stderr, "dest_driver: open: %s\n", err);
			rc = 2;
		} else if (!type->ops->echo) {
			printf("echo\tERROR\tthis destination type has no echo\n");
			rc = 1;
		} else {
			err[0] = '\0';
			if (type->ops->echo(state, err, sizeof(err)) == 0) {
				printf("echo\tOK\n");
			} else {
				printf("echo\tERROR\t%s\n", err);
				rc = 1;
			}
		}
		if (state)
			type->ops->close(state);
		goto done;
	}

	n = (size_t)(argc - optind);
	files = calloc(n, sizeof(*files));
	workers = calloc((size_t)parallel, sizeof(*workers));
	if (!files || !workers) {
		fprintf(stderr, "dest_driver: out of memory\n");
		rc = 2;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct file *f = &files[i];
		struct stat st;

		f->path = argv[optind + (int)i];
		if (stat(f->path, &st) == 0)
			f->size = (uint64_t)st.st_size;
		f->item.path = f->path;
		if (!no_meta && dicom_meta_read(f->path, &f->meta, err, sizeof(err)) == 0) {
			f->meta_ok = true;
			f->item.sop_uid = f->meta.sop_uid;
			f->item.sop_class_uid = f->meta.sop_class_uid;
			f->item.transfer_syntax = f->meta.transfer_syntax;
			f->item.study_uid = f->meta.study_uid;
		} else if (!no_meta && meta_sop_uid(f->path, f->meta_sop, sizeof(f->meta_sop))) {
			f->item.sop_uid = f->meta_sop;
		}
	}
	if ((size_t)parallel > n)
		parallel = (long)n;

	t0 = mono_ms();
	for (long w = 0; w < parallel; w++) {
		size_t from = n * (size_t)w / (size_t)parallel;
		size_t to = n * (size_t)(w + 1) / (size_t)parallel;
		struct worker *wk = &workers[w];

		wk->cfg = cfg;
		wk->dest = dest;
		wk->type = type;
		wk->files = files + from;
		wk->n = to - from;
		wk->batch = batch > 0 ? (size_t)batch : (wk->n > 0 ? wk->n : 1);
		wk->deadline_s = (int)deadline;
		if (pthread_create(&wk->thread, NULL, worker_main, wk) != 0) {
			fprintf(stderr, "dest_driver: cannot start a thread\n");
			return 2;
		}
	}
	for (long w = 0; w < parallel; w++) {
		pthread_join(workers[w].thread, NULL);
		if (workers[w].rc) {
			fprintf(stderr, "dest_driver: open: %s\n", workers[w].err);
			rc = 2;
		}
	}
	t1 = mono_ms();
	if (rc)
		goto done;

	for (size_t i = 0; i < n; i++) {
		const struct file *f = &files[i];

		printf("%s\t%s\t0x%04X\t%s\n", f->path, status_name(f->res.status),
		       (unsigned)f->res.dimse_status, f->res.message);
		if (f->res.status == DEST_OK) {
			ok++;
			bytes += f->size;
		} else if (f->res.status == DEST_RETRY) {
			retry++;
		} else {
			fail++;
		}
	}
	fflush(stdout);
	{
		double s = (double)(t1 - t0) / 1000.0;

		fprintf(stderr, "dest_driver: %zu files, %llu bytes, %.3f s, %.1f MB/s, "
		        "ok=%zu retry=%zu fail=%zu\n", n, (unsigned long long)bytes, s,
		        s > 0 ? (double)bytes / 1e6 / s : 0.0, ok, retry, fail);
	}
	rc = ok == n ? 0 : 1;
done:
	free(files);
	free(workers);
	dicom_global_done();
	config_unref(cfg);
	return rc;
}

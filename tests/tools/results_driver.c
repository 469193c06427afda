/*
 * results_driver.c - write a job's results (SR, overlays, summary) from a
 * normalized result JSON file and the job's source files, without the
 * daemon: the e2e cases 5xx and bench/results run the writers through it.
 *
 * usage: results_driver [options] RESULT.json OUTDIR SOURCE...
 *   --template tid1500|mammo-cad   SR template (default tid1500)
 *   --route NAME                   route name (default "test")
 *   --backend NAME                 backend name (default "exec")
 *   --not-for-diagnosis            as the reference backend's results
 *   --job N                        job id (default 1)
 *   --uid-root ROOT                UID root ("" = 2.25, the default)
 *   --render                       also write OUTDIR/render-K.pgm: the 8-bit
 *                                  rendering overlay K starts from
 *   --no-sr, --no-overlays, --no-summary
 *   --repeat N                     write everything N times; times are
 *                                  the median of the N runs
 *
 * The result is parsed and validated as the daemon does (result_parse_json
 * against the sources' SOP Instance UIDs and sizes). It writes OUTDIR/sr.dcm,
 * OUTDIR/overlay-K.dcm for the K-th source (in the order given, repeated
 * SOP Instance UIDs once) that has findings, and OUTDIR/summary.dcm; the SR
 * in one new series, overlays and summary in another. Prints one line per
 * object ("sr PATH", "overlay PATH SOURCE", "summary PATH") and one line of
 * timing ("time_ms sr=… overlays=… summary=… total=…"). Exit 0, 1 when a
 * writer fails (its message on stderr), 2 on usage or input errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dicom/dicom.h"
#include "log.h"
#include "result.h"
#include "uid.h"

#define MAX_SOURCES 4096

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= RESULT_MAX_JSON &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* The rendering an overlay starts from, as a binary PGM (8 bits). */
static int
write_render(const char *src, uint32_t frame, const char *out)
{
	struct triaged_image *img = NULL;
	char err[256];
	FILE *f;
	int e = dicom_image_load(src, frame, 2048, &img, err, sizeof(err));

	if (e < 0) {
		fprintf(stderr, "results_driver: %s: %s\n", src, err);
		return e;
	}
	f = fopen(out, "wb");
	if (!f) {
		dicom_image_free(img);
		return -errno;
	}
	fprintf(f, "P5\n%u %u\n255\n", img->width, img->height);
	for (size_t i = 0; i < (size_t)img->width * img->height; i++)
		fputc(img->pixels[i] >> 8, f);
	e = fclose(f) == 0 ? 0 : -EIO;
	dicom_image_free(img);
	return e;
}

static void
usage(void)
{
	fprintf(stderr, "usage: results_driver [--template tid1500|mammo-cad] [--route NAME] "
	    "[--backend NAME]\n"
	    "       [--not-for-diagnosis] [--job N] [--uid-root ROOT] [--render] [--no-sr]\n"
	    "       [--no-overlays] [--no-summary] [--repeat N] RESULT.json OUTDIR SOURCE...\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "template", required_argument, NULL, 't' },
		{ "route", required_argument, NULL, 'r' },
		{ "backend", required_argument, NULL, 'b' },
		{ "not-for-diagnosis", no_argument, NULL, 'n' },
		{ "job", required_argument, NULL, 'j' },
		{ "uid-root", required_argument, NULL, 'u' },
		{ "render", no_argument, NULL, 'R' },
		{ "no-sr", no_argument, NULL, '1' },
		{ "no-overlays", no_argument, NULL, '2' },
		{ "no-summary", no_argument, NULL, '3' },
		{ "repeat", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dicom_result_info info = {
		.route = "test", .backend = "exec", .sr_template = "tid1500", .job_id = 1,
		.not_for_diagnosis = false, .manufacturer = "triaged",
		.software_version = TRIAGED_VERSION, .uid_root = "",
	};
	bool render = false, do_sr = true, do_ov = true, do_sum = true;
	int repeat = 1, c, rc = 2;
	char err[512], msg[512];

	log_set_ident("results_driver");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': info.sr_template = optarg; break;
		case 'r': info.route = optarg; break;
		case 'b': info.backend = optarg; break;
		case 'n': info.not_for_diagnosis = true; break;
		case 'j': info.job_id = atoll(optarg); break;
		case 'u': info.uid_root = optarg; break;
		case 'R': render = true; break;
		case '1': do_sr = false; break;
		case '2': do_ov = false; break;
		case '3': do_sum = false; break;
		case 'N':
			repeat = atoi(optarg);
			if (repeat < 1 || repeat > 1000) {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (argc - optind < 3 || argc - optind - 2 > MAX_SOURCES) {
		usage();
		return 2;
	}
	const char *json_path = argv[optind], *outdir = argv[optind + 1];
	const char *const *sources = (const char *const *)&argv[optind + 2];
	size_t nsources = (size_t)(argc - optind - 2);

	if (dicom_global_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "results_driver: %s\n", err);
		return 2;
	}
	struct dicom_meta *meta = calloc(nsources, sizeof(*meta));
	struct result_image *images = calloc(nsources, sizeof(*images));
	size_t *ov_src = calloc(nsources, sizeof(*ov_src));
	double *t_sr = calloc((size_t)repeat, sizeof(double)), *t_ov = calloc((size_t)repeat,
	    sizeof(double)), *t_sum = calloc((size_t)repeat, sizeof(double)),
	    *t_all = calloc((size_t)repeat, sizeof(double));
	struct triaged_result *r = NULL;
	char *json = NULL;
	size_t jlen = 0, nov = 0;

	if (!meta || !images || !ov_src || !t_sr || !t_ov || !t_sum || !t_all) {
		fprintf(stderr, "results_driver: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < nsources; i++) {
		int e = dicom_meta_read(sources[i], &meta[i], err, sizeof(err));
		if (e < 0) {
			fprintf(stderr, "results_driver: %s: %s\n", sources[i],
			    err[0] ? err : strerror(-e));
			goto out;
		}
		images[i].sop_uid = meta[i].sop_uid;
		images[i].columns = meta[i].columns;
		images[i].rows = meta[i].rows;
		images[i].frames = meta[i].frames ? meta[i].frames : 1;
	}
	json = read_file(json_path, &jlen);
	if (!json) {
		fprintf(stderr, "results_driver: %s: cannot read (or larger than %d bytes)\n",
		    json_path, RESULT_MAX_JSON);
		goto out;
	}
	r = result_new(images, nsources);
	if (!r) {
		fprintf(stderr, "results_driver: out of memory\n");
		goto out;
	}
	if (result_parse_json(r, json, jlen, msg, sizeof(msg)) != TRIAGED_OK ||
	    result_finish(r) < 0) {
		fprintf(stderr, "results_driver: %s: %s\n", json_path, msg[0] ? msg : r->error);
		goto out;
	}
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "results_driver: %s: %s\n", outdir, strerror(errno));
		goto out;
	}

	/* sources with findings, each SOP Instance UID once */
	for (size_t i = 0; i < nsources; i++) {
		bool dup = false, has = false;
		for (size_t k = 0; k < i; k++)
			dup = dup || strcmp(meta[k].sop_uid, meta[i].sop_uid) == 0;
		for (size_t k = 0; k < r->nfindings; k++)
			has = has || strcmp(r->findings[k].sop_uid, meta[i].sop_uid) == 0;
		if (!dup && has)
			ov_src[nov++] = i;
	}

	char sr_series[UID_MAX + 1], sc_series[UID_MAX + 1], sop[UID_MAX + 1];
	char path[4096];
	rc = 1;
	for (int run = 0; run < repeat; run++) {
		bool last = run == repeat - 1;
		double t0 = now_ms(), t1, t2, t3;
		if (uid_generate(info.uid_root, sr_series) < 0 ||
		    uid_generate(info.uid_root, sc_series) < 0) {
			fprintf(stderr, "results_driver: cannot make UIDs\n");
			goto out;
		}
		if (do_sr) {
			struct dicom_object_id id = { sr_series, sop, 990, 1 };
			if (uid_generate(info.uid_root, sop) < 0)
				goto out;
			snprintf(path, sizeof(path), "%s/sr.dcm", outdir);
			int e = dicom_write_sr(&info, r, sources, nsources, &id, path, err, sizeof(err));
			if (e < 0) {
				fprintf(stderr, "results_driver: SR: %s (%s)\n", err, strerror(-e));
				goto out;
			}
			if (last)
				printf("sr %s\n", path);
		}
		t1 = now_ms();
		if (do_ov) {
			for (size_t k = 0; k < nov; k++) {
				struct dicom_object_id id = { sc_series, sop, 991, (int)k + 1 };
				if (uid_generate(info.uid_root, sop) < 0)
					goto out;
				snprintf(path, sizeof(path), "%s/overlay-%zu.dcm", outdir, k + 1);
				int e = dicom_write_overlay(&info, r, sources[ov_src[k]], &id, path, err,
				    sizeof(err));
				if (e < 0) {
					fprintf(stderr, "results_driver: overlay of %s: %s (%s)\n",
					    sources[ov_src[k]], err, strerror(-e));
					goto out;
				}
				if (last)
					printf("overlay %s %s\n", path, sources[ov_src[k]]);
			}
		}
		t2 = now_ms();
		if (do_sum) {
			struct dicom_object_id id = { sc_series, sop, 991, (int)nov + 1 };
			if (uid_generate(info.uid_root, sop) < 0)
				goto out;
			snprintf(path, sizeof(path), "%s/summary.dcm", outdir);
			int e = dicom_write_summary(&info, r, sources, nsources, &id, path, err,
			    sizeof(err));
			if (e < 0) {
				fprintf(stderr, "results_driver: summary: %s (%s)\n", err, strerror(-e));
				goto out;
			}
			if (last)
				printf("summary %s\n", path);
		}
		t3 = now_ms();
		t_sr[run] = t1 - t0;
		t_ov[run] = t2 - t1;
		t_sum[run] = t3 - t2;
		t_all[run] = t3 - t0;
	}
	if (render) {
		for (size_t k = 0; k < nov; k++) {
			uint32_t frame = 1;
			for (size_t i = 0; i < r->nfindings; i++)
				if (strcmp(r->findings[i].sop_uid, meta[ov_src[k]].sop_uid) == 0) {
					frame = r->findings[i].frame ? r->findings[i].frame : 1;
					break;
				}
			snprintf(path, sizeof(path), "%s/render-%zu.pgm", outdir, k + 1);
			if (write_render(sources[ov_src[k]], frame, path) < 0)
				goto out;
		}
	}
	printf("time_ms sr=%.1f overlays=%.1f summary=%.1f total=%.1f runs=%d overlays_written=%zu\n",
	    median(t_sr, repeat), median(t_ov, repeat), median(t_sum, repeat),
	    median(t_all, repeat), repeat, nov);
	rc = 0;
out:
	result_free(r);
	free(json);
	free(meta);
	free(images);
	free(ov_src);
	free(t_sr);
	free(t_ov);
	free(t_sum);
	free(t_all);
	dicom_global_done();
	return rc;
}

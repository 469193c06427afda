/*
 * analyse_driver.c - the timing loop of bench/analyse: the reference
 * backend's cost per image, split into decoding (dicom_image_load at the
 * backend's REFERENCE_MAX_DIM) and analysis (reference_analyze_image), plus
 * the whole backend call through the plug-in ABI with a fake host (one
 * instance per study: decode + analysis + result building).
 *
 * usage: bench_analyse [--runs N] [--warmup N] FILE...
 * Prints one line per file: name, transfer syntax, columns x rows, and the
 * median and minimum milliseconds of each part over N runs. Exit 0, or 1 if
 * a file cannot be decoded or analysed, 2 on usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_reference.h"
#include "dicom/dicom.h"
#include "fake_host.h"
#include "log.h"

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

static const char *
syntax_name(const char *uid)
{
	static const struct { const char *uid, *name; } names[] = {
		{ "1.2.840.10008.1.2", "implicit-le" },
		{ "1.2.840.10008.1.2.1", "explicit-le" },
		{ "1.2.840.10008.1.2.1.99", "deflated" },
		{ "1.2.840.10008.1.2.2", "explicit-be" },
		{ "1.2.840.10008.1.2.4.50", "jpeg-baseline" },
		{ "1.2.840.10008.1.2.4.51", "jpeg-extended" },
		{ "1.2.840.10008.1.2.4.57", "jpeg-lossless" },
		{ "1.2.840.10008.1.2.4.70", "jpeg-lossless-sv1" },
		{ "1.2.840.10008.1.2.4.80", "jpeg-ls-lossless" },
		{ "1.2.840.10008.1.2.4.81", "jpeg-ls-near-lossless" },
		{ "1.2.840.10008.1.2.4.90", "j2k-lossless" },
		{ "1.2.840.10008.1.2.4.91", "j2k" },
		{ "1.2.840.10008.1.2.5", "rle" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(uid, names[i].uid) == 0)
			return names[i].name;
	return uid[0] ? uid : "-";
}

/* One file: RUNS timed repetitions after WARMUP untimed ones. */
static int
bench_file(struct fake_host *fh, const char *path, int runs, int warmup)
{
	struct dicom_meta m;
	char err[256], msg[256];
	double *dec = calloc((size_t)runs, sizeof(double));
	double *ana = calloc((size_t)runs, sizeof(double));
	double *all = calloc((size_t)runs, sizeof(double));
	struct triaged_result *res = malloc(sizeof(*res));
	void *state = NULL;
	int ret = 1;

	if (!dec || !ana || !all || !res) {
		fprintf(stderr, "bench_analyse: out of memory\n");
		goto cleanup;
	}
	if (dicom_meta_read(path, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_analyse: %s: %s\n", path, err);
		goto cleanup;
	}
	struct triaged_instance in;
	memset(&in, 0, sizeof(in));
	in.sop_instance_uid = m.sop_uid;
	in.path = path;
	in.modality = m.modality;
	in.body_part = m.body_part;
	in.rows = m.rows;
	in.columns = m.columns;
	in.frames = 1;
	struct triaged_study st;
	memset(&st, 0, sizeof(st));
	st.route = "bench";
	st.study_uid = m.study_uid;
	st.modality = m.modality;
	st.patient_age_years = -1;
	st.ninstances = 1;
	st.instances = &in;
	if (backend_reference.ops->open(&fh->host, NULL, &state, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_analyse: open: %s\n", err);
		goto cleanup;
	}

	size_t nregions = 0;
	for (int i = -warmup; i < runs; i++) {
		struct triaged_image *img = NULL;
		struct reference_region regs[REFERENCE_MAX_PER_IMAGE];
		double t0 = now_ms();
		if (dicom_image_load(path, 1, REFERENCE_MAX_DIM, &img, err, sizeof(err)) < 0) {
			fprintf(stderr, "bench_analyse: %s: %s\n", path, err);
			goto cleanup;
		}
		double t1 = now_ms();
		if (reference_analyze_image(img, REFERENCE_REPORT_MIN, regs,
		    REFERENCE_MAX_PER_IMAGE, &nregions) < 0) {
			dicom_image_free(img);
			fprintf(stderr, "bench_analyse: %s: out of memory\n", path);
			goto cleanup;
		}
		double t2 = now_ms();
		dicom_image_free(img);

		fake_result_init(res, &st);
		double t3 = now_ms();
		int r = backend_reference.ops->analyze(state, &st, res, 0, msg, sizeof(msg));
		double t4 = now_ms();
		if (r != TRIAGED_OK) {
			fprintf(stderr, "bench_analyse: %s: analyze: %s\n", path, msg);
			goto cleanup;
		}
		if (i >= 0) {
			dec[i] = t1 - t0;
			ana[i] = t2 - t1;
			all[i] = t4 - t3;
		}
	}
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	double dmin = dec[0], amin = ana[0], tmin = all[0];
	for (int i = 1; i < runs; i++) {
		dmin = dec[i] < dmin ? dec[i] : dmin;
		amin = ana[i] < amin ? ana[i] : amin;
		tmin = all[i] < tmin ? all[i] : tmin;
	}
	printf("%-2s %-22s %5ux%-5u %8.1f %8.1f %8.1f %8.1f %9.1f %8.1f  %zu  %s\n",
	    m.modality, syntax_name(m.transfer_syntax), m.columns, m.rows,
	    median(dec, runs), dmin, median(ana, runs), amin, median(all, runs), tmin,
	    res->nfindings, name);
	fflush(stdout);
	ret = 0;

cleanup:
	backend_reference.ops->close(state);
	free(dec);
	free(ana);
	free(all);
	free(res);
	return ret;
}

int
main(int argc, char **argv)
{
	int runs = 7, warmup = 1, first = 1, failed = 0;
	char err[256];
	struct fake_host fh;

	while (first < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "--runs") == 0 && first + 1 < argc) {
			runs = atoi(argv[first + 1]);
			first += 2;
		} else if (strcmp(argv[first], "--warmup") == 0 && first + 1 < argc) {
			warmup = atoi(argv[first + 1]);
			first += 2;
		} else {
			break;
		}
	}
	if (first >= argc || runs < 1 || warmup < 0) {
		fprintf(stderr, "usage: bench_analyse [--runs N] [--warmup N] FILE...\n");
		return 2;
	}
	log_set_level(LOG_ERR);
	if (dicom_global_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_analyse: %s\n", err);
		return 1;
	}
	fake_host_init(&fh);
	printf("# reference backend at max_dim %d, %d runs (+%d warm-up) per file; "
	    "milliseconds per image\n", REFERENCE_MAX_DIM, runs, warmup);
	printf("%-2s %-22s %11s %8s %8s %8s %8s %9s %8s  %s  %s\n", "mo", "syntax", "size",
	    "decode", "(min)", "analyse", "(min)", "backend", "(min)", "n", "file");
	for (int i = first; i < argc; i++)
		failed |= bench_file(&fh, argv[i], runs, warmup);
	fake_host_done(&fh);
	dicom_global_done();
	return failed ? 1 : 0;
}

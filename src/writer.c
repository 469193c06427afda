/*
 * writer.c - the writers' stage, C side: UIDs, series numbers, files.
 *
 * DESIGN: the DICOM objects are made in src/dicom/dicom_sr.cc and
 * dicom_sc.cc; here each gets its UIDs (uid.c, the configured uid_root),
 * is written to spool/tmp, read back (dicom_meta_read: it must parse, and
 * it tells the SOP class and transfer syntax to record), and committed
 * under results/ like a received instance. The worker records the list in
 * the same transaction that marks the job done, so results are either all
 * known or none.
 */
#include "writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dicom/dicom.h"
#include "log.h"
#include "result.h"
#include "spool.h"
#include "uid.h"

/* Series numbers: 99RR1 SR, 99RR2 overlays, 99RR3 summary, RR the route's
 * index, so the results of two routes of a study stay apart. */
static int
series_number(const struct config *cfg, const char *route, int kind)
{
	int idx = 0;

	for (size_t i = 0; i < cfg->nroutes; i++)
		if (strcmp(cfg->routes[i].name, route) == 0)
			idx = (int)i;
	return 99000 + (idx % 100) * 10 + kind;
}

/* Read back TMP, commit it, fill W. */
static int
place(const struct spool *spool, const char *study_uid, const char *tmp, struct written *w,
      char *err, size_t errlen)
{
	struct dicom_meta m;
	struct stat st;
	int r;

	if ((r = dicom_meta_read(tmp, &m, err, errlen)) < 0)
		return r;
	if (strcmp(m.sop_uid, w->sop_uid) != 0) {
		snprintf(err, errlen, "written %s holds SOP Instance UID %s", w->kind, m.sop_uid);
		return -EIO;
	}
	snprintf(w->sop_class_uid, sizeof(w->sop_class_uid), "%s", m.sop_class_uid);
	snprintf(w->transfer_syntax, sizeof(w->transfer_syntax), "%s", m.transfer_syntax);
	r = spool_commit_result(spool, tmp, study_uid, w->sop_uid, w->path, sizeof(w->path));
	if (r < 0) {
		snprintf(err, errlen, "cannot place the %s in the spool: %s", w->kind, strerror(-r));
		return r;
	}
	if (stat(w->path, &st) == 0)
		w->size = (int64_t)st.st_size;
	return 0;
}

int
writer_write(const struct config *cfg, const struct spool *spool,
             const struct queue_job *job, const struct triaged_result *res,
             bool not_for_diagnosis, struct written **out, size_t *n,
             char *err, size_t errlen)
{
	const char **sources = NULL;
	struct written *w = NULL;
	size_t nw = 0, cap;
	char tmp[PATH_MAX], sr_series[UID_MAX + 1], ov_series[UID_MAX + 1],
	     sum_series[UID_MAX + 1];
	const char *root = cfg->analysis.uid_root ? cfg->analysis.uid_root : "";
	struct dicom_result_info info = {
		.route = job->route, .backend = job->backend,
		.sr_template = job->sr_template && *job->sr_template ? job->sr_template : "tid1500",
		.job_id = job->id, .not_for_diagnosis = not_for_diagnosis,
		.manufacturer = "triaged", .software_version = TRIAGED_VERSION, .uid_root = root,
	};
	int r = -ENOMEM, overlay_no = 0;

	*out = NULL;
	*n = 0;
	if (job->ninstances == 0) {
		snprintf(err, errlen, "job has no instances");
		return -EINVAL;
	}
	cap = job->ninstances + 2;
	sources = calloc(job->ninstances, sizeof(*sources));
	w = calloc(cap, sizeof(*w));
	if (!sources || !w)
		goto fail;
	for (size_t i = 0; i < job->ninstances; i++)
		sources[i] = job->instances[i].path;
	if ((r = uid_generate(root, sr_series)) < 0 || (r = uid_generate(root, ov_series)) < 0 ||
	    (r = uid_generate(root, sum_series)) < 0) {
		snprintf(err, errlen, "cannot make UIDs");
		goto fail;
	}

	/* the structured report */
	snprintf(w[nw].kind, sizeof(w[nw].kind), "sr");
	snprintf(w[nw].series_uid, sizeof(w[nw].series_uid), "%s", sr_series);
	if ((r = uid_generate(root, w[nw].sop_uid)) < 0 ||
	    (r = spool_tmp_path(spool, tmp, sizeof(tmp))) < 0)
		goto fail;
	{
		struct dicom_object_id id = { .series_uid = sr_series, .sop_uid = w[nw].sop_uid,
		    .series_number = series_number(cfg, job->route, 1), .instance_number = 1 };
		r = dicom_write_sr(&info, res, sources, job->ninstances, &id, tmp, err, errlen);
	}
	if (r < 0 || (r = place(spool, job->study_uid, tmp, &w[nw], err, errlen)) < 0) {
		(void)unlink(tmp);
		goto fail;
	}
	nw++;

	/* one overlay per source image with findings */
	for (size_t i = 0; i < job->ninstances; i++) {
		const struct queue_instance *q = &job->instances[i];
		bool any = false;
		for (size_t f = 0; f < res->nfindings && !any; f++)
			any = strcmp(res->findings[f].sop_uid, q->sop_uid) == 0;
		if (!any)
			continue;
		snprintf(w[nw].kind, sizeof(w[nw].kind), "overlay");
		snprintf(w[nw].series_uid, sizeof(w[nw].series_uid), "%s", ov_series);
		snprintf(w[nw].source_sop_uid, sizeof(w[nw].source_sop_uid), "%s", q->sop_uid);
		if ((r = uid_generate(root, w[nw].sop_uid)) < 0 ||
		    (r = spool_tmp_path(spool, tmp, sizeof(tmp))) < 0)
			goto fail;
		struct dicom_object_id id = { .series_uid = ov_series, .sop_uid = w[nw].sop_uid,
		    .series_number = series_number(cfg, job->route, 2),
		    .instance_number = ++overlay_no };
		r = dicom_write_overlay(&info, res, q->path, &id, tmp, err, errlen);
		if (r < 0 || (r = place(spool, job->study_uid, tmp, &w[nw], err, errlen)) < 0) {
			(void)unlink(tmp);
			goto fail;
		}
		nw++;
	}

	/* the summary page */
	snprintf(w[nw].kind, sizeof(w[nw].kind), "summary");
	snprintf(w[nw].series_uid, sizeof(w[nw].series_uid), "%s", sum_series);
	if ((r = uid_generate(root, w[nw].sop_uid)) < 0 ||
	    (r = spool_tmp_path(spool, tmp, sizeof(tmp))) < 0)
		goto fail;
	{
		struct dicom_object_id id = { .series_uid = sum_series, .sop_uid = w[nw].sop_uid,
		    .series_number = series_number(cfg, job->route, 3), .instance_number = 1 };
		r = dicom_write_summary(&info, res, sources, job->ninstances, &id, tmp, err, errlen);
	}
	if (r < 0 || (r = place(spool, job->study_uid, tmp, &w[nw], err, errlen)) < 0) {
		(void)unlink(tmp);
		goto fail;
	}
	nw++;

	free(sources);
	*out = w;
	*n = nw;
	return 0;
fail:
	if (r == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	for (size_t i = 0; w && i < nw; i++)
		(void)unlink(w[i].path);
	free(sources);
	free(w);
	return r < 0 ? r : -EIO;
}

void
writer_as_rows(const struct written *w, size_t n, struct queue_result *rows)
{
	for (size_t i = 0; i < n; i++)
		rows[i] = (struct queue_result){
			.kind = w[i].kind, .sop_uid = w[i].sop_uid, .series_uid = w[i].series_uid,
			.sop_class_uid = w[i].sop_class_uid, .transfer_syntax = w[i].transfer_syntax,
			.source_sop_uid = w[i].source_sop_uid, .path = w[i].path, .size = w[i].size,
		};
}

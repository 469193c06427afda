/*
 * receiver.c - C-STORE policy between the DICOM SCP and the spool/database.
 *
 * DESIGN: dicom_scp.cc calls back here on the association's own thread.
 * For each C-STORE: the dataset lands in spool/tmp (DCMTK writes it bit for
 * bit), its metadata is read and checked, the file is fsynced and renamed
 * into studies/<study>/<sop>.dcm, the directory fsynced, the row committed,
 * and only then does the SCP send Success. Any failure before that leaves
 * nothing visible and answers an error status: A700 for our own trouble
 * (disk, database: the modality should retry), A900/C000 for a dataset we
 * will never accept.
 */
#include "receiver.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "dicom/dicom.h"
#include "fs.h"
#include "log.h"
#include "spool.h"
#include "uid.h"

/* DIMSE statuses (PS3.4 B.2.3) */
#define ST_SUCCESS          0x0000
#define ST_OUT_OF_RESOURCES 0xA700
#define ST_DATASET_MISMATCH 0xA900
#define ST_CANNOT_UNDERSTAND 0xC000

struct receiver {
	pthread_mutex_t mu;
	struct config *cfg;           /* current snapshot, under mu */
	struct spool *spool;
	struct dicom_scp *scp;
	struct receiver_stats stats;  /* under mu */
};

struct assoc {
	struct receiver *r;
	struct config *cfg;           /* snapshot for the association's life */
	struct db *db;                /* opened at the first C-STORE */
	unsigned stored, failed;
};

static struct config *
current_config(struct receiver *r)
{
	struct config *c;

	pthread_mutex_lock(&r->mu);
	c = config_ref(r->cfg);
	pthread_mutex_unlock(&r->mu);
	return c;
}

static void
count(struct receiver *r, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&r->mu);
	*field += n;
	pthread_mutex_unlock(&r->mu);
}

static bool
ae_listed(const struct config_list *l, const char *ae)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], ae) == 0)
			return true;
	return false;
}

static enum dicom_reject
on_assoc_begin(void *ctx, const struct dicom_assoc_info *info, void **data)
{
	struct receiver *r = ctx;
	struct config *cfg = current_config(r);
	struct assoc *a;
	enum dicom_reject why = DICOM_ACCEPT;

	if (strcmp(info->called_ae, cfg->server.ae_title) != 0)
		why = DICOM_REJECT_CALLED_AE;
	else if (cfg->server.allowed_calling_aes.n > 0 &&
	    !ae_listed(&cfg->server.allowed_calling_aes, info->calling_ae))
		why = DICOM_REJECT_CALLING_AE;

	if (why != DICOM_ACCEPT) {
		log_notice("association id=%llu rejected: %s calling_ae=%s called_ae=%s "
		    "peer=%s", (unsigned long long)info->id,
		    why == DICOM_REJECT_CALLED_AE ? "called AE title not recognized" :
		    "calling AE title not in allowed_calling_aes",
		    info->calling_ae, info->called_ae, info->peer_ip);
		count(r, &r->stats.rejected_assocs, 1);
		config_unref(cfg);
		return why;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		config_unref(cfg);
		return DICOM_REJECT_NO_REASON;
	}
	a->r = r;
	a->cfg = cfg;
	*data = a;
	return DICOM_ACCEPT;
}

static void
on_assoc_end(void *data, const struct dicom_assoc_info *info, const char *how)
{
	struct assoc *a = data;

	if (!a)
		return;
	log_info("association id=%llu %s calling_ae=%s peer=%s stored=%u failed=%u",
	    (unsigned long long)info->id, how, info->calling_ae, info->peer_ip,
	    a->stored, a->failed);
	db_close(a->db);
	config_unref(a->cfg);
	free(a);
}

static void
set_rsp(struct dicom_store_rsp *rsp, uint16_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_rsp(struct dicom_store_rsp *rsp, uint16_t status, const char *fmt, ...)
{
	va_list ap;

	rsp->status = status;
	va_start(ap, fmt);
	vsnprintf(rsp->comment, sizeof(rsp->comment), fmt, ap);
	va_end(ap);
}

static int
on_store_begin(void *data, const struct dicom_store_req *req, char *tmp, size_t tmplen,
               struct dicom_store_rsp *rsp)
{
	struct assoc *a = data;
	uint64_t free_b = 0;
	int r;

	if ((r = spool_tmp_path(a->r->spool, tmp, tmplen)) < 0) {
		tmp[0] = '\0';
		return r;
	}
	if (fs_free_bytes(a->r->spool->root, &free_b) == 0 &&
	    free_b < (uint64_t)a->cfg->storage.min_free_mb * 1024 * 1024) {
		log_warnx("refusing sop=%s calling_ae=%s: spool free space %llu MB "
		    "below min_free_mb=%lld", req->sop_uid, req->assoc->calling_ae,
		    (unsigned long long)(free_b >> 20),
		    (long long)a->cfg->storage.min_free_mb);
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged spool below min_free_mb");
		a->failed++;
		count(a->r, &a->r->stats.refused, 1);
		return 1;
	}
	return 0;
}

/* Check what was received; fill M. 0, or a status in RSP. */
static int
check_dataset(const struct dicom_store_req *req, const char *tmp, struct dicom_meta *m,
              struct dicom_store_rsp *rsp)
{
	char err[256], u[UID_MAX + 1];
	int r;

	r = dicom_meta_read(tmp, m, err, sizeof(err));
	if (r == -EBADMSG) {
		set_rsp(rsp, ST_CANNOT_UNDERSTAND, "%s", err);
		return -EBADMSG;
	}
	if (r < 0) {
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged cannot read its spool file");
		return r;
	}
	if (uid_normalize(m->sop_uid, u) < 0) {
		set_rsp(rsp, ST_CANNOT_UNDERSTAND, "invalid SOP Instance UID");
		return -EINVAL;
	}
	memcpy(m->sop_uid, u, sizeof(u));
	if (uid_normalize(m->study_uid, u) < 0) {
		set_rsp(rsp, ST_CANNOT_UNDERSTAND, "invalid Study Instance UID");
		return -EINVAL;
	}
	memcpy(m->study_uid, u, sizeof(u));
	if (uid_normalize(m->series_uid, u) < 0) {
		set_rsp(rsp, ST_CANNOT_UNDERSTAND, "invalid Series Instance UID");
		return -EINVAL;
	}
	memcpy(m->series_uid, u, sizeof(u));
	if (uid_normalize(m->sop_class_uid, u) < 0) {
		set_rsp(rsp, ST_CANNOT_UNDERSTAND, "invalid SOP Class UID");
		return -EINVAL;
	}
	memcpy(m->sop_class_uid, u, sizeof(u));
	if (uid_normalize(req->sop_uid, u) < 0 || strcmp(u, m->sop_uid) != 0) {
		set_rsp(rsp, ST_CANNOT_UNDERSTAND,
		    "SOP Instance UID differs from the C-STORE request");
		return -EINVAL;
	}
	if (uid_normalize(req->sop_class_uid, u) < 0 || strcmp(u, m->sop_class_uid) != 0) {
		set_rsp(rsp, ST_DATASET_MISMATCH,
		    "SOP Class UID differs from the C-STORE request");
		return -EINVAL;
	}
	return 0;
}

/*
 * An instance received again after retention removed its file: the file
 * is stored again and its row points at it (so `triagectl retry` of its
 * jobs works again); it is neither analysed nor forwarded a second time.
 */
static void
restore(struct assoc *a, const struct dicom_store_req *req, const struct dicom_meta *m,
        const char *tmp, struct dicom_store_rsp *rsp)
{
	char final[PATH_MAX];
	struct stat st;
	bool placed;
	int rc;

	rc = spool_commit(a->r->spool, tmp, m->study_uid, m->sop_uid, final, sizeof(final));
	if (rc < 0 && rc != -EEXIST) {
		log_errno(LOG_ERR, rc, "C-STORE sop=%s: cannot commit spool file", m->sop_uid);
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged cannot write to its spool");
		goto fail;
	}
	placed = rc == 0;
	if (!placed)
		(void)unlink(tmp);      /* a concurrent copy is in place */
	if (stat(final, &st) < 0) {
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged spool file vanished");
		goto fail;
	}
	rc = db_instance_restore(a->db, m->sop_uid, final, (uint64_t)st.st_size,
	    (int64_t)time(NULL));
	if (rc < 0 && rc != -ENOENT) {
		if (placed)
			(void)unlink(final);
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged database error");
		goto fail;
	}
	log_info("sop=%s study=%s calling_ae=%s received again after retention removed it: "
	    "stored again, not analysed again", m->sop_uid, m->study_uid,
	    req->assoc->calling_ae);
	rsp->status = ST_SUCCESS;
	a->stored++;
	return;
fail:
	(void)unlink(tmp);
	a->failed++;
	count(a->r, &a->r->stats.refused, 1);
}

static void
on_store_end(void *data, const struct dicom_store_req *req, const char *tmp,
             struct dicom_store_rsp *rsp)
{
	struct assoc *a = data;
	struct receiver *r = a->r;
	struct dicom_meta m;
	struct db_instance in;
	char final[PATH_MAX], err[256], dup_study[DICOM_UID_LEN + 1];
	struct stat st;
	bool placed = false;
	int rc;

	if (check_dataset(req, tmp, &m, rsp) < 0) {
		log_warnx("C-STORE sop=%.64s calling_ae=%s peer=%s refused with %04X: %s",
		    req->sop_uid, req->assoc->calling_ae, req->assoc->peer_ip,
		    rsp->status, rsp->comment);
		goto fail;
	}
	if (!a->db && db_open(a->cfg->storage.database, 0, &a->db, err, sizeof(err)) < 0) {
		log_err("C-STORE sop=%s: %s", m.sop_uid, err);
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged cannot open its database");
		goto fail;
	}
	rc = db_instance_lookup(a->db, m.sop_uid, dup_study);
	if (rc == 2 && strcmp(dup_study, m.study_uid) == 0) {
		restore(a, req, &m, tmp, rsp);
		return;
	}
	if (rc > 0) {
		/* the same instance again: kept once, answered Success */
		if (strcmp(dup_study, m.study_uid) != 0)
			log_warnx("sop=%s received again with study=%s, kept the first "
			    "copy in study=%s", m.sop_uid, m.study_uid, dup_study);
		else
			log_info("sop=%s study=%s calling_ae=%s already stored, kept once",
			    m.sop_uid, m.study_uid, req->assoc->calling_ae);
		(void)unlink(tmp);
		count(r, &r->stats.duplicates, 1);
		rsp->status = ST_SUCCESS;
		a->stored++;
		return;
	}
	if (rc < 0) {
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged database error");
		goto fail;
	}

	rc = spool_commit(r->spool, tmp, m.study_uid, m.sop_uid, final, sizeof(final));
	if (rc == 0) {
		placed = true;
	} else if (rc == -EEXIST) {
		/* a concurrent copy won the rename; record it if nobody has */
		(void)unlink(tmp);
	} else {
		log_errno(LOG_ERR, rc, "C-STORE sop=%s: cannot commit spool file", m.sop_uid);
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged cannot write to its spool");
		goto fail;
	}
	if (stat(final, &st) < 0) {
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged spool file vanished");
		goto fail;
	}
	in = (struct db_instance){
		.meta = &m, .path = final, .size = (uint64_t)st.st_size,
		.calling_ae = req->assoc->calling_ae, .peer_ip = req->assoc->peer_ip,
		.dimse_priority = req->priority, .received_at = (int64_t)time(NULL),
	};
	rc = db_instance_insert(a->db, &in);
	if (rc == -EEXIST) {
		count(r, &r->stats.duplicates, 1);
	} else if (rc < 0) {
		/* not recorded: take the file back so nothing half-done stays */
		if (placed)
			(void)unlink(final);
		set_rsp(rsp, ST_OUT_OF_RESOURCES, "triaged database error");
		goto fail_logged;
	} else {
		pthread_mutex_lock(&r->mu);
		r->stats.stored++;
		r->stats.bytes += (uint64_t)st.st_size;
		pthread_mutex_unlock(&r->mu);
	}
	log_debug("stored sop=%s study=%s modality=%s calling_ae=%s size=%lld",
	    m.sop_uid, m.study_uid, m.modality, req->assoc->calling_ae,
	    (long long)st.st_size);
	rsp->status = ST_SUCCESS;
	a->stored++;
	return;

fail:
	log_debug("C-STORE sop=%.64s status=%04X", req->sop_uid, rsp->status);
fail_logged:
	(void)unlink(tmp);
	a->failed++;
	count(r, &r->stats.refused, 1);
}

static const struct dicom_scp_ops receiver_ops = {
	.assoc_begin = on_assoc_begin,
	.store_begin = on_store_begin,
	.store_end = on_store_end,
	.assoc_end = on_assoc_end,
};

int
receiver_new(struct config *cfg, struct spool *spool, struct receiver **out,
             char *err, size_t errlen)
{
	struct receiver *r;
	struct dicom_scp_params p;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	r->cfg = config_ref(cfg);
	r->spool = spool;
	p = (struct dicom_scp_params){
		.bind = cfg->server.bind,
		.port = cfg->server.port,
		.max_associations = cfg->server.max_associations,
		.max_pdu = (uint32_t)cfg->server.max_pdu,
		.acse_timeout_s = cfg->server.acse_timeout_s,
		.dimse_timeout_s = cfg->server.dimse_timeout_s,
	};
	rc = dicom_scp_open(&p, &receiver_ops, r, &r->scp, err, errlen);
	if (rc < 0) {
		receiver_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int
receiver_run(struct receiver *r)
{
	return dicom_scp_run(r->scp);
}

void
receiver_stop(struct receiver *r)
{
	dicom_scp_stop(r->scp);
}

int
receiver_drain(struct receiver *r, int timeout_ms)
{
	return dicom_scp_drain(r->scp, timeout_ms);
}

int
receiver_port(const struct receiver *r)
{
	return dicom_scp_port(r->scp);
}

int
receiver_active(struct receiver *r)
{
	return dicom_scp_active(r->scp);
}

void
receiver_set_config(struct receiver *r, struct config *cfg)
{
	struct config *old;

	pthread_mutex_lock(&r->mu);
	old = r->cfg;
	r->cfg = config_ref(cfg);
	pthread_mutex_unlock(&r->mu);
	dicom_scp_set_max_associations(r->scp, cfg->server.max_associations);
	config_unref(old);
}

void
receiver_get_stats(struct receiver *r, struct receiver_stats *out)
{
	pthread_mutex_lock(&r->mu);
	*out = r->stats;
	pthread_mutex_unlock(&r->mu);
}

struct receiver *
receiver_free(struct receiver *r)
{
	if (!r)
		return NULL;
	r->scp = dicom_scp_free(r->scp);
	config_unref(r->cfg);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return NULL;
}

int
receiver_index_file(struct db *db, const char *path, const char *study_uid,
                    const char *sop_uid, int64_t received_at, char *err, size_t errlen)
{
	struct dicom_meta m;
	struct db_instance in;
	struct stat st;
	char u[UID_MAX + 1];
	int r;

	if ((r = dicom_meta_read(path, &m, err, errlen)) < 0)
		return r;
	if (uid_normalize(m.sop_uid, u) < 0 || (memcpy(m.sop_uid, u, sizeof(u)), 0) ||
	    uid_normalize(m.study_uid, u) < 0) {
		snprintf(err, errlen, "invalid UID in file");
		return -EINVAL;
	}
	memcpy(m.study_uid, u, sizeof(u));
	if ((study_uid && strcmp(study_uid, m.study_uid) != 0) ||
	    (sop_uid && strcmp(sop_uid, m.sop_uid) != 0)) {
		snprintf(err, errlen, "file holds study=%s sop=%s, not what its path says",
		    m.study_uid, m.sop_uid);
		return -EINVAL;
	}
	if (stat(path, &st) < 0)
		return -errno;
	in = (struct db_instance){
		.meta = &m, .path = path, .size = (uint64_t)st.st_size,
		.calling_ae = "", .peer_ip = "", .dimse_priority = -1,
		.received_at = received_at,
	};
	return db_instance_insert(db, &in);
}

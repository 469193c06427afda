/*
 * dest_dicom.c - the dicom destination: C-STORE to a PACS (or any storage
 * SCP), C-ECHO as its reachability check.
 *
 * DESIGN: a thin adapter of struct dest_ops over the SCU of
 * dicom/dicom_scu.cc, which does the protocol: one association per send()
 * (a batch), each file in its own transfer syntax and bit-identical, a
 * lossless-decompressed fallback, per-instance status. Here: the section's
 * keys (host, port, ae_title, calling_ae, timeout_s, max_pdu) and the
 * outcome of each instance as a dest_status (the SCU's outcomes have the
 * same values). The state is read-only after open(), so one state may be
 * used by several sender threads at once.
 */
#include "dest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dicom/dicom.h"
#include "log.h"

#define DICOM_ACSE_TIMEOUT_MAX_S 30   /* association request/release */

struct dest_dicom_state {
	char     name[CONFIG_NAME_MAX + 1];
	char    *host;
	int      port;
	char     called_ae[CONFIG_AE_MAX + 1];
	char     calling_ae[CONFIG_AE_MAX + 1];
	uint32_t max_pdu;
	int      timeout_s;
};

_Static_assert((int)DICOM_SCU_STORED == (int)DEST_OK && (int)DICOM_SCU_RETRY == (int)DEST_RETRY &&
               (int)DICOM_SCU_REFUSED == (int)DEST_FAIL, "outcomes are dest_status values");

static void
dicom_close(void *state)
{
	struct dest_dicom_state *s = state;

	if (!s)
		return;
	free(s->host);
	free(s);
}

static int
dicom_open(const struct config *cfg, const struct config_destination *d, void **state,
           char *err, size_t errlen)
{
	struct dest_dicom_state *s;
	const char *v;
	long pdu = 65536;

	*state = NULL;
	if (!d->host || !*d->host || d->port < 1 || d->port > 65535 || !d->ae_title[0]) {
		snprintf(err, errlen, "destination %s: host, port and ae_title are required", d->name);
		return -EINVAL;
	}
	v = config_kv_get(d->kv, d->nkv, "max_pdu");
	if (v && *v) {
		char *end;

		pdu = strtol(v, &end, 10);
		if (*end || pdu < 4096 || pdu > 131072) {
			snprintf(err, errlen, "destination %s: bad max_pdu '%s'", d->name, v);
			return -EINVAL;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->host = strdup(d->host))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	s->port = d->port;
	snprintf(s->called_ae, sizeof(s->called_ae), "%s", d->ae_title);
	/* config.c fills calling_ae with [server] ae_title when absent */
	snprintf(s->calling_ae, sizeof(s->calling_ae), "%s",
	         d->calling_ae[0] ? d->calling_ae : cfg ? cfg->server.ae_title : "TRIAGED");
	s->max_pdu = (uint32_t)pdu;
	s->timeout_s = d->timeout_s > 0 ? d->timeout_s : 60;
	*state = s;
	return 0;
}

static void
params_of(const struct dest_dicom_state *s, int64_t deadline_ms, struct dicom_scu_params *p)
{
	memset(p, 0, sizeof(*p));
	p->host = s->host;
	p->port = s->port;
	p->called_ae = s->called_ae;
	p->calling_ae = s->calling_ae;
	p->max_pdu = s->max_pdu;
	p->acse_timeout_s = s->timeout_s < DICOM_ACSE_TIMEOUT_MAX_S ? s->timeout_s :
	                    DICOM_ACSE_TIMEOUT_MAX_S;
	p->dimse_timeout_s = s->timeout_s;
	p->deadline_ms = deadline_ms;
}

static int
dicom_echo(void *state, char *msg, size_t msglen)
{
	struct dicom_scu_params p;

	params_of(state, 0, &p);
	return dicom_scu_echo(&p, msg, msglen);
}

static int
dicom_send(void *state, const struct dest_item *items, size_t n,
           struct dest_item_result *res, int64_t deadline_ms)
{
	const struct dest_dicom_state *s = state;
	struct dicom_scu_params p;
	struct dicom_scu_item *in;
	struct dicom_scu_result *out;
	char err[256];
	size_t i;
	int r;

	if (n == 0)
		return 0;
	in = calloc(n, sizeof(*in));
	out = calloc(n, sizeof(*out));
	if (!in || !out) {
		free(in);
		free(out);
		for (i = 0; i < n; i++) {
			res[i].status = DEST_RETRY;
			res[i].dimse_status = 0xFFFF;
			snprintf(res[i].message, sizeof(res[i].message), "out of memory");
		}
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		in[i].path = items[i].path;
		in[i].sop_class_uid = items[i].sop_class_uid;
		in[i].sop_uid = items[i].sop_uid;
	}
	params_of(s, deadline_ms, &p);
	r = dicom_scu_store(&p, in, n, out, err, sizeof(err));
	for (i = 0; i < n; i++) {
		res[i].status = out[i].outcome;
		res[i].dimse_status = out[i].status;
		snprintf(res[i].message, sizeof(res[i].message), "%s", out[i].message);
	}
	if (r < 0)
		log_debug("destination %s: %s", s->name, err);
	free(in);
	free(out);
	return r;
}

static const struct dest_ops dicom_ops = {
	.open  = dicom_open,
	.echo  = dicom_echo,
	.send  = dicom_send,
	.close = dicom_close,
};

const struct dest_type dest_dicom = { .name = "dicom", .ops = &dicom_ops };

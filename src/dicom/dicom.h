/*
 * dicom.h - the C face of everything DICOM. The implementation (dicom_*.cc)
 * is the only C++ in the tree; no C++ type, exception or OFCondition crosses
 * this header. Every function returns 0 or a negative errno and, where it
 * can fail for a reason a person should read, fills ERR (ERRLEN bytes).
 */
#ifndef TRIAGED_DICOM_H
#define TRIAGED_DICOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DICOM_UID_LEN   64
#define DICOM_AE_LEN    16

/*
 * Process-wide set-up, once in main before any thread starts: data
 * dictionary (fails if it cannot be loaded), decoders, DCMTK's log routed
 * into log.c at WARN, reverse DNS off, SIGPIPE ignored.
 */
int  dicom_global_init(char *err, size_t errlen);
void dicom_global_done(void);
/* Route DCMTK's own log at LEVEL (syslog level) and above into log.c. */
void dicom_log_setup(int level);

/* ---- metadata of one stored instance ------------------------------------ */

/* What is recorded per instance. Strings are UTF-8 (converted from the
 * dataset's Specific Character Set), control characters replaced, always
 * NUL-terminated; empty when absent. */
struct dicom_meta {
	char study_uid[DICOM_UID_LEN + 1];
	char series_uid[DICOM_UID_LEN + 1];
	char sop_uid[DICOM_UID_LEN + 1];
	char sop_class_uid[DICOM_UID_LEN + 1];
	char transfer_syntax[DICOM_UID_LEN + 1];
	char modality[17];
	char body_part[65];
	char laterality[17];           /* ImageLaterality, else Laterality */
	char view_position[17];
	char image_type[129];          /* backslash-separated values */
	char presentation_intent[33];
	char patient_id[129];
	char patient_name[325];
	char patient_birth_date[17];
	char patient_age[17];
	char patient_sex[17];
	char accession[33];
	char study_date[17];
	char study_time[33];
	char study_description[129];
	char series_description[129];
	char series_number[17];
	char instance_number[17];
	char requested_priority[17];   /* Requested Procedure Priority / Study Priority ID */
	char specific_charset[65];
	uint32_t rows, columns, frames;
	uint16_t bits_allocated, samples_per_pixel;
	bool has_pixels;
};

/*
 * Read the metadata of the Part 10 file PATH without loading the pixel data
 * into memory, and check its structure: the file must parse to its end,
 * Study/Series/SOP Instance UIDs must be present, and native pixel data
 * must be as long as Rows x Columns x Samples x Bits x Frames demand.
 * Returns 0; -EBADMSG (with ERR) for a dataset that is malformed; -ENOENT,
 * -EIO for a file that cannot be read.
 */
int dicom_meta_read(const char *path, struct dicom_meta *m, char *err, size_t errlen);

/* ---- pixels for analysis ------------------------------------------------- */

struct triaged_image;   /* include/triaged/backend.h */

/*
 * Decode frame FRAME (1-based) of the Part 10 file PATH into a
 * struct triaged_image (see backend.h for what it holds): any transfer
 * syntax triaged accepts, JPEG 2000 through OpenJPEG (Debian's DCMTK has no
 * J2K codec), modality LUT, VOI window (first in the file, else min/max),
 * MONOCHROME1 inverted, colour to luminance, downsampled by area averaging
 * so that neither side exceeds MAX_DIM (0 = full size). Thread-safe.
 * 0, or a negative errno with ERR filled (-EBADMSG: undecodable pixels,
 * -ENOTSUP: no pixel data or unsupported layout, -ENOMEM).
 */
int  dicom_image_load(const char *path, uint32_t frame, uint32_t max_dim,
                      struct triaged_image **out, char *err, size_t errlen);
void dicom_image_free(struct triaged_image *img);

/* ---- results written back: SR and secondary captures --------------------- */

struct triaged_result;  /* src/result.h: the validated, normalized result */

/* What every result object of a job shares. */
struct dicom_result_info {
	const char *route;              /* route name, for Series Description */
	const char *backend;            /* backend name */
	const char *sr_template;        /* "tid1500" or "mammo-cad" */
	int64_t     job_id;
	bool        not_for_diagnosis;  /* reference backend: say so everywhere */
	const char *manufacturer;       /* "triaged" */
	const char *software_version;   /* TRIAGED_VERSION */
	const char *uid_root;           /* for UIDs made inside (e.g. tracking UIDs); "" = 2.25 */
};

/* Identity of one object to write (UIDs made by the caller, uid.c). */
struct dicom_object_id {
	const char *series_uid;
	const char *sop_uid;
	int         series_number;
	int         instance_number;
};

/*
 * The job's Structured Report: TID 1500 (or TID 4000 Mammography CAD SR
 * with sr_template = mammo-cad) in a new series of the source study,
 * patient and study modules copied from the first source, every source
 * instance in the evidence. SOURCES are the job's instance files.
 * 0, or a negative errno with ERR filled.
 */
int dicom_write_sr(const struct dicom_result_info *info, const struct triaged_result *r,
                   const char *const *sources, size_t nsources,
                   const struct dicom_object_id *id, const char *out_path,
                   char *err, size_t errlen);

/* One secondary-capture overlay of SOURCE: its findings drawn on the image
 * rendered with its window, a banner naming the algorithm and "AI RESULT". */
int dicom_write_overlay(const struct dicom_result_info *info, const struct triaged_result *r,
                        const char *source, const struct dicom_object_id *id,
                        const char *out_path, char *err, size_t errlen);

/* The summary secondary capture: outcome, score, findings, measurements. */
int dicom_write_summary(const struct dicom_result_info *info, const struct triaged_result *r,
                        const char *const *sources, size_t nsources,
                        const struct dicom_object_id *id, const char *out_path,
                        char *err, size_t errlen);

/* ---- the storage SCP ---------------------------------------------------- */

enum dicom_reject {
	DICOM_ACCEPT = 0,
	DICOM_REJECT_CALLED_AE,        /* called AE title not recognized */
	DICOM_REJECT_CALLING_AE,       /* calling AE title not recognized */
	DICOM_REJECT_NO_REASON,
	DICOM_REJECT_BUSY,             /* transient: local limit exceeded */
};

struct dicom_assoc_info {
	char     calling_ae[DICOM_AE_LEN + 1];
	char     called_ae[DICOM_AE_LEN + 1];
	char     peer_ip[64];
	uint64_t id;                   /* association serial number */
	uint32_t peer_max_pdu;
};

struct dicom_store_req {
	const struct dicom_assoc_info *assoc;
	char     sop_class_uid[DICOM_UID_LEN + 1];     /* from the C-STORE-RQ */
	char     sop_uid[DICOM_UID_LEN + 1];           /* from the C-STORE-RQ */
	char     abstract_syntax[DICOM_UID_LEN + 1];   /* of the presentation context */
	char     transfer_syntax[DICOM_UID_LEN + 1];   /* accepted on the context */
	uint16_t message_id;
	uint16_t priority;             /* 0 medium, 1 high, 2 low */
	bool     uid_truncated;        /* a command UID was longer than 64 */
};

struct dicom_store_rsp {
	uint16_t status;               /* DIMSE status, 0 = Success */
	char     comment[65];          /* Error Comment (LO), sent when status != 0 */
};

/*
 * What the SCP asks of the C side, per association (all called on that
 * association's own thread).
 */
struct dicom_scp_ops {
	/* A-ASSOCIATE-RQ received. Return DICOM_ACCEPT or a reason; may set
	 * *ASSOC_DATA, handed to the other callbacks. */
	enum dicom_reject (*assoc_begin)(void *ctx, const struct dicom_assoc_info *info,
	                                 void **assoc_data);
	/* A C-STORE-RQ command arrived. Fill TMP_PATH (TMPLEN) with the file
	 * to receive into and return 0; or set RSP (refusal, e.g. A700) and
	 * still give a TMP_PATH: the dataset must be read off the wire anyway
	 * and the file is removed by the SCP. */
	int  (*store_begin)(void *assoc_data, const struct dicom_store_req *req,
	                    char *tmp_path, size_t tmplen, struct dicom_store_rsp *rsp);
	/* The dataset is in TMP_PATH (closed, not fsynced). Take it or remove
	 * it, and fill RSP. Only then the response is sent. */
	void (*store_end)(void *assoc_data, const struct dicom_store_req *req,
	                  const char *tmp_path, struct dicom_store_rsp *rsp);
	/* Association over (released, aborted or rejected). */
	void (*assoc_end)(void *assoc_data, const struct dicom_assoc_info *info,
	                  const char *how);
};

struct dicom_scp_params {
	const char *bind;              /* address to listen on, e.g. 0.0.0.0 or :: */
	int         port;
	int         max_associations;
	uint32_t    max_pdu;
	int         acse_timeout_s;
	int         dimse_timeout_s;
};

struct dicom_scp;

/* Open the listening socket (so a port in use fails at start, with ERR). */
int  dicom_scp_open(const struct dicom_scp_params *p, const struct dicom_scp_ops *ops,
                    void *ctx, struct dicom_scp **out, char *err, size_t errlen);
/* The port actually bound (useful with port 0). */
int  dicom_scp_port(const struct dicom_scp *scp);
/* Change the association limit (SIGHUP). */
void dicom_scp_set_max_associations(struct dicom_scp *scp, int max);
/* Accept loop; blocks until dicom_scp_stop(). One thread per association. */
int  dicom_scp_run(struct dicom_scp *scp);
/* Ask the accept loop to return (async-signal-unsafe, thread-safe). */
void dicom_scp_stop(struct dicom_scp *scp);
/*
 * Drain: idle associations are aborted at once; an association inside a
 * C-STORE finishes it (the response is sent), then is aborted. Waits up to
 * TIMEOUT_MS for all association threads to end. Returns the number of
 * associations still running (0 = drained).
 */
int  dicom_scp_drain(struct dicom_scp *scp, int timeout_ms);
/* Number of associations running now. */
int  dicom_scp_active(struct dicom_scp *scp);
/* Close the listening socket and free SCP (after a drain). NULL-tolerant. */
struct dicom_scp *dicom_scp_free(struct dicom_scp *scp);

/* ---- the storage SCU: C-ECHO and C-STORE to a peer ----------------------- */

/* One peer, as [destination NAME] of type dicom describes it. */
struct dicom_scu_params {
	const char *host;              /* name or IPv4 address (DCMTK 3.6.7 connects
	                                * over IPv4 only); "host:port" <= 63 chars */
	int         port;
	const char *called_ae;         /* the peer's AE title */
	const char *calling_ae;        /* ours */
	uint32_t    max_pdu;           /* our maximum receive PDU; 0 = 65536 */
	int         acse_timeout_s;    /* association request and release; 0 = 30 */
	int         dimse_timeout_s;   /* wait for each response; 0 = 60 */
	int64_t     deadline_ms;       /* CLOCK_MONOTONIC ms; 0 = none: no C-STORE
	                                * starts after it (the others end not sent) */
};

/* One instance to store: a file, never modified. */
struct dicom_scu_item {
	const char *path;              /* Part 10 file (or a dataset without File Meta) */
	const char *sop_class_uid;     /* NULL or "": taken from the file */
	const char *sop_uid;           /* NULL or "": taken from the file */
};

/* What a result means for delivery (the values of enum dest_status). */
enum dicom_scu_outcome {
	DICOM_SCU_STORED  = 0,         /* Success, or a warning (0001, 0111, Bxxx) */
	DICOM_SCU_RETRY   = 1,         /* not sent, no response, or a transient refusal
	                                * (A7xx out of resources, 0110, 0213) */
	DICOM_SCU_REFUSED = 2,         /* the peer will not take it as it is
	                                * (0122, A9xx, Cxxx and other failures;
	                                * no presentation context for its SOP
	                                * class or transfer syntax) */
};

struct dicom_scu_result {
	int      outcome;              /* enum dicom_scu_outcome */
	uint16_t status;               /* the C-STORE-RSP status; 0xFFFF when none came */
	bool     converted;            /* sent decompressed: the peer refused the file's
	                                * own transfer syntax */
	char     transfer_syntax[DICOM_UID_LEN + 1];  /* on the wire; "" if not sent */
	char     message[256];         /* why (peer's Error Comment included), or "" */
};

/* The outcome of one C-STORE: ANSWERED false (nothing or no response came
 * back) is always DICOM_SCU_RETRY; otherwise by STATUS as above. Pure. */
int dicom_scu_outcome_of(bool answered, uint16_t status);

/*
 * Store N files on one association (more only when over 128 presentation
 * contexts are needed), in order. Each file is offered in its own transfer
 * syntax, in a context of its own; when the peer takes that syntax the
 * file's dataset bytes go on the wire unchanged (read from the file after
 * its File Meta, never parsed or re-encoded; only a file without File Meta
 * or with an odd-length dataset is parsed and written out by DCMTK, and its
 * result says so). A second context per SOP
 * class offers Explicit/Implicit VR Little Endian: a file the peer refuses
 * in its own syntax goes decompressed when that is lossless and a decoder
 * is registered (JPEG lossless, JPEG-LS lossless, RLE, deflate; an
 * uncompressed file in another byte order/VR), else it ends not sent
 * (JPEG 2000, lossy JPEG). A missing response within dimse_timeout_s
 * aborts the association (the peer may still have stored it: re-sending
 * is safe, the SOP Instance UID is the same). Fills RES[i] for every item.
 * Returns 0 when an association was made (per-item results tell the rest),
 * or a negative errno with ERR when none could be (every RES[i] is then
 * DICOM_SCU_RETRY with the same reason): -ECONNREFUSED (connection refused,
 * or the peer rejected the association; the reason, e.g. "calling AE title
 * not recognized", is in ERR), -ETIMEDOUT, -EHOSTUNREACH, -EINVAL (bad
 * parameters), -ENOMEM. Thread-safe: one association per call. The TCP
 * connect timeout is process-global in DCMTK 3.6.7: it is set to 10 s once.
 */
int dicom_scu_store(const struct dicom_scu_params *p, const struct dicom_scu_item *items,
                    size_t n, struct dicom_scu_result *res, char *err, size_t errlen);

/* C-ECHO. 0, or a negative errno (as above) with ERR saying why. */
int dicom_scu_echo(const struct dicom_scu_params *p, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif

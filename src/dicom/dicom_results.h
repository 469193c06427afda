/*
 * dicom_results.h - C++ only, private to src/dicom/: what the result
 * writers (dicom_sr.cc, dicom_sc.cc) share. Defined in dicom_sc.cc.
 */
#ifndef TRIAGED_DICOM_RESULTS_H
#define TRIAGED_DICOM_RESULTS_H

#ifndef __cplusplus
#error "dicom_results.h is C++ (src/dicom only)"
#endif

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <string>

#include "dicom/dicom_err.h"

class DcmFileFormat;
class DcmItem;
struct dicom_result_info;
struct triaged_result;

namespace dicom_results {

/* One source instance: its header (no pixel data), values converted to
 * UTF-8 and cleaned. */
struct source {
	std::unique_ptr<DcmFileFormat> ff;
	std::string path;
	std::string sop_class, sop_uid, series_uid, study_uid;
	std::string modality, body_part, series_laterality, image_laterality;
	std::string view_position, view_meaning, patient_orientation, instance_number;
	std::string lossy, lossy_ratio, lossy_method;
	uint32_t rows = 0, columns = 0, frames = 1;
};

/* Valid UTF-8, no control characters, trimmed, at most MAXBYTES bytes. */
std::string clean_text(const char *s, size_t maxbytes);
/* The algorithm's name (else the backend's), and "name version". */
std::string algo_name(const struct dicom_result_info *info, const struct triaged_result *r);
std::string algo_title(const struct dicom_result_info *info, const struct triaged_result *r);
/* "[NOT FOR DIAGNOSIS ]KIND: algorithm (route)", at most 64 bytes. */
std::string series_description(const struct dicom_result_info *info,
    const struct triaged_result *r, const char *kind);
/* A UID as triaged accepts it: digits and single dots, 1..64 characters
 * (leading zeros in a component tolerated: legacy data is kept). */
bool uid_ok(const std::string &s);
/* A new UID under ROOT ("" or NULL: 2.25.<random UUID>). */
int make_uid(const char *root, char out[65]);
/* A UID that is the same for the same TEXT (2.25, name-based). */
void stable_uid(const std::string &text, char out[65]);
/* Read the header of PATH; 0 or a negative errno with ERR. */
int load_source(const char *path, struct source &s, char *err, size_t errlen);
/* "L CC", "PA", or "CR #2". */
std::string view_name(const struct source &s);
/* Patient, study (and patient study) attributes of SRC into DST, checked. */
void copy_patient_study(DcmItem &src, DcmItem &dst);
/* Character set, equipment, creation and content date/time. */
void put_common(DcmItem &ds, const struct dicom_result_info *info);
/* Save FF to PATH atomically (PATH.tmp then rename). */
int save(DcmFileFormat &ff, const char *path, char *err, size_t errlen);

} // namespace dicom_results

#endif

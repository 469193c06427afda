/*
 * dicom_meta.cc - read what triaged records about an instance, and check
 * the structure of a received file, without loading its pixel data.
 *
 * DESIGN: the receiver calls this on the temporary file before it is
 * committed; reconciliation calls it on spool files that have no database
 * row. Large values (pixel data) stay on disk (maxReadLength), but the
 * parser still walks the whole file, so a truncated file or a broken
 * sequence is found here and answered with an error status, never stored.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcpixel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dicom/dicom.h"

namespace {

/* Copy S into OUT (LEN bytes): trimmed, control characters replaced.
 * A multi-byte character cut at the end is repaired by utf8_sanitize(). */
void
copy_clean(const OFString &s, char *out, size_t len)
{
	size_t b = 0, e = s.length();

	while (b < e && (s[b] == ' ' || s[b] == '\0'))
		b++;
	while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\0'))
		e--;
	size_t n = 0;
	for (size_t i = b; i < e && n + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[n] = '\0';
}

/* Make OUT valid UTF-8 in place: invalid bytes become '?'. */
void
utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 :
		    (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
		bool ok = n >= 0;
		for (int i = 1; ok && i <= n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

void
get(DcmItem *ds, const DcmTagKey &tag, char *out, size_t len)
{
	OFString v;

	out[0] = '\0';
	if (ds->findAndGetOFStringArray(tag, v).good()) {
		copy_clean(v, out, len);
		utf8_sanitize(out);
	}
}

/* A UID: 0, or -1 when longer than 64 characters (OUT is left empty then,
 * never truncated into a different, valid-looking UID). */
int
get_uid(DcmItem *ds, const DcmTagKey &tag, char *out)
{
	char tmp[256];

	get(ds, tag, tmp, sizeof(tmp));
	out[0] = '\0';
	if (strlen(tmp) > DICOM_UID_LEN)
		return -1;
	memcpy(out, tmp, strlen(tmp) + 1);
	return 0;
}

uint32_t
get_u(DcmItem *ds, const DcmTagKey &tag)
{
	Uint16 v16;
	Sint32 is;
	OFString s;

	if (ds->findAndGetUint16(tag, v16).good())
		return v16;
	if (ds->findAndGetSint32(tag, is).good() && is > 0)
		return (uint32_t)is;
	if (ds->findAndGetOFString(tag, s).good()) {
		long v = atol(s.c_str());
		return v > 0 ? (uint32_t)v : 0;
	}
	return 0;
}

int
check_pixels(DcmDataset *ds, struct dicom_meta *m, char *err, size_t errlen)
{
	DcmElement *e = NULL;

	if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e) {
		m->has_pixels = false;
		return 0;
	}
	m->has_pixels = true;
	if (m->rows == 0 || m->columns == 0) {
		snprintf(err, errlen, "pixel data without Rows/Columns");
		return -EBADMSG;
	}
	DcmPixelData *pd = OFstatic_cast(DcmPixelData *, e);
	DcmXfer xfer(ds->getOriginalXfer());
	if (xfer.isEncapsulated()) {
		/* the parser has checked the item structure; the codestream
		 * itself is the modality's business (it is forwarded as is) */
		DcmPixelSequence *seq = NULL;
		if (pd->getEncapsulatedRepresentation(xfer.getXfer(), NULL, seq).bad() || !seq) {
			snprintf(err, errlen, "compressed transfer syntax but the pixel "
			    "data is not encapsulated");
			return -EBADMSG;
		}
		return 0;
	}
	if (e->getLengthField() == DCM_UndefinedLength) {
		snprintf(err, errlen, "native transfer syntax but encapsulated pixel data");
		return -EBADMSG;
	}
	uint64_t bits = m->bits_allocated ? m->bits_allocated : 16;
	uint64_t spp = m->samples_per_pixel ? m->samples_per_pixel : 1;
	uint64_t frames = m->frames ? m->frames : 1;
	uint64_t need = ((uint64_t)m->rows * m->columns * spp * frames * bits + 7) / 8;
	if ((uint64_t)e->getLengthField() < need) {
		snprintf(err, errlen, "pixel data is %lu bytes, Rows x Columns x Frames "
		    "need %llu", (unsigned long)e->getLengthField(), (unsigned long long)need);
		return -EBADMSG;
	}
	return 0;
}

} // namespace

extern "C" int
dicom_meta_read(const char *path, struct dicom_meta *m, char *err, size_t errlen)
{
	try {
		memset(m, 0, sizeof(*m));
		err[0] = '\0';

		struct stat st;
		if (stat(path, &st) < 0)
			return -errno;

		DcmFileFormat ff;
		OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange,
		    4096 /* values above stay on disk */, ERM_autoDetect);
		if (c.bad()) {
			snprintf(err, errlen, "cannot parse dataset: %s", c.text());
			return -EBADMSG;
		}
		DcmDataset *ds = ff.getDataset();
		DcmMetaInfo *meta = ff.getMetaInfo();

		DcmXfer xfer(ds->getOriginalXfer());
		snprintf(m->transfer_syntax, sizeof(m->transfer_syntax), "%s",
		    xfer.getXferID() ? xfer.getXferID() : "");

		get(ds, DCM_SpecificCharacterSet, m->specific_charset, sizeof(m->specific_charset));
		/* names and descriptions to UTF-8; values we cannot convert
		 * are kept with their non-ASCII bytes replaced */
		if (m->specific_charset[0] && strcmp(m->specific_charset, "ISO_IR 192") != 0)
			(void)ds->convertToUTF8();

		if (get_uid(ds, DCM_StudyInstanceUID, m->study_uid) < 0 ||
		    get_uid(ds, DCM_SeriesInstanceUID, m->series_uid) < 0 ||
		    get_uid(ds, DCM_SOPInstanceUID, m->sop_uid) < 0 ||
		    get_uid(ds, DCM_SOPClassUID, m->sop_class_uid) < 0) {
			snprintf(err, errlen, "a UID is longer than 64 characters");
			return -EBADMSG;
		}
		if (!m->sop_class_uid[0] && meta &&
		    get_uid(meta, DCM_MediaStorageSOPClassUID, m->sop_class_uid) < 0) {
			snprintf(err, errlen, "a UID is longer than 64 characters");
			return -EBADMSG;
		}
		get(ds, DCM_Modality, m->modality, sizeof(m->modality));
		get(ds, DCM_BodyPartExamined, m->body_part, sizeof(m->body_part));
		get(ds, DCM_ImageLaterality, m->laterality, sizeof(m->laterality));
		if (!m->laterality[0])
			get(ds, DCM_Laterality, m->laterality, sizeof(m->laterality));
		get(ds, DCM_ViewPosition, m->view_position, sizeof(m->view_position));
		get(ds, DCM_ImageType, m->image_type, sizeof(m->image_type));
		get(ds, DCM_PresentationIntentType, m->presentation_intent, sizeof(m->presentation_intent));
		get(ds, DCM_PatientID, m->patient_id, sizeof(m->patient_id));
		get(ds, DCM_PatientName, m->patient_name, sizeof(m->patient_name));
		get(ds, DCM_PatientBirthDate, m->patient_birth_date, sizeof(m->patient_birth_date));
		get(ds, DCM_PatientAge, m->patient_age, sizeof(m->patient_age));
		get(ds, DCM_PatientSex, m->patient_sex, sizeof(m->patient_sex));
		get(ds, DCM_AccessionNumber, m->accession, sizeof(m->accession));
		get(ds, DCM_StudyDate, m->study_date, sizeof(m->study_date));
		get(ds, DCM_StudyTime, m->study_time, sizeof(m->study_time));
		get(ds, DCM_StudyDescription, m->study_description, sizeof(m->study_description));
		get(ds, DCM_SeriesDescription, m->series_description, sizeof(m->series_description));
		get(ds, DCM_SeriesNumber, m->series_number, sizeof(m->series_number));
		get(ds, DCM_InstanceNumber, m->instance_number, sizeof(m->instance_number));
		get(ds, DCM_RequestedProcedurePriority, m->requested_priority, sizeof(m->requested_priority));
		if (!m->requested_priority[0])
			get(ds, DcmTagKey(0x0032, 0x000c) /* Study Priority ID, retired */, m->requested_priority, sizeof(m->requested_priority));
		m->rows = get_u(ds, DCM_Rows);
		m->columns = get_u(ds, DCM_Columns);
		m->frames = get_u(ds, DCM_NumberOfFrames);
		m->bits_allocated = (uint16_t)get_u(ds, DCM_BitsAllocated);
		m->samples_per_pixel = (uint16_t)get_u(ds, DCM_SamplesPerPixel);

		if (!m->sop_uid[0] || !m->study_uid[0] || !m->series_uid[0]) {
			snprintf(err, errlen, "missing %s",
			    !m->sop_uid[0] ? "SOP Instance UID" :
			    !m->study_uid[0] ? "Study Instance UID" : "Series Instance UID");
			return -EBADMSG;
		}
		if (!m->sop_class_uid[0]) {
			snprintf(err, errlen, "missing SOP Class UID");
			return -EBADMSG;
		}
		return check_pixels(ds, m, err, errlen);
	} catch (...) {
		snprintf(err, errlen, "out of memory reading dataset");
		return -ENOMEM;
	}
}

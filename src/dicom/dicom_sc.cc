/*
 * dicom_sc.cc - the secondary captures of a job's results: one overlay per
 * source image (its findings drawn on the image as rendered for reading)
 * and one summary page; plus the helpers the SR writer (dicom_sr.cc)
 * shares: reading a source's header and copying its patient and study
 * modules.
 *
 * DESIGN: the source is decoded by dicom_image_load() (dicom_image.cc):
 * every transfer syntax triaged accepts, JPEG 2000 included, the file's
 * window (else min/max), MONOCHROME1 already inverted, colour reduced to
 * luminance, frame chosen, downsampled so that the long side is at most
 * OVERLAY_MAX_DIM. That grey image (top 8 bits) becomes an RGB cairo
 * surface below a banner strip (the banner never hides anatomy): boxes are
 * scaled by the decoder's factor and drawn solid (score >= 0.5, or no
 * score) or dashed (a doubtful finding), yellow / orange over a thin dark
 * outline so they show on any grey, each with "#n label score" beside it.
 * The summary is a dark 1024x1280 page of text, like the vendors' pages:
 * algorithm, NOT FOR DIAGNOSIS (reference backend), patient (name, sex,
 * age, ID: a page that travels without its study header, exported or
 * printed, must still say whose it is; Burned In Annotation YES tells
 * de-identification so), study date, description, accession, outcome,
 * score, summary text, measurements (months also as years and months),
 * findings (#n as on the overlays and in the SR, score, view). Both are
 * written as Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7),
 * RGB 8-bit, the SOP class every PACS and viewer displays (the multi-frame
 * SC classes add nothing for one frame and are less widely shown), with
 * Modality OT, Conversion Type WSD, Image Type DERIVED\SECONDARY, Burned In
 * Annotation YES, the source in Source Image Sequence (with its frame),
 * Derivation Description, Lossy Image Compression 01 when the source was
 * lossy, Patient Orientation and Laterality of the source, and the patient
 * and study modules of the source.
 *
 * Source attributes are untrusted: they are converted to UTF-8, checked
 * per VR (dates, times, ages, code strings, lengths) and emptied (type 2)
 * or left out (type 3) when invalid, so that what we write is valid even
 * when what we received was not. No C++ exception crosses dicom.h.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"

#include <cairo/cairo.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "dicom/dicom.h"
#include "result.h"
#include "triaged/backend.h"

#include "dicom/dicom_results.h"

namespace dicom_results {

/* ---- errors and text ----------------------------------------------------- */

/* S as valid UTF-8 of at most MAXBYTES bytes: control characters become
 * spaces, invalid bytes '?', outer spaces trimmed, a character never cut. */
std::string
clean_text(const char *s, size_t maxbytes)
{
	std::string out;
	if (!s)
		return out;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 1 :
		    (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 3 : -1;
		bool ok = n >= 0;
		for (int i = 1; ok && i <= n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (!ok) {
			out += '?';
			p++;
			continue;
		}
		if (n == 0) {
			out += *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
		} else {
			out.append((const char *)p, (size_t)n + 1);
		}
		p += n + 1;
	}
	size_t b = out.find_first_not_of(' ');
	if (b == std::string::npos)
		return std::string();
	out = out.substr(b, out.find_last_not_of(' ') - b + 1);
	if (out.size() > maxbytes) {
		size_t cut = maxbytes;
		while (cut > 0 && ((unsigned char)out[cut] & 0xc0) == 0x80)
			cut--;
		out.resize(cut);
		while (!out.empty() && out.back() == ' ')
			out.pop_back();
	}
	return out;
}

/* For LO/SH/LT values: no backslash (a value delimiter). */
static std::string
clean_single(const char *s, size_t maxbytes)
{
	std::string t = clean_text(s, maxbytes);
	std::replace(t.begin(), t.end(), '\\', '/');
	return t;
}

std::string
algo_name(const struct dicom_result_info *info, const struct triaged_result *r)
{
	if (r && r->algo_name[0])
		return clean_single(r->algo_name, 64);
	if (info && info->backend && info->backend[0])
		return clean_single(info->backend, 64);
	return "unknown algorithm";
}

std::string
algo_title(const struct dicom_result_info *info, const struct triaged_result *r)
{
	std::string t = algo_name(info, r);
	if (r && r->algo_version[0])
		t += " " + clean_single(r->algo_version, 64);
	return t;
}

/* "NOT FOR DIAGNOSIS AI report: <algorithm> (<route>)", at most 64 bytes:
 * the algorithm is shortened first, the route second. */
std::string
series_description(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *kind)
{
	std::string pre = info && info->not_for_diagnosis ? "NOT FOR DIAGNOSIS " : "";
	pre += kind;
	pre += ": ";
	std::string algo = algo_name(info, r);
	std::string route = info && info->route ? clean_single(info->route, 64) : "";
	std::string d;
	for (int round = 0; round < 4; round++) {
		d = pre + algo + (route.empty() ? "" : " (" + route + ")");
		if (d.size() <= 64)
			return d;
		size_t excess = d.size() - 64;
		if (algo.size() > 16)
			algo = clean_text(algo.c_str(), algo.size() > excess + 16 ?
			    algo.size() - excess : 16);
		else if (route.size() > 12)
			route = clean_text(route.c_str(), route.size() > excess + 12 ?
			    route.size() - excess : 12);
		else
			break;
	}
	return clean_text(d.c_str(), 64);
}

/* ---- UIDs ---------------------------------------------------------------- */

static void
u128_to_decimal(unsigned __int128 v, char *out, size_t len)
{
	char tmp[48];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v && n < sizeof(tmp));
	size_t i = 0;
	for (; i < n && i + 1 < len; i++)
		out[i] = tmp[n - 1 - i];
	out[i] = '\0';
}

/* 2.25.<UUID as an integer>: from 16 bytes, with the version nibble V
 * (4 random, 8 custom/name-based) and the RFC 4122 variant. */
static void
uuid_uid(unsigned char b[16], int version, char out[DICOM_UID_LEN + 1])
{
	b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	unsigned __int128 v = 0;
	for (int i = 0; i < 16; i++)
		v = (v << 8) | b[i];
	char dec[48];
	u128_to_decimal(v, dec, sizeof(dec));
	snprintf(out, DICOM_UID_LEN + 1, "2.25.%s", dec);
}

int
make_uid(const char *root, char out[DICOM_UID_LEN + 1])
{
	unsigned char b[16];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	if (root && *root) {
		/* as uid.c does: ROOT (<= 24) . seconds . random (<= 20 digits) */
		if (strlen(root) > 24 || !uid_ok(root))
			return -EINVAL;
		uint64_t rnd;
		memcpy(&rnd, b, sizeof(rnd));
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int n = snprintf(out, DICOM_UID_LEN + 1, "%s.%lld.%llu", root, (long long)ts.tv_sec,
		    (unsigned long long)(rnd % 10000000000000000000ULL) + 1);
		return n > 0 && n <= DICOM_UID_LEN ? 0 : -EOVERFLOW;
	}
	uuid_uid(b, 4, out);
	return 0;
}

/* A UID that stays the same for the same TEXT (FNV-1a, 128 bits): the
 * Device Observer UID of an algorithm identity. Not a secret, just stable. */
void
stable_uid(const std::string &text, char out[DICOM_UID_LEN + 1])
{
	const unsigned __int128 prime = ((unsigned __int128)1 << 88) + 0x13b;
	unsigned __int128 h = ((unsigned __int128)0x6c62272e07bb0142ULL << 64) | 0x62b821756295c58dULL;
	for (unsigned char c : text) {
		h ^= c;
		h *= prime;
	}
	unsigned char b[16];
	for (int i = 15; i >= 0; i--) {
		b[i] = (unsigned char)(h & 0xff);
		h >>= 8;
	}
	uuid_uid(b, 8, out);
}

/* A UID as triaged accepts it (uid_normalize): digits and single dots,
 * 1..64 characters; leading zeros in a component are tolerated (legacy
 * data), since the daemon stores such instances and results refer to them. */
bool
uid_ok(const std::string &s)
{
	if (s.empty() || s.size() > DICOM_UID_LEN)
		return false;
	bool start = true;
	for (char c : s) {
		if (c == '.') {
			if (start)
				return false;
			start = true;
		} else if (c >= '0' && c <= '9') {
			start = false;
		} else {
			return false;
		}
	}
	return !start;
}

/* ---- value checks per VR --------------------------------------------------- */

static bool
all_digits(const std::string &s, size_t b, size_t n)
{
	if (b + n > s.size())
		return false;
	for (size_t i = b; i < b + n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool
da_ok(const std::string &s)
{
	if (s.size() != 8 || !all_digits(s, 0, 8))
		return false;
	int y = atoi(s.substr(0, 4).c_str()), m = atoi(s.substr(4, 2).c_str()),
	    d = atoi(s.substr(6, 2).c_str());
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1];
}

static bool
tm_ok(const std::string &s)
{
	size_t n = s.size();
	if (n < 2 || !all_digits(s, 0, 2) || atoi(s.substr(0, 2).c_str()) > 23)
		return false;
	if (n == 2)
		return true;
	if (n < 4 || !all_digits(s, 2, 2) || atoi(s.substr(2, 2).c_str()) > 59)
		return false;
	if (n == 4)
		return true;
	if (n < 6 || !all_digits(s, 4, 2) || atoi(s.substr(4, 2).c_str()) > 60)
		return false;
	if (n == 6)
		return true;
	if (s[6] != '.' || n > 13 || n == 7)
		return false;
	return all_digits(s, 7, n - 7);
}

static bool
as_ok(const std::string &s)
{
	return s.size() == 4 && all_digits(s, 0, 3) && strchr("DWMY", s[3]) && s[3];
}

/* PN: each of at most three component groups at most 64 bytes. */
static std::string
clean_pn(const char *v)
{
	std::string s = clean_single(v, 3 * 64 + 2), out;
	size_t b = 0;
	for (int g = 0; g < 3 && b <= s.size(); g++) {
		size_t e = s.find('=', b);
		std::string grp = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
		if (g)
			out += '=';
		out += clean_text(grp.c_str(), 64);
		if (e == std::string::npos)
			break;
		b = e + 1;
	}
	while (!out.empty() && (out.back() == '=' || out.back() == '^' || out.back() == ' '))
		out.pop_back();
	return out;
}

enum kind { K_PN, K_LO, K_SH, K_DA, K_TM, K_AS, K_SEX, K_YESNO, K_LO_MULTI };

struct copied {
	DcmTagKey tag;
	enum kind kind;
	bool type2;             /* always written (empty when absent or invalid) */
};

/* Patient, General Study and Patient Study attributes copied from the
 * source into every result object. */
static const struct copied COPIED[] = {
	{ DCM_PatientName, K_PN, true },
	{ DCM_PatientID, K_LO, true },
	{ DCM_IssuerOfPatientID, K_LO, false },
	{ DCM_PatientBirthDate, K_DA, true },
	{ DCM_PatientSex, K_SEX, true },
	{ DCM_PatientIdentityRemoved, K_YESNO, false },
	{ DCM_DeidentificationMethod, K_LO_MULTI, false },
	{ DCM_StudyDate, K_DA, true },
	{ DCM_StudyTime, K_TM, true },
	{ DCM_ReferringPhysicianName, K_PN, true },
	{ DCM_StudyID, K_SH, true },
	{ DCM_AccessionNumber, K_SH, true },
	{ DCM_StudyDescription, K_LO, false },
	{ DCM_PatientAge, K_AS, false },
};

static bool
clean_value(enum kind k, const char *raw, std::string &out)
{
	std::string s = clean_text(raw, 1024);
	switch (k) {
	case K_PN:
		out = clean_pn(raw);
		return true;
	case K_LO:
		out = clean_single(raw, 64);
		return true;
	case K_LO_MULTI: {
		/* keep the value delimiters; each value at most 64 bytes */
		std::string v;
		size_t b = 0;
		for (;;) {
			size_t e = s.find('\\', b);
			std::string one = clean_text(s.substr(b, e == std::string::npos ?
			    std::string::npos : e - b).c_str(), 64);
			v += (b ? "\\" : "") + one;
			if (e == std::string::npos)
				break;
			b = e + 1;
		}
		out = v;
		return !out.empty();
	}
	case K_SH:
		out = clean_single(raw, 16);
		return true;
	case K_DA:
		out = s;
		return da_ok(s);
	case K_TM:
		out = s;
		return tm_ok(s);
	case K_AS:
		out = s;
		return as_ok(s);
	case K_SEX:
		out = s;
		return s == "M" || s == "F" || s == "O";
	case K_YESNO:
		out = s;
		return s == "YES" || s == "NO";
	}
	return false;
}

void
copy_patient_study(DcmItem &src, DcmItem &dst)
{
	for (const struct copied &c : COPIED) {
		OFString raw;
		std::string v;
		bool have = src.findAndGetOFStringArray(c.tag, raw).good() && !raw.empty();
		bool ok = have && clean_value(c.kind, raw.c_str(), v);
		if (ok && !v.empty())
			dst.putAndInsertString(c.tag, v.c_str());
		else if (c.type2)
			dst.putAndInsertString(c.tag, "");
	}
	OFString uid;
	if (src.findAndGetOFString(DCM_StudyInstanceUID, uid).good())
		dst.putAndInsertString(DCM_StudyInstanceUID, uid.c_str());
}

/* ---- the source ------------------------------------------------------------ */

static std::string
get_str(DcmItem *ds, const DcmTagKey &tag, size_t maxbytes = 64)
{
	OFString v;
	if (ds->findAndGetOFStringArray(tag, v).bad())
		return std::string();
	return clean_text(v.c_str(), maxbytes);
}

static uint32_t
get_u32(DcmItem *ds, const DcmTagKey &tag)
{
	Uint16 v16;
	OFString s;
	if (ds->findAndGetUint16(tag, v16).good())
		return v16;
	if (ds->findAndGetOFString(tag, s).good()) {
		long v = atol(s.c_str());
		return v > 0 && v < 0x7fffffff ? (uint32_t)v : 0;
	}
	return 0;
}

/* Backslash-separated values of at most 16 characters from ALLOWED (DS, CS) */
static bool
values_ok(const std::string &v, const char *allowed)
{
	size_t len = 0;
	for (char c : v) {
		if (c == '\\') {
			if (len == 0)
				return false;
			len = 0;
			continue;
		}
		if (!strchr(allowed, c) || ++len > 16)
			return false;
	}
	return len > 0;
}

int
load_source(const char *path, struct source &s, char *err, size_t errlen)
{
	if (!path || !*path)
		return set_err(err, errlen, -EINVAL, "no source file");
	if (access(path, R_OK) < 0)
		return set_err(err, errlen, -errno, "%s: %s", path, strerror(errno));
	s.ff.reset(new DcmFileFormat());
	/* values above 4 KiB (the pixel data) stay on disk, never read (a
	 * parse that stops at the pixel data would log a warning each time) */
	OFCondition c = s.ff->loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
	if (c.bad())
		return set_err(err, errlen, -EBADMSG, "%s: cannot parse dataset: %s", path, c.text());
	DcmDataset *ds = s.ff->getDataset();
	OFString cs;
	bool utf8 = false;
	if (ds->findAndGetOFStringArray(DCM_SpecificCharacterSet, cs).good() && !cs.empty()) {
		utf8 = cs == "ISO_IR 192";
		if (!utf8)
			utf8 = ds->convertToUTF8().good();
	}
	(void)utf8;     /* values are sanitized to valid UTF-8 either way */

	s.sop_class = get_str(ds, DCM_SOPClassUID);
	if (s.sop_class.empty()) {
		OFString v;
		if (s.ff->getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, v).good())
			s.sop_class = clean_text(v.c_str(), 64);
	}
	s.sop_uid = get_str(ds, DCM_SOPInstanceUID);
	s.series_uid = get_str(ds, DCM_SeriesInstanceUID);
	s.study_uid = get_str(ds, DCM_StudyInstanceUID);
	if (!uid_ok(s.sop_uid) || !uid_ok(s.sop_class) || !uid_ok(s.study_uid) ||
	    !uid_ok(s.series_uid))
		return set_err(err, errlen, -EBADMSG, "%s: no valid %s", path,
		    !uid_ok(s.sop_uid) ? "SOP Instance UID" : !uid_ok(s.sop_class) ?
		    "SOP Class UID" : !uid_ok(s.study_uid) ? "Study Instance UID" :
		    "Series Instance UID");
	s.modality = get_str(ds, DCM_Modality, 16);
	s.body_part = get_str(ds, DCM_BodyPartExamined, 16);
	s.series_laterality = get_str(ds, DCM_Laterality, 16);
	s.image_laterality = get_str(ds, DCM_ImageLaterality, 16);
	s.view_position = get_str(ds, DCM_ViewPosition, 16);
	s.patient_orientation = get_str(ds, DCM_PatientOrientation, 64);
	s.instance_number = get_str(ds, DCM_InstanceNumber, 12);
	/* lossy: said so, or stored with a lossy transfer syntax */
	s.lossy = get_str(ds, DCM_LossyImageCompression, 16);
	if (DcmXfer(ds->getOriginalXfer()).isLossy())
		s.lossy = "01";
	s.lossy_ratio = get_str(ds, DCM_LossyImageCompressionRatio, 64);
	s.lossy_method = get_str(ds, DCM_LossyImageCompressionMethod, 64);
	if (!values_ok(s.lossy_ratio, "+-.0123456789eE"))
		s.lossy_ratio.clear();
	if (!values_ok(s.lossy_method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ "))
		s.lossy_method.clear();
	{
		DcmItem *view = NULL;
		if (ds->findAndGetSequenceItem(DCM_ViewCodeSequence, view, 0).good() && view)
			s.view_meaning = get_str(view, DCM_CodeMeaning, 64);
	}
	s.rows = get_u32(ds, DCM_Rows);
	s.columns = get_u32(ds, DCM_Columns);
	s.frames = get_u32(ds, DCM_NumberOfFrames);
	if (s.frames == 0)
		s.frames = 1;
	s.path = path;
	return 0;
}

/* "L CC", "PA", "DX #2": how a person names the image. */
std::string
view_name(const struct source &s)
{
	std::string lat = !s.image_laterality.empty() ? s.image_laterality : s.series_laterality;
	if (lat == "U" || lat == "B")
		lat.clear();
	std::string v = s.view_position;
	if (v.empty() && !s.view_meaning.empty())
		v = s.view_meaning;
	std::string t = lat + (lat.empty() || v.empty() ? "" : " ") + v;
	if (t.empty())
		t = (s.modality.empty() ? std::string("image") : s.modality) +
		    (s.instance_number.empty() ? "" : " #" + s.instance_number);
	return t;
}

/* Equipment, date and time, and the character set every result object has. */
void
put_common(DcmItem &ds, const struct dicom_result_info *info)
{
	ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
	ds.putAndInsertString(DCM_Manufacturer, clean_single(info && info->manufacturer ?
	    info->manufacturer : "triaged", 64).c_str());
	std::string sw = info && info->software_version ?
	    clean_single(info->software_version, 64) : "";
	if (!sw.empty())
		ds.putAndInsertString(DCM_SoftwareVersions, sw.c_str());
	OFString d, t;
	DcmDate::getCurrentDate(d);
	DcmTime::getCurrentTime(t, OFTrue /* seconds */, OFFalse);
	ds.putAndInsertString(DCM_InstanceCreationDate, d.c_str());
	ds.putAndInsertString(DCM_InstanceCreationTime, t.c_str());
	ds.putAndInsertString(DCM_ContentDate, d.c_str());
	ds.putAndInsertString(DCM_ContentTime, t.c_str());
}

/* Write DS to PATH (explicit VR little endian, new File Meta); on failure
 * nothing is left at PATH. */
int
save(DcmFileFormat &ff, const char *path, char *err, size_t errlen)
{
	std::string tmp = std::string(path) + ".tmp";
	OFCondition c = ff.saveFile(tmp.c_str(), EXS_LittleEndianExplicit, EET_ExplicitLength,
	    EGL_recalcGL, EPD_noChange, 0, 0, EWM_createNewMeta);
	if (c.bad()) {
		(void)unlink(tmp.c_str());
		return set_err(err, errlen, -EIO, "%s: cannot write: %s", path, c.text());
	}
	if (rename(tmp.c_str(), path) < 0) {
		int e = errno;
		(void)unlink(tmp.c_str());
		return set_err(err, errlen, -e, "%s: %s", path, strerror(e));
	}
	return 0;
}

} // namespace dicom_results

/* ======================================================================== */

using namespace dicom_results;

namespace {

const uint32_t OVERLAY_MAX_DIM = 2048;
const uint32_t SUMMARY_W = 1024, SUMMARY_H = 1280;
const char *const FONT = "DejaVu Sans";

struct rgb { double r, g, b; };
const struct rgb DEFINITE = { 1.0, 0.84, 0.0 };    /* yellow */
const struct rgb DOUBTFUL = { 1.0, 0.55, 0.0 };    /* orange */
const struct rgb WARN_RED = { 1.0, 0.33, 0.27 };
const struct rgb WHITE = { 1.0, 1.0, 1.0 };
const struct rgb GREY = { 0.72, 0.75, 0.78 };
const struct rgb GREEN = { 0.35, 0.85, 0.45 };

/* cairo objects freed however the function is left (exceptions too) */
struct surface {
	cairo_surface_t *p = NULL;
	surface() = default;
	surface(const surface &) = delete;
	surface &operator=(const surface &) = delete;
	~surface() { if (p) cairo_surface_destroy(p); }
};
struct context {
	cairo_t *p;
	explicit context(cairo_surface_t *sf) : p(cairo_create(sf)) {}
	context(const context &) = delete;
	context &operator=(const context &) = delete;
	~context() { cairo_destroy(p); }
};

/* The score as text: "0.91", or "" when the backend gave none. */
std::string
score_text(double s)
{
	if (s < 0)
		return "";
	char b[32];
	snprintf(b, sizeof(b), "%.2f", s);
	return b;
}

bool
definite(double score)
{
	return score < 0 || score >= 0.5;
}

void
set_font(cairo_t *cr, double size, bool bold)
{
	cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
	    bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

double
text_width(cairo_t *cr, const std::string &s)
{
	cairo_text_extents_t e;
	cairo_text_extents(cr, s.c_str(), &e);
	return e.x_advance;
}

/* S shortened with "…" to fit in W pixels with the current font. */
std::string
fit_width(cairo_t *cr, const std::string &s, double w)
{
	if (text_width(cr, s) <= w)
		return s;
	std::string t = s;
	while (!t.empty()) {
		do
			t.pop_back();
		while (!t.empty() && ((unsigned char)t.back() & 0xc0) == 0x80);
		if (!t.empty() && ((unsigned char)t.back() & 0xc0) == 0xc0)
			t.pop_back();
		if (text_width(cr, t + "\xe2\x80\xa6") <= w)
			return t + "\xe2\x80\xa6";
	}
	return "";
}

void
draw_text(cairo_t *cr, double x, double baseline, const std::string &s, struct rgb c)
{
	cairo_set_source_rgb(cr, c.r, c.g, c.b);
	cairo_move_to(cr, x, baseline);
	cairo_show_text(cr, s.c_str());
}

/* Split S into lines that fit W pixels (current font). */
std::vector<std::string>
wrap(cairo_t *cr, const std::string &s, double w)
{
	std::vector<std::string> lines;
	std::string line, word;
	size_t i = 0;
	while (i <= s.size()) {
		if (i == s.size() || s[i] == ' ') {
			if (!word.empty()) {
				std::string t = line.empty() ? word : line + " " + word;
				if (!line.empty() && text_width(cr, t) > w) {
					lines.push_back(line);
					line = word;
				} else {
					line = t;
				}
				word.clear();
			}
		} else {
			word += s[i];
		}
		i++;
	}
	if (!line.empty())
		lines.push_back(fit_width(cr, line, w));
	for (std::string &l : lines)
		l = fit_width(cr, l, w);
	return lines;
}

/* The finished RGB24 surface into an SC dataset's Image Pixel module. */
void
put_pixels(DcmItem &ds, cairo_surface_t *sf)
{
	int w = cairo_image_surface_get_width(sf), h = cairo_image_surface_get_height(sf);
	int stride = cairo_image_surface_get_stride(sf);
	const unsigned char *data = cairo_image_surface_get_data(sf);
	size_t n = (size_t)w * h * 3;
	/* straight into the element's buffer (even length, pad byte 0) */
	DcmPixelData *pd = new DcmPixelData(DcmTag(DCM_PixelData, EVR_OB));
	Uint8 *o = NULL;
	if (pd->createUint8Array((Uint32)(n + (n & 1)), o).bad() || !o) {
		delete pd;
		throw std::bad_alloc();
	}
	if (n & 1)
		o[n] = 0;
	for (int y = 0; y < h; y++) {
		const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);
		for (int x = 0; x < w; x++) {
			uint32_t v = row[x];
			*o++ = (Uint8)(v >> 16);
			*o++ = (Uint8)(v >> 8);
			*o++ = (Uint8)v;
		}
	}
	ds.putAndInsertUint16(DCM_SamplesPerPixel, 3);
	ds.putAndInsertString(DCM_PhotometricInterpretation, "RGB");
	ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
	ds.putAndInsertUint16(DCM_Rows, (Uint16)h);
	ds.putAndInsertUint16(DCM_Columns, (Uint16)w);
	ds.putAndInsertUint16(DCM_BitsAllocated, 8);
	ds.putAndInsertUint16(DCM_BitsStored, 8);
	ds.putAndInsertUint16(DCM_HighBit, 7);
	ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
	if (ds.insert(pd, OFTrue).bad()) {
		delete pd;
		throw std::bad_alloc();
	}
}

/* Patient Orientation values (A, P, R, L, H, F combinations), two of them */
bool
orientation_ok(const std::string &o)
{
	size_t bs = o.find('\\');
	if (bs == std::string::npos || bs == 0 || bs + 1 >= o.size() ||
	    o.find('\\', bs + 1) != std::string::npos)
		return false;
	for (char c : o)
		if (c != '\\' && !strchr("APRLHF", c))
			return false;
	return true;
}

/*
 * Body Part Examined (copied when a valid code string) and General Series
 * Laterality (type 2C: dciodvfy wants it unless the body part is
 * unpaired, and refuses it then): left out for an unpaired body part; else
 * LAT when L or R; else empty, "unknown" (a warning in dciodvfy, e.g. a
 * summary of both breasts).
 */
void
put_body_part(DcmItem &ds, const std::string &body_part, const std::string &lat)
{
	static const char *const unpaired[] = {
		"CHEST", "ABDOMEN", "PELVIS", "SKULL", "HEAD", "HEADNECK", "NECK", "SPINE",
		"CSPINE", "TSPINE", "LSPINE", "SSPINE", "COCCYX", "SACRUM", "CTSPINE", "TLSPINE",
		"LSSPINE", "CHESTABDOMEN", "ABDOMENPELVIS", "CHESTABDPELVIS", "WHOLEBODY", "HEART",
		"THORAX", "STERNUM", "MEDIASTINUM", "LARYNX", "TRACHEA", "BLADDER", "PROSTATE",
		"UTERUS", "ESOPHAGUS", "STOMACH", "COLON", "LIVER", "PANCREAS", "SPLEEN", "FACE",
		"JAW", "MANDIBLE", "MAXILLA", "NOSE", "SELLA",
	};
	bool cs = !body_part.empty() && body_part.size() <= 16;
	for (char c : body_part)
		cs = cs && (isupper((unsigned char)c) || isdigit((unsigned char)c) || c == ' ' ||
		    c == '_');
	bool is_unpaired = false;
	if (cs) {
		ds.putAndInsertString(DCM_BodyPartExamined, body_part.c_str());
		for (const char *u : unpaired)
			is_unpaired = is_unpaired || body_part == u;
	}
	if (is_unpaired)
		return;         /* even when the source says L or R (dciodvfy: error) */
	ds.putAndInsertString(DCM_Laterality, lat == "L" || lat == "R" ? lat.c_str() : "");
}

/* Everything of an SC but its pixels and its Source Image Sequence. */
void
put_sc_header(DcmItem &ds, const struct dicom_result_info *info,
    const struct triaged_result *r, const struct source &src,
    const struct dicom_object_id *id, const char *kind, const char *derivation)
{
	put_common(ds, info);
	copy_patient_study(*src.ff->getDataset(), ds);
	ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
	ds.putAndInsertString(DCM_SOPInstanceUID, id->sop_uid);
	ds.putAndInsertString(DCM_Modality, "OT");
	ds.putAndInsertString(DCM_SeriesInstanceUID, id->series_uid);
	char num[16];
	snprintf(num, sizeof(num), "%d", id->series_number);
	ds.putAndInsertString(DCM_SeriesNumber, num);
	snprintf(num, sizeof(num), "%d", id->instance_number);
	ds.putAndInsertString(DCM_InstanceNumber, num);
	ds.putAndInsertString(DCM_SeriesDescription,
	    series_description(info, r, kind).c_str());
	ds.putAndInsertString(DCM_ConversionType, "WSD");
	ds.putAndInsertString(DCM_SecondaryCaptureDeviceManufacturer,
	    clean_single(info && info->manufacturer ? info->manufacturer : "triaged", 64).c_str());
	if (info && info->software_version && info->software_version[0])
		ds.putAndInsertString(DCM_SecondaryCaptureDeviceSoftwareVersions,
		    clean_single(info->software_version, 64).c_str());
	OFString d, t;
	DcmDate::getCurrentDate(d);
	DcmTime::getCurrentTime(t, OFTrue, OFFalse);
	ds.putAndInsertString(DCM_DateOfSecondaryCapture, d.c_str());
	ds.putAndInsertString(DCM_TimeOfSecondaryCapture, t.c_str());
	ds.putAndInsertString(DCM_ImageType, "DERIVED\\SECONDARY");
	ds.putAndInsertString(DCM_BurnedInAnnotation, "YES");
	ds.putAndInsertString(DCM_DerivationDescription, clean_text(derivation, 1024).c_str());
	std::string comment = "AI RESULT: " + algo_title(info, r);
	if (info && info->not_for_diagnosis)
		comment += ". NOT FOR DIAGNOSIS";
	ds.putAndInsertString(DCM_ImageComments, clean_text(comment.c_str(), 10240).c_str());
}

/* ---- overlay ---------------------------------------------------------------- */

struct overlay_geometry {
	int banner;             /* height of the banner strip above the image */
	double scale;           /* source pixels per overlay pixel */
};

void
draw_box(cairo_t *cr, double x0, double y0, double x1, double y1, bool solid, double lw)
{
	struct rgb c = solid ? DEFINITE : DOUBTFUL;
	/* at least a few pixels, whatever the scale */
	if (x1 - x0 < 3) { double m = (x0 + x1) / 2; x0 = m - 1.5; x1 = m + 1.5; }
	if (y1 - y0 < 3) { double m = (y0 + y1) / 2; y0 = m - 1.5; y1 = m + 1.5; }
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
	cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
	cairo_set_dash(cr, NULL, 0, 0);
	cairo_set_source_rgba(cr, 0, 0, 0, 0.85);
	cairo_set_line_width(cr, lw + 2.0 * std::max(1.0, lw / 3));
	cairo_stroke_preserve(cr);
	cairo_set_source_rgb(cr, c.r, c.g, c.b);
	cairo_set_line_width(cr, lw);
	if (!solid) {
		double dash[2] = { 3 * lw, 2 * lw };
		cairo_set_dash(cr, dash, 2, 0);
	}
	cairo_stroke(cr);
	cairo_set_dash(cr, NULL, 0, 0);
}

/* "#n label score" beside the box: above it, else below, else inside. */
void
draw_label(cairo_t *cr, const std::string &text, double x0, double y0, double y1,
    int w, int top, int h, double fs, bool solid)
{
	struct rgb c = solid ? DEFINITE : DOUBTFUL;
	set_font(cr, fs, true);
	std::string t = fit_width(cr, text, w - fs);
	double tw = text_width(cr, t), pad = fs * 0.25, bh = fs * 1.3;
	double x = std::max(0.0, std::min(x0, w - tw - 2 * pad));
	double y;
	if (y0 - bh - 2 >= top)
		y = y0 - bh - 2;
	else if (y1 + bh + 2 <= h)
		y = y1 + 2;
	else
		y = y0 + 2;
	cairo_set_source_rgba(cr, 0, 0, 0, 0.72);
	cairo_rectangle(cr, x, y, tw + 2 * pad, bh);
	cairo_fill(cr);
	draw_text(cr, x + pad, y + bh - fs * 0.33, t, c);
}

int
render_overlay(const struct dicom_result_info *info, const struct triaged_result *r,
    const struct source &src, uint32_t frame, const struct triaged_image *img,
    surface &out, struct overlay_geometry &g, char *err, size_t errlen)
{
	int w = (int)img->width, ih = (int)img->height;
	double fs = std::max(13.0, std::min(48.0, w / 48.0));
	bool nfd = info && info->not_for_diagnosis;

	/* banner text, measured on a scratch surface */
	std::string left = "AI RESULT \xc2\xb7 " + algo_title(info, r);
	size_t nf = 0, elsewhere = 0;
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct result_finding &f = r->findings[i];
		if (src.sop_uid == f.sop_uid) {
			if (f.frame == frame || (f.frame == 0 && frame == 1))
				nf++;
			else
				elsewhere++;
		}
	}
	char cnt[96];
	snprintf(cnt, sizeof(cnt), "%zu finding%s", nf, nf == 1 ? "" : "s");
	if (elsewhere)
		snprintf(cnt + strlen(cnt), sizeof(cnt) - strlen(cnt), " (+%zu on other frames)",
		    elsewhere);
	std::string right = nfd ? "NOT FOR DIAGNOSIS" : cnt;
	std::string second = nfd ? cnt : "";
	double pad = fs * 0.5;
	bool two;
	{
		surface probe;
		probe.p = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 8, 8);
		context pc(probe.p);
		set_font(pc.p, fs, true);
		two = !second.empty() ||
		    text_width(pc.p, left) + text_width(pc.p, right) + 3 * pad > w;
	}
	g.banner = (int)ceil(fs * (two ? 2.9 : 1.7));
	g.scale = img->scale > 0 ? img->scale : 1.0;
	int h = ih + g.banner;
	if (h > 65535)
		return set_err(err, errlen, -ENOTSUP, "overlay too tall");

	out.p = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
	cairo_surface_t *sf = out.p;
	if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS)
		return set_err(err, errlen, -ENOMEM, "cannot make a %dx%d drawing surface", w, h);
	cairo_surface_flush(sf);
	unsigned char *data = cairo_image_surface_get_data(sf);
	int stride = cairo_image_surface_get_stride(sf);
	for (int y = 0; y < g.banner; y++)
		memset(data + (size_t)y * stride, 0x10, (size_t)w * 4);
	for (int y = 0; y < ih; y++) {
		uint32_t *row = (uint32_t *)(data + (size_t)(y + g.banner) * stride);
		const uint16_t *p = img->pixels + (size_t)y * w;
		for (int x = 0; x < w; x++) {
			uint32_t v = p[x] >> 8;
			row[x] = 0xff000000u | v << 16 | v << 8 | v;
		}
	}
	cairo_surface_mark_dirty(sf);

	context ctx(sf);
	cairo_t *cr = ctx.p;
	/* banner */
	set_font(cr, fs, true);
	double base1 = fs * 1.2;
	if (two) {
		/* line 1: what made it; line 2: NOT FOR DIAGNOSIS, and the count */
		draw_text(cr, pad, base1, fit_width(cr, left, w - 2 * pad), WHITE);
		std::string l2 = nfd ? right : cnt;
		double lw2 = text_width(cr, fit_width(cr, l2, w - 2 * pad));
		draw_text(cr, pad, base1 + fs * 1.25, fit_width(cr, l2, w - 2 * pad),
		    nfd ? WARN_RED : GREY);
		if (!second.empty()) {
			std::string s2 = fit_width(cr, second, std::max(0.0, w - lw2 - 4 * pad));
			if (!s2.empty())
				draw_text(cr, w - pad - text_width(cr, s2), base1 + fs * 1.25, s2, GREY);
		}
	} else {
		draw_text(cr, pad, base1, left, WHITE);
		draw_text(cr, w - pad - text_width(cr, right), base1, right, nfd ? WARN_RED : GREY);
	}

	/* boxes, then labels (labels on top of every box) */
	double lw = std::max(2.0, std::min(w, ih) / 350.0);
	double lfs = std::max(12.0, std::min(36.0, w / 64.0));
	struct lab { std::string text; double x0, y0, y1; bool solid; };
	std::vector<struct lab> labels;
	cairo_save(cr);
	cairo_rectangle(cr, 0, g.banner, w, ih);
	cairo_clip(cr);
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct result_finding &f = r->findings[i];
		if (src.sop_uid != f.sop_uid || !(f.frame == frame || (f.frame == 0 && frame == 1)) ||
		    !f.has_box)
			continue;
		double x0 = f.box[0] / g.scale, y0 = f.box[1] / g.scale + g.banner;
		double x1 = f.box[2] / g.scale, y1 = f.box[3] / g.scale + g.banner;
		bool solid = definite(f.score);
		draw_box(cr, x0, y0, x1, y1, solid, lw);
		std::string t = "#" + std::to_string(i + 1) + " " + clean_text(f.label, 64);
		std::string st = score_text(f.score);
		if (!st.empty())
			t += " " + st;
		labels.push_back({ t, x0, y0, y1, solid });
	}
	cairo_restore(cr);
	for (const struct lab &l : labels)
		draw_label(cr, l.text, l.x0, l.y0, l.y1, w, g.banner, h, lfs, l.solid);
	cairo_status_t st = cairo_status(cr);
	cairo_surface_flush(sf);
	if (st != CAIRO_STATUS_SUCCESS)
		return set_err(err, errlen, -ENOMEM, "drawing failed: %s", cairo_status_to_string(st));
	return 0;
}

int
write_overlay(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *path, const struct dicom_object_id *id, const char *out_path,
    char *err, size_t errlen)
{
	struct source src;
	int e = load_source(path, src, err, errlen);
	if (e < 0)
		return e;

	/* the frame: that of this image's first finding */
	uint32_t frame = 1;
	for (size_t i = 0; i < r->nfindings; i++)
		if (src.sop_uid == r->findings[i].sop_uid) {
			frame = r->findings[i].frame ? r->findings[i].frame : 1;
			break;
		}
	if (frame > src.frames)
		frame = 1;

	struct triaged_image *raw = NULL;
	e = dicom_image_load(path, frame, OVERLAY_MAX_DIM, &raw, err, errlen);
	if (e < 0)
		return e;
	std::unique_ptr<struct triaged_image, void (*)(struct triaged_image *)> img(raw,
	    dicom_image_free);
	surface sf;
	struct overlay_geometry g;
	e = render_overlay(info, r, src, frame, img.get(), sf, g, err, errlen);
	bool was_color = img->was_color;
	double scale = img->scale;
	img.reset();
	if (e < 0)
		return e;

	DcmFileFormat ff;
	DcmDataset &ds = *ff.getDataset();
	char deriv[512];
	snprintf(deriv, sizeof(deriv), "AI result overlay: %s rendered with its window%s%s, "
	    "downsampled by %.3g, a %d-pixel banner added above, findings drawn as boxes "
	    "(solid: score >= 0.5, dashed: doubtful)", view_name(src).c_str(),
	    src.frames > 1 ? ", one frame" : "", was_color ? " as luminance" : "",
	    scale, g.banner);
	put_sc_header(ds, info, r, src, id, "AI overlays", deriv);
	/* the image is neither flipped nor rotated: the orientation holds */
	ds.putAndInsertString(DCM_PatientOrientation, orientation_ok(src.patient_orientation) ?
	    src.patient_orientation.c_str() : "");
	std::string lat = src.series_laterality == "L" || src.series_laterality == "R" ?
	    src.series_laterality : src.image_laterality;
	put_body_part(ds, src.body_part, lat);
	if (src.lossy == "01") {
		ds.putAndInsertString(DCM_LossyImageCompression, "01");
		if (!src.lossy_ratio.empty())
			ds.putAndInsertString(DCM_LossyImageCompressionRatio, src.lossy_ratio.c_str());
		if (!src.lossy_method.empty())
			ds.putAndInsertString(DCM_LossyImageCompressionMethod, src.lossy_method.c_str());
	}
	DcmItem *item = NULL;
	if (ds.findOrCreateSequenceItem(DCM_SourceImageSequence, item, -2).good() && item) {
		item->putAndInsertString(DCM_ReferencedSOPClassUID, src.sop_class.c_str());
		item->putAndInsertString(DCM_ReferencedSOPInstanceUID, src.sop_uid.c_str());
		if (src.frames > 1) {
			char fb[16];
			snprintf(fb, sizeof(fb), "%u", frame);
			item->putAndInsertString(DCM_ReferencedFrameNumber, fb);
		}
	}
	put_pixels(ds, sf.p);
	return save(ff, out_path, err, errlen);
}

/* ---- summary ------------------------------------------------------------------ */

std::string
fmt_number(double v)
{
	char b[64];
	if (fabs(v - round(v)) < 1e-9 && fabs(v) < 1e15)
		snprintf(b, sizeof(b), "%.0f", v);
	else
		snprintf(b, sizeof(b), "%.4g", v);
	return b;
}

std::string
dicom_date(const std::string &da)
{
	if (!da_ok(da))
		return da;
	return da.substr(0, 4) + "-" + da.substr(4, 2) + "-" + da.substr(6, 2);
}

/* "132 mo (11 y 0 mo)", "10.5 a (126 mo)", else "value unit". */
std::string
measurement_text(const struct result_measurement &m)
{
	std::string unit = clean_text(m.unit, 64);
	std::string v = fmt_number(m.value) + (unit.empty() || unit == "1" ? "" : " " + unit);
	char b[96];
	if (unit == "mo" && m.value >= 0 && m.value < 2400) {
		int months = (int)lround(m.value);
		snprintf(b, sizeof(b), "%s months (%d y %d mo)", fmt_number(m.value).c_str(),
		    months / 12, months % 12);
		return b;
	}
	if (unit == "a" && m.value >= 0 && m.value < 200) {
		snprintf(b, sizeof(b), "%s years (%ld months)", fmt_number(m.value).c_str(),
		    lround(m.value * 12));
		return b;
	}
	return v;
}

int
render_summary(const struct dicom_result_info *info, const struct triaged_result *r,
    const std::vector<struct source> &srcs, surface &out, char *err, size_t errlen)
{
	const int W = SUMMARY_W, H = SUMMARY_H;
	const double M = 48;    /* margin */
	bool nfd = info && info->not_for_diagnosis;
	out.p = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
	cairo_surface_t *sf = out.p;
	if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS)
		return set_err(err, errlen, -ENOMEM, "cannot make the summary surface");
	context ctx(sf);
	cairo_t *cr = ctx.p;
	cairo_set_source_rgb(cr, 0.07, 0.08, 0.10);
	cairo_paint(cr);

	double y = 0;
	/* title bar */
	cairo_set_source_rgb(cr, 0.13, 0.16, 0.21);
	cairo_rectangle(cr, 0, 0, W, 104);
	cairo_fill(cr);
	set_font(cr, 34, true);
	draw_text(cr, M, 50, "AI RESULT SUMMARY", WHITE);
	set_font(cr, 22, false);
	std::string algo = algo_title(info, r);
	if (r->algo_vendor[0])
		algo += " \xc2\xb7 " + clean_text(r->algo_vendor, 64);
	draw_text(cr, M, 86, fit_width(cr, algo, W - 2 * M), GREY);
	y = 104;
	if (nfd) {
		cairo_set_source_rgb(cr, 0.55, 0.08, 0.06);
		cairo_rectangle(cr, 0, y, W, 56);
		cairo_fill(cr);
		set_font(cr, 28, true);
		std::string t = "NOT FOR DIAGNOSIS";
		draw_text(cr, (W - text_width(cr, t)) / 2, y + 38, t, WHITE);
		y += 56;
	}
	y += 36;

	/* study */
	const struct source &s0 = srcs[0];
	DcmDataset *d0 = s0.ff->getDataset();
	auto field = [&](const DcmTagKey &tag) {
		OFString v;
		d0->findAndGetOFStringArray(tag, v);
		return clean_text(v.c_str(), 64);
	};
	std::string pname = field(DCM_PatientName);
	std::replace(pname.begin(), pname.end(), '^', ' ');
	std::string pid = field(DCM_PatientID);
	std::string sex = field(DCM_PatientSex), age = field(DCM_PatientAge);
	if (age.size() == 4 && isdigit((unsigned char)age[0])) {
		int n = atoi(age.substr(0, 3).c_str());
		const char *u = age[3] == 'Y' ? " y" : age[3] == 'M' ? " mo" : age[3] == 'W' ? " wk" : " d";
		age = std::to_string(n) + u;
	} else {
		age.clear();
	}
	std::string who = pname;
	for (const std::string &x : { sex, age })
		if (!x.empty())
			who += (who.empty() ? "" : ", ") + x;
	std::string acc = field(DCM_AccessionNumber);
	std::string sdate = dicom_date(field(DCM_StudyDate));
	std::string sdesc = field(DCM_StudyDescription);
	std::string mods;
	for (const struct source &s : srcs)
		if (!s.modality.empty() && mods.find(s.modality) == std::string::npos)
			mods += (mods.empty() ? "" : "/") + s.modality;
	struct kv { const char *k; std::string v; };
	std::vector<struct kv> study = {
		{ "Patient", who + (pid.empty() ? "" : "   ID " + pid) },
		{ "Study", sdate + (sdesc.empty() ? "" : "   " + sdesc) },
		{ "Accession", acc.empty() ? "-" : acc },
		{ "Images", std::to_string(srcs.size()) + (mods.empty() ? "" : " " + mods) },
	};
	for (const struct kv &f : study) {
		set_font(cr, 20, false);
		draw_text(cr, M, y, f.k, GREY);
		set_font(cr, 22, false);
		draw_text(cr, M + 150, y, fit_width(cr, f.v, W - 2 * M - 150), WHITE);
		y += 34;
	}
	y += 18;
	cairo_set_source_rgb(cr, 0.25, 0.28, 0.33);
	cairo_rectangle(cr, M, y, W - 2 * M, 2);
	cairo_fill(cr);
	y += 56;

	/* outcome and score */
	const char *oc = r->outcome == OUTCOME_POSITIVE ? "POSITIVE" :
	    r->outcome == OUTCOME_NEGATIVE ? "NEGATIVE" :
	    r->outcome == OUTCOME_INDETERMINATE ? "INDETERMINATE" : "NO OUTCOME";
	struct rgb occ = r->outcome == OUTCOME_POSITIVE ? WARN_RED :
	    r->outcome == OUTCOME_NEGATIVE ? GREEN : DOUBTFUL;
	set_font(cr, 22, false);
	draw_text(cr, M, y - 8, "Outcome", GREY);
	set_font(cr, 48, true);
	draw_text(cr, M + 150, y + 4, oc, occ);
	double ow = text_width(cr, oc);
	if (r->score >= 0) {
		set_font(cr, 30, false);
		draw_text(cr, M + 150 + ow + 40, y, "score " + score_text(r->score), WHITE);
	}
	y += 52;
	if (r->summary[0]) {
		set_font(cr, 22, false);
		std::vector<std::string> lines = wrap(cr, clean_text(r->summary, 1024), W - 2 * M - 150);
		size_t maxl = 4;
		for (size_t i = 0; i < lines.size() && i < maxl; i++) {
			draw_text(cr, M + 150, y, i + 1 == maxl && lines.size() > maxl ?
			    fit_width(cr, lines[i] + " \xe2\x80\xa6", W - 2 * M - 150) : lines[i], WHITE);
			y += 30;
		}
	}
	y += 30;

	/* measurements */
	if (r->nmeasurements) {
		set_font(cr, 26, true);
		draw_text(cr, M, y, "Measurements", WHITE);
		y += 40;
		for (size_t i = 0; i < r->nmeasurements && y < H - 300; i++) {
			const struct result_measurement &m = r->measurements[i];
			set_font(cr, 22, false);
			std::string name = clean_text(m.name, 64);
			if (!name.empty())
				name[0] = (char)toupper((unsigned char)name[0]);
			draw_text(cr, M, y, fit_width(cr, name, 300), GREY);
			set_font(cr, 26, true);
			draw_text(cr, M + 320, y, fit_width(cr, measurement_text(m), W - 2 * M - 320), WHITE);
			y += 38;
		}
		y += 24;
	}

	/* findings */
	set_font(cr, 26, true);
	char hdr[64];
	snprintf(hdr, sizeof(hdr), "Findings (%zu)", r->nfindings);
	draw_text(cr, M, y, r->nfindings ? hdr : "Findings: none", WHITE);
	y += 40;
	if (r->nfindings) {
		const double cx[] = { M, M + 70, M + 430, M + 650 };
		set_font(cr, 18, false);
		draw_text(cr, cx[0], y, "#", GREY);
		draw_text(cr, cx[1], y, "finding", GREY);
		draw_text(cr, cx[2], y, "score", GREY);
		draw_text(cr, cx[3], y, "image", GREY);
		y += 32;
		const double foot = H - 110;
		for (size_t i = 0; i < r->nfindings; i++) {
			if (y > foot - 34 && i + 1 < r->nfindings) {
				set_font(cr, 22, false);
				char more[64];
				snprintf(more, sizeof(more), "\xe2\x80\xa6 and %zu more (see the SR)",
				    r->nfindings - i);
				draw_text(cr, cx[1], y, more, GREY);
				y += 34;
				break;
			}
			const struct result_finding &f = r->findings[i];
			bool solid = definite(f.score);
			std::string img = "-";
			for (const struct source &s : srcs)
				if (s.sop_uid == f.sop_uid) {
					img = view_name(s);
					if (s.frames > 1)
						img += " frame " + std::to_string(f.frame ? f.frame : 1);
					break;
				}
			set_font(cr, 22, false);
			draw_text(cr, cx[0], y, "#" + std::to_string(i + 1), GREY);
			set_font(cr, 22, true);
			draw_text(cr, cx[1], y, fit_width(cr, clean_text(f.label, 64), cx[2] - cx[1] - 16),
			    solid ? DEFINITE : DOUBTFUL);
			set_font(cr, 22, false);
			std::string sc = score_text(f.score);
			draw_text(cr, cx[2], y, sc.empty() ? "-" : sc + (solid ? "" : " (doubtful)"),
			    WHITE);
			draw_text(cr, cx[3], y, fit_width(cr, img, W - M - cx[3]), WHITE);
			y += 34;
		}
	}

	/* footer */
	cairo_set_source_rgb(cr, 0.25, 0.28, 0.33);
	cairo_rectangle(cr, M, H - 96, W - 2 * M, 2);
	cairo_fill(cr);
	set_font(cr, 18, false);
	char foot[256];
	OFString d, t;
	DcmDate::getCurrentDate(d);
	DcmTime::getCurrentTime(t, OFFalse, OFFalse);
	snprintf(foot, sizeof(foot), "%s %s \xc2\xb7 job %lld \xc2\xb7 %s %s",
	    info && info->manufacturer ? clean_text(info->manufacturer, 32).c_str() : "triaged",
	    info && info->software_version ? clean_text(info->software_version, 32).c_str() : "",
	    (long long)(info ? info->job_id : 0), dicom_date(d.c_str()).c_str(),
	    t.size() >= 4 ? (t.substr(0, 2) + ":" + t.substr(2, 2)).c_str() : "");
	draw_text(cr, M, H - 64, fit_width(cr, foot, W - 2 * M), GREY);
	draw_text(cr, M, H - 36, fit_width(cr, nfd ?
	    "Reference analysis, not a diagnostic model. AI output: check the original images." :
	    "AI output: check the original images before acting on it.", W - 2 * M),
	    nfd ? WARN_RED : GREY);

	cairo_status_t st = cairo_status(cr);
	cairo_surface_flush(sf);
	if (st != CAIRO_STATUS_SUCCESS)
		return set_err(err, errlen, -ENOMEM, "drawing failed: %s", cairo_status_to_string(st));
	return 0;
}

int
write_summary(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *const *sources, size_t nsources, const struct dicom_object_id *id,
    const char *out_path, char *err, size_t errlen)
{
	std::vector<struct source> srcs(nsources);
	for (size_t i = 0; i < nsources; i++) {
		int e = load_source(sources[i], srcs[i], err, errlen);
		if (e < 0)
			return e;
	}
	surface sf;
	int e = render_summary(info, r, srcs, sf, err, errlen);
	if (e < 0)
		return e;
	DcmFileFormat ff;
	DcmDataset &ds = *ff.getDataset();
	put_sc_header(ds, info, r, srcs[0], id, "AI summary", "AI result summary page: outcome, score, "
	    "findings and measurements as text");
	ds.putAndInsertString(DCM_PatientOrientation, "");
	/* one laterality when every image has the same, else unknown */
	std::string lat;
	for (const struct source &s : srcs) {
		std::string l = s.series_laterality == "L" || s.series_laterality == "R" ?
		    s.series_laterality : s.image_laterality;
		if (&s == &srcs[0])
			lat = l;
		else if (l != lat)
			lat.clear();
	}
	put_body_part(ds, srcs[0].body_part, lat);
	/* the summary is derived from every source image */
	std::vector<std::string> seen;
	for (const struct source &s : srcs) {
		if (std::find(seen.begin(), seen.end(), s.sop_uid) != seen.end())
			continue;
		seen.push_back(s.sop_uid);
		DcmItem *item = NULL;
		if (ds.findOrCreateSequenceItem(DCM_SourceImageSequence, item, -2).good() && item) {
			item->putAndInsertString(DCM_ReferencedSOPClassUID, s.sop_class.c_str());
			item->putAndInsertString(DCM_ReferencedSOPInstanceUID, s.sop_uid.c_str());
		}
	}
	put_pixels(ds, sf.p);
	return save(ff, out_path, err, errlen);
}

int
check_args(const struct triaged_result *r, const struct dicom_object_id *id,
    const char *out_path, char *err, size_t errlen)
{
	if (!r || !id || !out_path || !*out_path)
		return set_err(err, errlen, -EINVAL, "missing argument");
	if (!id->series_uid || !uid_ok(id->series_uid) || !id->sop_uid || !uid_ok(id->sop_uid))
		return set_err(err, errlen, -EINVAL, "invalid Series or SOP Instance UID");
	return 0;
}

} // namespace

extern "C" int
dicom_write_overlay(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *source, const struct dicom_object_id *id, const char *out_path,
    char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	try {
		int e = check_args(r, id, out_path, err, errlen);
		if (e < 0)
			return e;
		return write_overlay(info, r, source, id, out_path, err, errlen);
	} catch (const std::bad_alloc &) {
		return set_err(err, errlen, -ENOMEM, "out of memory writing the overlay");
	} catch (...) {
		return set_err(err, errlen, -EIO, "cannot write the overlay");
	}
}

extern "C" int
dicom_write_summary(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *const *sources, size_t nsources, const struct dicom_object_id *id,
    const char *out_path, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	try {
		int e = check_args(r, id, out_path, err, errlen);
		if (e < 0)
			return e;
		if (!sources || nsources == 0)
			return set_err(err, errlen, -EINVAL, "no source instances");
		return write_summary(info, r, sources, nsources, id, out_path, err, errlen);
	} catch (const std::bad_alloc &) {
		return set_err(err, errlen, -ENOMEM, "out of memory writing the summary");
	} catch (...) {
		return set_err(err, errlen, -EIO, "cannot write the summary");
	}
}

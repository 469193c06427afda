/*
 * dicom_image.cc - decode one frame of a stored instance into the grey
 * 16-bit image that analysis backends get (struct triaged_image).
 *
 * DESIGN: DCMTK parses the file (values above 4 KiB stay on disk until
 * needed) and decodes every transfer syntax its registered codecs know
 * (native, deflate, JPEG, JPEG-LS, RLE). JPEG 2000, which Debian's DCMTK
 * cannot decode, goes through OpenJPEG (dicom_j2k.cc); the decoded frame is
 * put back into the dataset as native pixel data, so from there on every
 * syntax takes the same path: one DicomImage for the one frame (partial
 * access: other frames are not read), its intermediate data (stored values,
 * or the output of a Modality LUT Sequence, which DCMTK applies), and one
 * pass of our own that applies Rescale Slope/Intercept, the VOI window (the
 * first in the file, else the min/max of the frame), the MONOCHROME1
 * inversion and the scaling to 0..65535 through a lookup table, while
 * downsampling by area averaging (exact, fractional box weights). Nothing
 * is rendered twice and no 8-bit image is made. Colour images are rendered
 * by DCMTK (16 bits per sample) and reduced to luminance (Rec. 601).
 * When the output is at least 4x smaller, JPEG 2000 is decoded with whole
 * resolution levels dropped (keeping at least 2x area averaging on top),
 * which skips most of its entropy decoding.
 *
 * Not applied: VOI LUT Sequence (min/max is used when there is no window),
 * Pixel Padding Value, Presentation LUT Shape (MONOCHROME1 alone decides).
 *
 * Hostile input: dimensions are bounded (rows, columns <= 65535, pixels per
 * frame <= 2^26, pixels of all frames <= 2^31), native pixel data must be as
 * long as its attributes demand, and DCMTK's or OpenJPEG's complaints come
 * back as -EBADMSG with a message. No exception crosses the C boundary.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmimgle/dcmimage.h"
#include "dcmtk/dcmimgle/dipixel.h"
#include "dcmtk/dcmimage/diregist.h"   /* colour images (RGB, YBR, palette) */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <limits>
#include <new>
#include <vector>

#include "dicom/dicom.h"
#include "dicom/dicom_err.h"
#include "dicom/dicom_j2k.h"
#include "triaged/backend.h"

namespace {

const uint64_t MAX_FRAME_PIXELS = (uint64_t)1 << 26;   /* 8192 x 8192 */
const uint64_t MAX_TOTAL_PIXELS = (uint64_t)1 << 31;
/* stored-value ranges up to this size are mapped through a table */
const int64_t MAX_LUT = (int64_t)1 << 20;

/* An unsigned attribute (US, or an integer string): false when absent or
 * not a non-negative integer. */
bool
get_uint(DcmItem *ds, const DcmTagKey &tag, uint32_t &out)
{
	Uint16 v16;
	OFString s;

	if (ds->findAndGetUint16(tag, v16).good()) {
		out = v16;
		return true;
	}
	if (ds->findAndGetOFString(tag, s).good()) {
		const char *p = s.c_str();
		while (*p == ' ')
			p++;
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		while (*end == ' ')
			end++;
		if (end == p || *end || errno || v > UINT32_MAX || *p == '-')
			return false;
		out = (uint32_t)v;
		return true;
	}
	return false;
}

bool
get_double(DcmItem *ds, const DcmTagKey &tag, double &out)
{
	Float64 v;

	if (ds->findAndGetFloat64(tag, v, 0).good() && isfinite(v)) {
		out = v;
		return true;
	}
	return false;
}

enum voi_function { VOI_LINEAR, VOI_LINEAR_EXACT, VOI_SIGMOID };

/* What our own pixel pass needs to know. */
struct mapping {
	bool   modality_by_dcmtk;     /* Modality LUT Sequence: DCMTK applied it */
	double slope, intercept;
	bool   has_window;
	double center, width;
	enum voi_function func;
	bool   monochrome1;
};

void
read_mapping(DcmDataset *ds, struct mapping &m)
{
	OFString s;

	m.modality_by_dcmtk = ds->tagExistsWithValue(DCM_ModalityLUTSequence);
	m.slope = 1.0;
	m.intercept = 0.0;
	if (!m.modality_by_dcmtk) {
		(void)get_double(ds, DCM_RescaleSlope, m.slope);
		(void)get_double(ds, DCM_RescaleIntercept, m.intercept);
		if (m.slope == 0.0)
			m.slope = 1.0;
	}
	m.func = VOI_LINEAR;
	if (ds->findAndGetOFString(DCM_VOILUTFunction, s).good()) {
		if (s == "LINEAR_EXACT")
			m.func = VOI_LINEAR_EXACT;
		else if (s == "SIGMOID")
			m.func = VOI_SIGMOID;
	}
	m.has_window = get_double(ds, DCM_WindowCenter, m.center) &&
	    get_double(ds, DCM_WindowWidth, m.width) &&
	    (m.func == VOI_LINEAR ? m.width >= 1.0 : m.width > 0.0);
	m.monochrome1 = false;
	if (ds->findAndGetOFString(DCM_PhotometricInterpretation, s).good())
		m.monochrome1 = s == "MONOCHROME1";
}

/* VOI of PS3.3 C.11.2.1.2: X (modality output) to 0..1. */
double
voi(const struct mapping &m, double x, double lo, double hi)
{
	if (!m.has_window) {
		if (hi <= lo)
			return 0.0;
		return (x - lo) / (hi - lo);
	}
	double c = m.center, w = m.width;
	switch (m.func) {
	case VOI_SIGMOID:
		return 1.0 / (1.0 + exp(-4.0 * (x - c) / w));
	case VOI_LINEAR_EXACT:
		if (x <= c - w / 2)
			return 0.0;
		if (x > c + w / 2)
			return 1.0;
		return (x - c) / w + 0.5;
	case VOI_LINEAR:
		break;
	}
	if (x <= c - 0.5 - (w - 1) / 2)
		return 0.0;
	if (x > c - 0.5 + (w - 1) / 2)
		return 1.0;
	if (w <= 1.0)
		return 1.0;
	return (x - (c - 0.5)) / (w - 1) + 0.5;
}

uint16_t
to_u16(const struct mapping &m, double y)
{
	if (!(y > 0.0))
		y = 0.0;
	if (y > 1.0)
		y = 1.0;
	long v = lround(y * 65535.0);
	return (uint16_t)(m.monochrome1 ? 65535 - v : v);
}

/*
 * Area averaging of a SW x SH grid to W x H, with S grid pixels per output
 * pixel (S >= 1) on both axes: output pixel j covers [j*S, (j+1)*S) of the
 * grid, grid pixels cut by that boundary count with the part inside; the
 * last output row and column may be covered only in part, and every output
 * pixel is divided by the area it covers. Rows are fed top to bottom; a
 * row is read through VALUE(x), once per grid pixel.
 */
class AreaResampler {
public:
	AreaResampler(uint32_t sw, uint32_t sh, uint32_t w, uint32_t h, double s)
	    : w_(w), h_(h), xs_(w), yj_(sh), yw_(sh), yn_(h + 1, 0.0f),
	      tmp_(w), acc_((size_t)(h + 1) * w, 0.0f)
	{
		for (uint32_t j = 0; j < w; j++) {
			double b = j * s, e = std::min((j + 1) * s, (double)sw);
			if (j == w - 1)
				e = sw;         /* the tail belongs to the last one */
			struct span &p = xs_[j];
			p.first = std::min((uint32_t)floor(b), sw - 1);
			p.last = std::max(p.first, std::min((uint32_t)ceil(e) - 1, sw - 1));
			p.wfirst = (float)(std::min(p.first + 1.0, e) - b);
			p.wlast = (float)(e - p.last);
			p.norm = (float)(e - b);
		}
		for (uint32_t i = 0; i < sh; i++) {
			uint32_t k = std::min((uint32_t)floor(i / s), h - 1);
			double edge = (k + 1) * s;
			double w0 = (k == h - 1 || edge >= i + 1) ? 1.0 : edge - i;
			yj_[i] = k;
			yw_[i] = (float)w0;
			yn_[k] += (float)w0;
			yn_[k + 1] += (float)(1.0 - w0);
		}
	}

	template <typename F>
	void row(uint32_t y, F value)
	{
		float *t = tmp_.data();
		for (uint32_t j = 0; j < w_; j++) {
			const struct span &p = xs_[j];
			float sum = value(p.first) * p.wfirst;
			if (p.last > p.first) {
				float mid = 0.0f;
				for (uint32_t i = p.first + 1; i < p.last; i++)
					mid += value(i);
				sum += mid + value(p.last) * p.wlast;
			}
			t[j] = sum;
		}
		uint32_t k = yj_[y];
		float w0 = yw_[y], w1 = 1.0f - w0;
		float *r0 = &acc_[(size_t)k * w_];
		if (w1 == 0.0f) {
			for (uint32_t j = 0; j < w_; j++)
				r0[j] += t[j];
			return;
		}
		float *r1 = r0 + w_;
		for (uint32_t j = 0; j < w_; j++) {
			r0[j] += t[j] * w0;
			r1[j] += t[j] * w1;
		}
	}

	void finish(uint16_t *out) const
	{
		for (uint32_t y = 0; y < h_; y++) {
			const float *r = &acc_[(size_t)y * w_];
			for (uint32_t x = 0; x < w_; x++) {
				float n = xs_[x].norm * yn_[y];
				float v = n > 0.0f ? r[x] / n : 0.0f;
				v = v < 0.0f ? 0.0f : v > 65535.0f ? 65535.0f : v;
				out[(size_t)y * w_ + x] = (uint16_t)(v + 0.5f);
			}
		}
	}

private:
	struct span {
		uint32_t first, last;   /* grid pixels of an output column */
		float wfirst, wlast;    /* their parts inside it; those between count 1 */
		float norm;             /* the width it covers */
	};
	uint32_t w_, h_;
	std::vector<struct span> xs_;
	std::vector<uint32_t> yj_;   /* per grid row: first output row */
	std::vector<float> yw_;      /* and its part in it (the rest: the next) */
	std::vector<float> yn_;
	std::vector<float> tmp_, acc_;
};

/* Output size for a SW x SH source and MAX_DIM: keep the aspect, the long
 * side becomes MAX_DIM; one scale for both axes. */
void
output_size(uint32_t sw, uint32_t sh, uint32_t max_dim, uint32_t &w, uint32_t &h, double &s)
{
	uint32_t big = std::max(sw, sh);

	if (max_dim == 0 || big <= max_dim) {
		w = sw;
		h = sh;
		s = 1.0;
		return;
	}
	s = (double)big / max_dim;
	w = (uint32_t)ceil(sw / s - 1e-9);
	h = (uint32_t)ceil(sh / s - 1e-9);
	w = std::min(std::max(w, 1u), max_dim);
	h = std::min(std::max(h, 1u), max_dim);
}

/* Map the monochrome intermediate data (type T, GW x GH) to 0..65535 and
 * downsample into IMG. */
template <typename T>
int
map_mono(const T *src, uint32_t gw, uint32_t gh, const struct mapping &m,
    double gs, DicomImage &di, struct triaged_image *img)
{
	size_t n = (size_t)gw * gh;
	T vmin = src[0], vmax = src[0];
	double dmin, dmax;

	/* DCMTK found the range while reading; table indexes are clamped
	 * below anyway, so a wrong range could not read out of bounds */
	if (di.getMinMaxValues(dmin, dmax, 0) && dmin <= dmax &&
	    dmin >= (double)std::numeric_limits<T>::lowest() &&
	    dmax <= (double)std::numeric_limits<T>::max()) {
		vmin = (T)dmin;
		vmax = (T)dmax;
	} else {
		for (size_t i = 1; i < n; i++) {
			vmin = std::min(vmin, src[i]);
			vmax = std::max(vmax, src[i]);
		}
	}
	/* modality output range (the transform is linear) */
	double a = (double)vmin * m.slope + m.intercept;
	double b = (double)vmax * m.slope + m.intercept;
	double lo = std::min(a, b), hi = std::max(a, b);

	int64_t range = (int64_t)vmax - (int64_t)vmin + 1;
	std::vector<uint16_t> lut;
	if (range <= MAX_LUT) {
		lut.resize((size_t)range);
		for (int64_t i = 0; i < range; i++) {
			double x = (double)((int64_t)vmin + i) * m.slope + m.intercept;
			lut[(size_t)i] = to_u16(m, voi(m, x, lo, hi));
		}
	}
	auto index = [&](T v) -> size_t {
		int64_t i = (int64_t)v - (int64_t)vmin;
		return (size_t)(i < 0 ? 0 : i >= range ? range - 1 : i);
	};
	auto value = [&](T v) -> uint16_t {
		if (!lut.empty())
			return lut[index(v)];
		return to_u16(m, voi(m, (double)v * m.slope + m.intercept, lo, hi));
	};

	if (img->width == gw && img->height == gh) {
		for (size_t i = 0; i < n; i++)
			img->pixels[i] = value(src[i]);
		return 0;
	}
	AreaResampler rs(gw, gh, img->width, img->height, gs);
	std::vector<float> flut(lut.size());
	for (size_t i = 0; i < lut.size(); i++)
		flut[i] = lut[i];
	const float *f = flut.data();
	for (uint32_t y = 0; y < gh; y++) {
		const T *p = src + (size_t)y * gw;
		if (f)
			rs.row(y, [&](uint32_t x) { return f[index(p[x])]; });
		else
			rs.row(y, [&](uint32_t x) { return (float)value(p[x]); });
	}
	rs.finish(img->pixels);
	return 0;
}

int
map_color(DicomImage &di, uint32_t gw, uint32_t gh, double gs, struct triaged_image *img,
    char *err, size_t errlen)
{
	const Uint16 *rgb = (const Uint16 *)di.getOutputData(16, 0, 0);
	if (!rgb || di.getOutputDataSize(16) < (size_t)gw * gh * 3 * sizeof(Uint16))
		return set_err(err, errlen, -EBADMSG, "cannot render the colour image: %s",
		    DicomImage::getString(di.getStatus()));
	auto lum = [](const Uint16 *p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; };
	if (img->width == gw && img->height == gh) {
		for (size_t i = 0; i < (size_t)gw * gh; i++)
			img->pixels[i] = (uint16_t)std::min(65535.0f, lum(rgb + 3 * i) + 0.5f);
		return 0;
	}
	AreaResampler rs(gw, gh, img->width, img->height, gs);
	for (uint32_t y = 0; y < gh; y++) {
		const Uint16 *p = rgb + (size_t)y * gw * 3;
		rs.row(y, [&](uint32_t x) { return lum(p + 3 * x); });
	}
	rs.finish(img->pixels);
	return 0;
}

bool
dcmtk_can_decode(const DcmXfer &x)
{
	if (!x.isEncapsulated())
		return true;
	switch (x.getXfer()) {
	case EXS_JPEGProcess1:
	case EXS_JPEGProcess2_4:
	case EXS_JPEGProcess6_8:
	case EXS_JPEGProcess10_12:
	case EXS_JPEGProcess14:
	case EXS_JPEGProcess14SV1:
	case EXS_JPEGLSLossless:
	case EXS_JPEGLSLossy:
	case EXS_RLELossless:
		return true;
	default:
		return false;
	}
}

bool
is_j2k(const DcmXfer &x)
{
	switch (x.getXfer()) {
	case EXS_JPEG2000LosslessOnly:
	case EXS_JPEG2000:
	case EXS_JPEG2000MulticomponentLosslessOnly:
	case EXS_JPEG2000Multicomponent:
		return true;
	default:
		return false;
	}
}

int
load(const char *path, uint32_t frame, uint32_t max_dim, struct triaged_image *img,
    char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return set_err(err, errlen, -errno, "%s: %s", path, strerror(errno));

	DcmFileFormat ff;
	OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange,
	    4096 /* values above stay on disk until used */, ERM_autoDetect);
	if (c.bad())
		return set_err(err, errlen, -EBADMSG, "cannot parse dataset: %s", c.text());
	DcmDataset *ds = ff.getDataset();
	DcmXfer xfer(ds->getOriginalXfer());

	DcmElement *pe = NULL;
	if (ds->findAndGetElement(DCM_PixelData, pe).bad() || !pe)
		return set_err(err, errlen, -ENOTSUP, "no pixel data");

	uint32_t rows = 0, cols = 0, frames = 1, spp = 1, bits = 0;
	if (!get_uint(ds, DCM_Rows, rows) || !get_uint(ds, DCM_Columns, cols) ||
	    rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
		return set_err(err, errlen, -EBADMSG, "invalid Rows/Columns (%u x %u)", rows, cols);
	if (ds->tagExists(DCM_NumberOfFrames) &&
	    (!get_uint(ds, DCM_NumberOfFrames, frames) || frames == 0))
		return set_err(err, errlen, -EBADMSG, "invalid Number of Frames");
	(void)get_uint(ds, DCM_SamplesPerPixel, spp);
	if (!get_uint(ds, DCM_BitsAllocated, bits))
		return set_err(err, errlen, -EBADMSG, "no Bits Allocated");
	if (spp != 1 && spp != 3)
		return set_err(err, errlen, -ENOTSUP, "%u samples per pixel", spp);
	if (bits != 1 && bits != 8 && bits != 16 && bits != 32)
		return set_err(err, errlen, -ENOTSUP, "%u bits allocated", bits);
	uint64_t fpix = (uint64_t)rows * cols;
	if (fpix > MAX_FRAME_PIXELS || fpix * frames > MAX_TOTAL_PIXELS)
		return set_err(err, errlen, -EBADMSG, "image too large (%u x %u x %u frames)",
		    cols, rows, frames);
	if (frame < 1 || frame > frames)
		return set_err(err, errlen, -EINVAL, "no frame %u (the image has %u)", frame, frames);

	/* source grid: the decoded frame may be smaller than the image when
	 * JPEG 2000 gives a reduced resolution (factor GF per axis) */
	uint32_t w, h;
	double s;
	output_size(cols, rows, max_dim, w, h, s);
	uint32_t gw = cols, gh = rows;
	double gf = 1.0;
	E_TransferSyntax dixfer = xfer.getXfer();
	unsigned long flags = CIF_NeverAccessEmbeddedOverlays;
	unsigned long fstart = frame - 1;

	if (is_j2k(xfer)) {
		/* the largest power of two that keeps at least 2x area
		 * averaging on top of it */
		unsigned reduce = 0;
		while (s >= (double)(4u << reduce) && reduce < 5)
			reduce++;
		struct j2k_frame jf;
		int r = dicom_j2k_decode_frame(ds, frame - 1, frames, rows, cols, spp, reduce,
		    &jf, err, errlen);
		if (r < 0)
			return r;
		gw = jf.width;
		gh = jf.height;
		gf = (double)(1u << jf.reduce);
		dixfer = EXS_LittleEndianExplicit;
		fstart = 0;
	} else if (!dcmtk_can_decode(xfer)) {
		return set_err(err, errlen, -ENOTSUP, "no decoder for transfer syntax %s",
		    xfer.getXferName());
	} else if (!xfer.isEncapsulated()) {
		if (pe->getLengthField() == DCM_UndefinedLength)
			return set_err(err, errlen, -EBADMSG,
			    "native transfer syntax but encapsulated pixel data");
		uint64_t need = (fpix * spp * bits * frame + 7) / 8;
		if ((uint64_t)pe->getLengthField() < need)
			return set_err(err, errlen, -EBADMSG, "pixel data is %lu bytes, "
			    "frame %u needs %llu", (unsigned long)pe->getLengthField(), frame,
			    (unsigned long long)need);
		flags |= CIF_UsePartialAccessToPixelData;
	} else {
		flags |= CIF_UsePartialAccessToPixelData;
	}

	struct mapping m;
	read_mapping(ds, m);
	if (!m.modality_by_dcmtk)
		flags |= CIF_IgnoreModalityTransformation;

	DicomImage di(ds, dixfer, flags, fstart, 1);
	if (di.getStatus() != EIS_Normal)
		return set_err(err, errlen, -EBADMSG, "cannot decode pixel data: %s",
		    DicomImage::getString(di.getStatus()));
	if (di.getWidth() != gw || di.getHeight() != gh)
		return set_err(err, errlen, -EBADMSG, "decoded %lux%lu, expected %ux%u",
		    di.getWidth(), di.getHeight(), gw, gh);

	img->width = w;
	img->height = h;
	img->src_columns = cols;
	img->src_rows = rows;
	img->scale = s;
	img->pixels = (uint16_t *)malloc((size_t)w * h * sizeof(uint16_t));
	if (!img->pixels)
		return set_err(err, errlen, -ENOMEM, "out of memory");
	double gs = s / gf;             /* grid pixels per output pixel */
	if (gs < 1.0)
		gs = 1.0;

	if (!di.isMonochrome()) {
		img->was_color = 1;
		return map_color(di, gw, gh, gs, img, err, errlen);
	}
	img->was_monochrome1 = m.monochrome1;
	const DiPixel *px = di.getInterData();
	if (!px || !px->getData() || px->getCount() < (unsigned long)gw * gh)
		return set_err(err, errlen, -EBADMSG, "no decoded pixel data");
	const void *d = px->getData();
	switch (px->getRepresentation()) {
	case EPR_Uint8:
		return map_mono((const Uint8 *)d, gw, gh, m, gs, di, img);
	case EPR_Sint8:
		return map_mono((const Sint8 *)d, gw, gh, m, gs, di, img);
	case EPR_Uint16:
		return map_mono((const Uint16 *)d, gw, gh, m, gs, di, img);
	case EPR_Sint16:
		return map_mono((const Sint16 *)d, gw, gh, m, gs, di, img);
	case EPR_Uint32:
		return map_mono((const Uint32 *)d, gw, gh, m, gs, di, img);
	case EPR_Sint32:
		return map_mono((const Sint32 *)d, gw, gh, m, gs, di, img);
	}
	return set_err(err, errlen, -ENOTSUP, "unsupported pixel representation");
}

} // namespace

extern "C" int
dicom_image_load(const char *path, uint32_t frame, uint32_t max_dim,
    struct triaged_image **out, char *err, size_t errlen)
{
	struct triaged_image *img = NULL;

	if (err && errlen)
		err[0] = '\0';
	if (!out || !path)
		return set_err(err, errlen, -EINVAL, "no path");
	*out = NULL;
	try {
		img = (struct triaged_image *)calloc(1, sizeof(*img));
		if (!img)
			return set_err(err, errlen, -ENOMEM, "out of memory");
		int r = load(path, frame, max_dim, img, err, errlen);
		if (r < 0) {
			dicom_image_free(img);
			return r;
		}
		*out = img;
		return 0;
	} catch (const std::bad_alloc &) {
		dicom_image_free(img);
		return set_err(err, errlen, -ENOMEM, "out of memory decoding the image");
	} catch (...) {
		dicom_image_free(img);
		return set_err(err, errlen, -EBADMSG, "cannot decode the image");
	}
}

extern "C" void
dicom_image_free(struct triaged_image *img)
{
	if (!img)
		return;
	free(img->pixels);
	free(img);
}

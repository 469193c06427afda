/*
 * dicom_j2k.cc - JPEG 2000 (lossless and lossy) pixel data through
 * OpenJPEG, since Debian's DCMTK has no JPEG 2000 decoder.
 *
 * DESIGN: the fragments of the wanted frame are found (all of them for a
 * single frame; else the Basic Offset Table, one fragment per frame, or the
 * fragments that start with an SOC marker), concatenated and handed to
 * OpenJPEG from memory, as a raw codestream (FF 4F FF 51) or a JP2 file
 * (signature box). The header is checked against Rows/Columns before any
 * tile is decoded, so a codestream cannot make us allocate more than the
 * dataset announced. Every OpenJPEG error comes back as -EBADMSG with
 * OpenJPEG's first error message. The decoded frame replaces the
 * encapsulated pixel data in the dataset (native, 16 bits allocated), so
 * dicom_image.cc goes on with DCMTK's modality, palette and colour handling
 * exactly as for every other transfer syntax.
 *
 * Optionally whole resolution levels are dropped (the caller downsamples
 * anyway): decoding a level less skips most of the entropy decoding.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"

#include <openjpeg.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <memory>
#include <vector>

#include "dicom/dicom_err.h"
#include "dicom/dicom_j2k.h"

namespace {

/* a codestream larger than this is refused (it is one frame) */
const uint64_t MAX_CODESTREAM = (uint64_t)1 << 30;

/* ---- fragments of one frame --------------------------------------------- */

bool
starts_with_soc(DcmPixelItem *it)
{
	Uint8 *p = NULL;

	return it->getLength() >= 2 && it->getUint8Array(p).good() && p &&
	    p[0] == 0xff && p[1] == 0x4f;
}

/* Items FIRST..LAST (1-based item numbers; item 0 is the offset table) hold
 * frame INDEX. */
int
frame_items(DcmPixelSequence *seq, uint32_t index, uint32_t frames, unsigned long &first,
    unsigned long &last, char *err, size_t errlen)
{
	unsigned long n = seq->card();
	DcmPixelItem *it = NULL;

	if (n < 2)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: no fragments");
	if (frames == 1) {
		first = 1;
		last = n - 1;
		return 0;
	}
	if (seq->getItem(it, 0).bad() || !it)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: no offset table");
	Uint32 botlen = it->getLength();
	if (botlen != 0 && botlen == 4ull * frames) {
		Uint8 *b = NULL;
		if (it->getUint8Array(b).bad() || !b)
			return set_err(err, errlen, -EBADMSG, "JPEG 2000: unreadable offset table");
		std::vector<uint64_t> off(frames);
		for (uint32_t i = 0; i < frames; i++) {
			off[i] = (uint64_t)b[4 * i] | (uint64_t)b[4 * i + 1] << 8 |
			    (uint64_t)b[4 * i + 2] << 16 | (uint64_t)b[4 * i + 3] << 24;
			if (i ? off[i] <= off[i - 1] : off[i] != 0)
				return set_err(err, errlen, -EBADMSG,
				    "JPEG 2000: offset table not increasing");
		}
		uint64_t start = off[index];
		uint64_t end = index + 1 < frames ? off[index + 1] : UINT64_MAX;
		uint64_t pos = 0;
		first = last = 0;
		for (unsigned long i = 1; i < n; i++) {
			if (seq->getItem(it, i).bad() || !it)
				break;
			if (pos == start)
				first = i;
			if (first && pos < end)
				last = i;
			pos += 8 + (uint64_t)it->getLength();
		}
		if (!first)
			return set_err(err, errlen, -EBADMSG,
			    "JPEG 2000: offset table does not match the fragments");
		return 0;
	}
	if (n - 1 == frames) {
		first = last = index + 1;
		return 0;
	}
	/* no usable table: a frame starts with a fragment that starts with SOC */
	uint32_t k = 0;
	first = last = 0;
	for (unsigned long i = 1; i < n; i++) {
		if (seq->getItem(it, i).bad() || !it)
			break;
		if (starts_with_soc(it)) {
			if (first)
				break;
			if (k++ == index)
				first = i;
		}
		if (first)
			last = i;
	}
	if (!first)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: frame %u not found "
		    "among %lu fragments", index + 1, n - 1);
	return 0;
}

int
frame_bytes(DcmDataset *ds, uint32_t index, uint32_t frames, std::vector<uint8_t> &out,
    char *err, size_t errlen)
{
	DcmElement *e = NULL;
	DcmPixelSequence *seq = NULL;

	if (ds->findAndGetElement(DCM_PixelData, e).bad() || !e)
		return set_err(err, errlen, -ENOTSUP, "no pixel data");
	DcmPixelData *pd = OFstatic_cast(DcmPixelData *, e);
	if (pd->getEncapsulatedRepresentation(ds->getOriginalXfer(), NULL, seq).bad() || !seq)
		return set_err(err, errlen, -EBADMSG,
		    "JPEG 2000 transfer syntax but the pixel data is not encapsulated");
	unsigned long first = 0, last = 0;
	int r = frame_items(seq, index, frames, first, last, err, errlen);
	if (r < 0)
		return r;
	uint64_t total = 0;
	for (unsigned long i = first; i <= last; i++) {
		DcmPixelItem *it = NULL;
		if (seq->getItem(it, i).bad() || !it)
			return set_err(err, errlen, -EBADMSG, "JPEG 2000: fragment %lu missing", i);
		total += it->getLength();
	}
	if (total == 0 || total > MAX_CODESTREAM)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: codestream of %llu bytes",
		    (unsigned long long)total);
	out.reserve((size_t)total);
	for (unsigned long i = first; i <= last; i++) {
		DcmPixelItem *it = NULL;
		Uint8 *p = NULL;
		(void)seq->getItem(it, i);
		Uint32 len = it->getLength();
		if (len == 0)
			continue;
		if (it->getUint8Array(p).bad() || !p)
			return set_err(err, errlen, -EBADMSG, "JPEG 2000: fragment %lu unreadable", i);
		out.insert(out.end(), p, p + len);
	}
	return 0;
}

/* ---- OpenJPEG from memory ----------------------------------------------- */

struct mem_stream {
	const uint8_t *data;
	size_t len, pos;
};

OPJ_SIZE_T
mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
	struct mem_stream *m = (struct mem_stream *)user;

	if (m->pos >= m->len)
		return (OPJ_SIZE_T)-1;
	if (n > m->len - m->pos)
		n = m->len - m->pos;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return n;
}

OPJ_OFF_T
mem_skip(OPJ_OFF_T n, void *user)
{
	struct mem_stream *m = (struct mem_stream *)user;

	if (n < 0) {
		if ((uint64_t)-n > m->pos)
			return -1;
		m->pos -= (size_t)-n;
		return n;
	}
	if ((uint64_t)n > m->len - m->pos)
		n = (OPJ_OFF_T)(m->len - m->pos);
	m->pos += (size_t)n;
	return n;
}

OPJ_BOOL
mem_seek(OPJ_OFF_T n, void *user)
{
	struct mem_stream *m = (struct mem_stream *)user;

	if (n < 0 || (uint64_t)n > m->len)
		return OPJ_FALSE;
	m->pos = (size_t)n;
	return OPJ_TRUE;
}

struct opj_msgs {
	char first[256];
};

void
on_error(const char *msg, void *client)
{
	struct opj_msgs *m = (struct opj_msgs *)client;

	if (m->first[0] || !msg)
		return;
	snprintf(m->first, sizeof(m->first), "%s", msg);
	size_t n = strlen(m->first);
	while (n && (m->first[n - 1] == '\n' || m->first[n - 1] == ' '))
		m->first[--n] = '\0';
}

void
on_quiet(const char *msg, void *client)
{
	(void)msg;
	(void)client;
}

/* Owns the OpenJPEG objects of one decode. */
struct opj_job {
	opj_stream_t *stream = NULL;
	opj_codec_t *codec = NULL;
	opj_image_t *image = NULL;
	struct mem_stream mem = {};
	struct opj_msgs msgs = {};

	~opj_job()
	{
		if (image)
			opj_image_destroy(image);
		if (codec)
			opj_destroy_codec(codec);
		if (stream)
			opj_stream_destroy(stream);
	}
};

uint32_t
ceildivpow2(uint32_t a, unsigned b)
{
	return (uint32_t)(((uint64_t)a + (1ull << b) - 1) >> b);
}

/* One attempt at decoding DATA with REDUCE levels dropped. */
int
opj_run(const std::vector<uint8_t> &data, uint32_t rows, uint32_t cols, uint32_t spp,
    unsigned &reduce, opj_job &job, char *err, size_t errlen)
{
	static const uint8_t jp2_sig[12] = { 0, 0, 0, 0x0c, 'j', 'P', ' ', ' ', 0x0d, 0x0a, 0x87, 0x0a };
	OPJ_CODEC_FORMAT fmt;

	if (data.size() >= 12 && memcmp(data.data(), jp2_sig, 12) == 0)
		fmt = OPJ_CODEC_JP2;
	else if (data.size() >= 4 && data[0] == 0xff && data[1] == 0x4f &&
	    data[2] == 0xff && data[3] == 0x51)
		fmt = OPJ_CODEC_J2K;
	else
		return set_err(err, errlen, -EBADMSG,
		    "JPEG 2000: fragment is neither a codestream nor a JP2 file");

	job.mem.data = data.data();
	job.mem.len = data.size();
	job.mem.pos = 0;
	job.stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
	job.codec = opj_create_decompress(fmt);
	if (!job.stream || !job.codec)
		return set_err(err, errlen, -ENOMEM, "JPEG 2000: out of memory");
	opj_stream_set_user_data(job.stream, &job.mem, NULL);
	opj_stream_set_user_data_length(job.stream, job.mem.len);
	opj_stream_set_read_function(job.stream, mem_read);
	opj_stream_set_skip_function(job.stream, mem_skip);
	opj_stream_set_seek_function(job.stream, mem_seek);
	opj_set_error_handler(job.codec, on_error, &job.msgs);
	opj_set_warning_handler(job.codec, on_quiet, NULL);
	opj_set_info_handler(job.codec, on_quiet, NULL);

	opj_dparameters_t par;
	opj_set_default_decoder_parameters(&par);
	if (!opj_setup_decoder(job.codec, &par))
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: %s",
		    job.msgs.first[0] ? job.msgs.first : "cannot set up the decoder");
	/* one thread: the daemon runs several workers already */
	(void)opj_codec_set_threads(job.codec, 1);
	if (!opj_read_header(job.stream, job.codec, &job.image) || !job.image)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: %s",
		    job.msgs.first[0] ? job.msgs.first : "cannot read the header");

	opj_image_t *im = job.image;
	if (im->numcomps < spp || im->numcomps == 0)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: %u components, "
		    "Samples per Pixel is %u", im->numcomps, spp);
	if (im->x1 <= im->x0 || im->y1 <= im->y0 || im->x1 - im->x0 != cols ||
	    im->y1 - im->y0 != rows)
		return set_err(err, errlen, -EBADMSG, "JPEG 2000: codestream is %ux%u, "
		    "the dataset says %ux%u", im->x1 - im->x0, im->y1 - im->y0, cols, rows);
	for (uint32_t c = 0; c < spp; c++) {
		if (im->comps[c].dx != 1 || im->comps[c].dy != 1)
			return set_err(err, errlen, -ENOTSUP,
			    "JPEG 2000: subsampled components are not supported");
		if (im->comps[c].prec < 1 || im->comps[c].prec > 16)
			return set_err(err, errlen, -ENOTSUP, "JPEG 2000: %u-bit samples",
			    im->comps[c].prec);
	}
	if (reduce) {
		opj_codestream_info_v2_t *info = opj_get_cstr_info(job.codec);
		unsigned levels = 1;
		if (info && info->m_default_tile_info.tccp_info) {
			levels = UINT32_MAX;
			for (uint32_t c = 0; c < info->nbcomps && c < spp; c++) {
				unsigned l = info->m_default_tile_info.tccp_info[c].numresolutions;
				levels = l < levels ? l : levels;
			}
		}
		if (info)
			opj_destroy_cstr_info(&info);
		if (reduce >= levels)
			reduce = levels ? levels - 1 : 0;
		if (reduce && !opj_set_decoded_resolution_factor(job.codec, reduce))
			return set_err(err, errlen, -EAGAIN, "JPEG 2000: %s",
			    job.msgs.first[0] ? job.msgs.first : "cannot reduce the resolution");
	}
	if (!opj_decode(job.codec, job.stream, im) || !opj_end_decompress(job.codec, job.stream))
		return set_err(err, errlen, reduce ? -EAGAIN : -EBADMSG, "JPEG 2000: %s",
		    job.msgs.first[0] ? job.msgs.first : "cannot decode the codestream");
	uint32_t w = ceildivpow2(im->x1, reduce) - ceildivpow2(im->x0, reduce);
	uint32_t h = ceildivpow2(im->y1, reduce) - ceildivpow2(im->y0, reduce);
	for (uint32_t c = 0; c < spp; c++) {
		if (!im->comps[c].data || im->comps[c].w != w || im->comps[c].h != h)
			return set_err(err, errlen, -EBADMSG, "JPEG 2000: component %u decoded "
			    "as %ux%u, expected %ux%u", c, im->comps[c].w, im->comps[c].h, w, h);
	}
	return 0;
}

} // namespace

int
dicom_j2k_decode_frame(DcmDataset *ds, uint32_t index, uint32_t frames, uint32_t rows,
    uint32_t cols, uint32_t spp, unsigned reduce, struct j2k_frame *out,
    char *err, size_t errlen)
{
	std::vector<uint8_t> data;
	int r = frame_bytes(ds, index, frames, data, err, errlen);
	if (r < 0)
		return r;

	std::unique_ptr<opj_job> job(new opj_job);
	r = opj_run(data, rows, cols, spp, reduce, *job, err, errlen);
	if (r == -EAGAIN) {
		/* some tile has fewer levels than the default: full size */
		job.reset(new opj_job);
		reduce = 0;
		r = opj_run(data, rows, cols, spp, reduce, *job, err, errlen);
	}
	if (r < 0)
		return r;
	std::vector<uint8_t>().swap(data);

	opj_image_t *im = job->image;
	uint32_t w = im->comps[0].w, h = im->comps[0].h;
	unsigned prec = 0;
	bool sgnd = im->comps[0].sgnd != 0;
	for (uint32_t c = 0; c < spp; c++)
		prec = im->comps[c].prec > prec ? im->comps[c].prec : prec;
	/* an unsigned codestream of signed data (Pixel Representation 1):
	 * the encoder kept the two's complement bits; take them back as
	 * signed, as pydicom and GDCM do */
	Uint16 pixrep = 0;
	bool twos = !sgnd && ds->findAndGetUint16(DCM_PixelRepresentation, pixrep).good() &&
	    pixrep == 1;
	int32_t lo = sgnd ? -(1 << (prec - 1)) : 0;
	int32_t hi = sgnd ? (1 << (prec - 1)) - 1 : (int32_t)((1u << prec) - 1);
	int32_t wrap = 1 << (prec - 1);

	size_t n = (size_t)w * h;
	std::unique_ptr<DcmPixelData> pd(new DcmPixelData(DCM_PixelData));
	pd->setVR(EVR_OW);
	Uint16 *dst = NULL;
	if (pd->createUint16Array((Uint32)(n * spp), dst).bad() || !dst)
		return set_err(err, errlen, -ENOMEM, "out of memory");
	for (uint32_t c = 0; c < spp; c++) {
		const OPJ_INT32 *src = im->comps[c].data;
		Uint16 *d = dst + c;
		for (size_t i = 0; i < n; i++, d += spp) {
			int32_t v = src[i];
			v = v < lo ? lo : v > hi ? hi : v;
			if (twos && v >= wrap)
				v -= 2 * wrap;
			*d = (Uint16)(v & 0xffff);
		}
	}
	job.reset();

	OFString pi;
	(void)ds->findAndGetOFString(DCM_PhotometricInterpretation, pi);
	if (spp == 3 && (pi == "YBR_ICT" || pi == "YBR_RCT" || pi.empty()))
		pi = "RGB";          /* OpenJPEG undid the component transform */
	else if (spp == 3 && pi.compare(0, 8, "YBR_FULL") == 0)
		pi = "YBR_FULL";     /* every component is full size now */
	else if (spp == 1 && pi.empty())
		pi = "MONOCHROME2";

	/* replaces (and frees) the encapsulated pixel data */
	if (ds->insert(pd.get(), OFTrue).bad())
		return set_err(err, errlen, -ENOMEM, "cannot store the decoded frame");
	pd.release();
	bool ok = ds->putAndInsertUint16(DCM_Rows, (Uint16)h).good() &&
	    ds->putAndInsertUint16(DCM_Columns, (Uint16)w).good() &&
	    ds->putAndInsertUint16(DCM_BitsAllocated, 16).good() &&
	    ds->putAndInsertUint16(DCM_BitsStored, (Uint16)prec).good() &&
	    ds->putAndInsertUint16(DCM_HighBit, (Uint16)(prec - 1)).good() &&
	    ds->putAndInsertUint16(DCM_PixelRepresentation, sgnd || twos ? 1 : 0).good() &&
	    ds->putAndInsertUint16(DCM_SamplesPerPixel, (Uint16)spp).good() &&
	    ds->putAndInsertString(DCM_PhotometricInterpretation, pi.c_str()).good();
	if (ok && spp > 1)
		ok = ds->putAndInsertUint16(DCM_PlanarConfiguration, 0).good();
	if (ok)
		(void)ds->findAndDeleteElement(DCM_NumberOfFrames);
	if (!ok)
		return set_err(err, errlen, -ENOMEM, "cannot update the dataset");
	out->width = w;
	out->height = h;
	out->reduce = reduce;
	return 0;
}

/*
 * dicom_scu.cc - the storage SCU: C-ECHO, and C-STORE of files to a peer
 * (the dicom destination).
 *
 * DESIGN (see ../shared/docs/dcmtk-notes.md section 3):
 * - Written on dcmnet's association and DIMSE layer (ASC_*, DIMSE_*,
 *   DUL_WritePDVs), not on DcmStorageSCU/DcmSCU. Those parse every file
 *   and write the dataset out again (explicit-length sequences,
 *   recalculated group lengths): the peer would get equal elements, not
 *   the bytes we received. Here, when the peer accepts a file's own
 *   transfer syntax, the C-STORE command is encoded here and the file's
 *   dataset bytes (everything after its File Meta) go on the wire as they
 *   are, read in PDV-sized pieces: bit-identical forwarding, the memory of
 *   one PDU per association, and no parse at all. The layer also hands
 *   out what DcmSCU keeps private: A-ASSOCIATE-RJ result/source/reason,
 *   each presentation context's result, the response's Error Comment; and
 *   it has none of DcmStorageSCU's traps (instances dropped while building
 *   contexts, 0xFFFF/0xFFFE pseudo-statuses, RequestSent vs status).
 * - Presentation contexts: one per (SOP class, the file's transfer syntax)
 *   holding that syntax alone, and one per SOP class with Explicit and
 *   Implicit VR Little Endian (so every class is also offered the default
 *   transfer syntax). A file the peer refuses in its own syntax is
 *   decompressed (DCMTK loads it and writes it in the accepted syntax)
 *   when its syntax is lossless and a decoder is registered (JPEG lossless,
 *   JPEG-LS lossless, RLE: dicom_global_init; deflate), or is uncompressed
 *   in another encoding; otherwise (JPEG 2000, lossy JPEG, unknown
 *   syntaxes) it ends "not sent". More than 128 contexts: more than one
 *   association, in order.
 * - A missing response within the DIMSE timeout aborts the association:
 *   the peer may still store the instance, and a re-send later is safe
 *   (same SOP Instance UID); going on would mix up late responses.
 * - Thread-safe: each call has its own T_ASC_Network and association. The
 *   only process-global setting, the TCP connect timeout
 *   (dcmConnectionTimeout), is set once, never per destination.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dccodec.h"
#include "dcmtk/dcmdata/dcdatutl.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/cond.h"
#include "dcmtk/dcmnet/dimse.h"
#include "dcmtk/dcmnet/dul.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "clock.h"
#include "dicom/dicom.h"
#include "log.h"

namespace {

const int CONNECT_TIMEOUT_S = 10;        /* process-global in DCMTK 3.6.7 */
const size_t META_READ_MAX = 64 * 1024;  /* a File Meta longer than this is refused */
const int MAX_CONTEXTS = 128;            /* per association (odd IDs 1..255) */

std::once_flag connect_timeout_once;

void
set_globals_once()
{
	std::call_once(connect_timeout_once, [] {
		dcmConnectionTimeout.set(CONNECT_TIMEOUT_S);
	});
}

/* snprintf into a fixed buffer, never failing. */
void __attribute__((format(printf, 3, 4)))
say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Text a peer sent, made printable (it ends up in logs and the database). */
std::string
printable(const char *s, size_t max)
{
	std::string out;

	for (; s && *s && out.size() < max; s++) {
		unsigned char c = (unsigned char)*s;
		out += (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	while (!out.empty() && out.back() == ' ')
		out.pop_back();
	return out;
}

std::string
trim_uid(const char *p, size_t n)
{
	while (n > 0 && (p[n - 1] == '\0' || p[n - 1] == ' '))
		n--;
	return std::string(p, n);
}

const char *
xfer_name(const std::string &ts)
{
	DcmXfer x(ts.c_str());

	return x.getXfer() == EXS_Unknown ? ts.c_str() : x.getXferName();
}

const char *
class_name(const std::string &uid)
{
	return dcmFindNameOfUID(uid.c_str(), uid.c_str());
}

/* ---- one file ------------------------------------------------------------ */

enum class Coding {
	uncompressed,   /* EL, IL, EB: any of the three can be written losslessly */
	decodable,      /* lossless compressed with a decoder, or deflate */
	opaque,         /* JPEG 2000, lossy, unknown: only as it is */
};

struct Item {
	size_t      index;           /* into the caller's arrays */
	std::string path;
	std::string sop_class, sop_uid, ts;
	bool        has_meta = false;
	uint64_t    offset = 0;      /* first byte of the dataset */
	uint64_t    size = 0;        /* of the file */
	Coding      coding = Coding::opaque;
	bool        done = false;    /* result final */
};

Coding
coding_of(const std::string &ts)
{
	DcmXfer x(ts.c_str());

	if (x.getXfer() == EXS_Unknown)
		return Coding::opaque;
	if (x.getStreamCompression() == ESC_zlib)
		return Coding::decodable;
	if (x.getStreamCompression() != ESC_none)
		return Coding::opaque;
	if (!x.isEncapsulated())
		return Coding::uncompressed;
	if (x.isLossless() && DcmCodecList::canChangeCoding(x.getXfer(), EXS_LittleEndianExplicit))
		return Coding::decodable;
	return Coding::opaque;
}

uint16_t
le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool
long_vr(const unsigned char *vr)
{
	static const char *const vrs[] = {
		"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV",
	};

	for (const char *v : vrs)
		if (vr[0] == (unsigned char)v[0] && vr[1] == (unsigned char)v[1])
			return true;
	return false;
}

/*
 * Read what the file says about itself: with a File Meta (preamble, DICM,
 * group 0002 in Explicit VR Little Endian) the SOP class, instance, the
 * transfer syntax and where the dataset starts; without one, what DCMTK
 * detects. 0, or a negative errno with WHY.
 */
int
read_file_info(Item &it, std::string &why)
{
	std::vector<unsigned char> buf(META_READ_MAX);
	struct stat st;
	ssize_t got;
	int fd, e;

	fd = open(it.path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		why = std::string("cannot open ") + it.path + ": " + strerror(e);
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		why = std::string("cannot stat ") + it.path + ": " + strerror(e);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		why = it.path + ": not a regular file";
		return -EINVAL;
	}
	it.size = (uint64_t)st.st_size;
	got = pread(fd, buf.data(), buf.size(), 0);
	e = errno;
	close(fd);
	if (got < 0) {
		why = std::string("cannot read ") + it.path + ": " + strerror(e);
		return -e;
	}

	size_t len = (size_t)got;
	std::string cls, inst, ts;

	if (len >= 132 && memcmp(buf.data() + 128, "DICM", 4) == 0) {
		size_t pos = 132;

		for (;;) {
			if (pos + 8 > len) {
				if ((uint64_t)pos >= it.size)
					break;          /* the file ends after the meta */
				why = it.path + ": File Meta longer than 64 KiB or truncated";
				return -EBADMSG;
			}
			const unsigned char *p = buf.data() + pos;
			if (le16(p) != 0x0002)
				break;
			uint16_t elem = le16(p + 2);
			size_t hdr, vlen;
			if (long_vr(p + 4)) {
				if (pos + 12 > len) {
					why = it.path + ": truncated File Meta";
					return -EBADMSG;
				}
				hdr = 12;
				vlen = le32(p + 8);
			} else {
				hdr = 8;
				vlen = le16(p + 6);
			}
			if (vlen > len || pos + hdr + vlen > len) {
				why = it.path + ": bad File Meta element length";
				return -EBADMSG;
			}
			const char *v = (const char *)p + hdr;
			if (elem == 0x0002)
				cls = trim_uid(v, vlen);
			else if (elem == 0x0003)
				inst = trim_uid(v, vlen);
			else if (elem == 0x0010)
				ts = trim_uid(v, vlen);
			pos += hdr + vlen;
		}
		if (ts.empty()) {
			why = it.path + ": File Meta without Transfer Syntax UID";
			return -EBADMSG;
		}
		if ((uint64_t)pos >= it.size) {
			why = it.path + ": no dataset after the File Meta";
			return -EBADMSG;
		}
		it.has_meta = true;
		it.offset = pos;
	} else {
		/* a dataset without File Meta (legacy): DCMTK detects the
		 * encoding; it is sent through DCMTK (parsed, re-encoded) */
		OFString c, i, t;
		OFCondition cond = DcmDataUtil::getSOPInstanceFromFile(it.path.c_str(), c, i, t,
		    ERM_autoDetect);
		if (cond.bad()) {
			why = it.path + ": not a DICOM file: " + cond.text();
			return -EBADMSG;
		}
		cls = c.c_str();
		inst = i.c_str();
		ts = t.c_str();
		it.has_meta = false;
		it.offset = 0;
	}
	if (it.sop_class.empty())
		it.sop_class = cls;
	if (it.sop_uid.empty())
		it.sop_uid = inst;
	it.ts = ts;
	if (it.sop_class.empty() || it.sop_uid.empty()) {
		why = it.path + ": no SOP Class UID or SOP Instance UID";
		return -EBADMSG;
	}
	if (it.sop_class.size() > DICOM_UID_LEN || it.sop_uid.size() > DICOM_UID_LEN ||
	    it.ts.size() > DICOM_UID_LEN) {
		why = it.path + ": UID longer than 64 characters";
		return -EBADMSG;
	}
	it.coding = coding_of(it.ts);
	return 0;
}

/* ---- results --------------------------------------------------------------- */

/* What a C-STORE status means, in words (DU_cstoreStatusString() writes
 * unknown codes into a static buffer: not for threads). */
const char *
status_text(uint16_t st)
{
	switch (st) {
	case 0x0000: return "success";
	case 0x0001: return "warning";
	case 0x0107: return "warning: attribute list error";
	case 0x0110: return "processing failure";
	case 0x0111: return "duplicate SOP instance";
	case 0x0116: return "warning: attribute value out of range";
	case 0x0117: return "invalid object instance";
	case 0x0122: return "refused: SOP class not supported";
	case 0x0124: return "refused: not authorized";
	case 0x0210: return "duplicate invocation";
	case 0x0211: return "unrecognized operation";
	case 0x0212: return "mistyped argument";
	case 0x0213: return "resource limitation";
	case 0xB000: return "warning: coercion of data elements";
	case 0xB006: return "warning: elements discarded";
	case 0xB007: return "warning: data set does not match SOP class";
	case 0xFE00: return "cancel";
	case 0xFF00: case 0xFF01: return "pending (not a C-STORE answer)";
	}
	switch (st & 0xFF00) {
	case 0xA700: return "refused: out of resources";
	case 0xA900: return "error: data set does not match SOP class";
	}
	if ((st & 0xF000) == 0xC000)
		return "error: cannot understand";
	if ((st & 0xF000) == 0xB000)
		return "warning";
	return "unknown status";
}

void
set_result(dicom_scu_result &r, int outcome, uint16_t status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void
set_result(dicom_scu_result &r, int outcome, uint16_t status, const char *fmt, ...)
{
	va_list ap;

	r.outcome = outcome;
	r.status = status;
	va_start(ap, fmt);
	vsnprintf(r.message, sizeof(r.message), fmt, ap);
	va_end(ap);
}

/* ---- association ------------------------------------------------------------ */

const char *
reject_reason_text(const T_ASC_RejectParameters &rej)
{
	switch (rej.reason) {
	case ASC_REASON_SU_NOREASON:                        return "no reason given";
	case ASC_REASON_SU_APPCONTEXTNAMENOTSUPPORTED:      return "application context name not supported";
	case ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED:     return "calling AE title not recognized";
	case ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED:      return "called AE title not recognized";
	case ASC_REASON_SP_ACSE_NOREASON:                   return "no reason given (ACSE)";
	case ASC_REASON_SP_ACSE_PROTOCOLVERSIONNOTSUPPORTED:return "protocol version not supported";
	case ASC_REASON_SP_PRES_TEMPORARYCONGESTION:        return "temporary congestion";
	case ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED:         return "local limit exceeded";
	}
	return "unknown reason";
}

const char *
reject_source_text(const T_ASC_RejectParameters &rej)
{
	switch (rej.source) {
	case ASC_SOURCE_SERVICEUSER:                          return "service user";
	case ASC_SOURCE_SERVICEPROVIDER_ACSE_RELATED:         return "service provider, ACSE";
	case ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED: return "service provider, presentation";
	}
	return "unknown source";
}

std::string
cond_text(const OFCondition &c)
{
	OFString s;

	DimseCondition::dump(s, c);
	std::string out = printable(s.c_str(), 200);
	/* DimseCondition::dump starts with the module:code, e.g. "0006:031c " */
	if (out.size() > 10 && out[4] == ':' && out[9] == ' ')
		out.erase(0, 10);
	return out;
}

/* errno for a failed association request. */
int
assoc_errno(const OFCondition &c, const std::string &text)
{
	if (c == DUL_ASSOCIATIONREJECTED)
		return -ECONNREFUSED;
	if (c == DUL_READTIMEOUT || text.find("timed out") != std::string::npos)
		return -ETIMEDOUT;
	if (text.find("refused") != std::string::npos)
		return -ECONNREFUSED;
	if (c.code() == DULC_UNKNOWNHOST || text.find("unreachable") != std::string::npos ||
	    text.find("No route") != std::string::npos)
		return -EHOSTUNREACH;
	if (text.find("reset") != std::string::npos || c == DUL_PEERABORTEDASSOCIATION)
		return -ECONNRESET;
	return -EIO;
}

struct Peer {
	std::string label;   /* AE@host:port */
	char        address[64];
};

int
check_params(const dicom_scu_params *p, Peer &peer, std::string &why)
{
	if (!p || !p->host || !*p->host || p->port < 1 || p->port > 65535 ||
	    !p->called_ae || !*p->called_ae || !p->calling_ae || !*p->calling_ae) {
		why = "bad SCU parameters (host, port, called and calling AE title are required)";
		return -EINVAL;
	}
	if (strlen(p->called_ae) > 16 || strlen(p->calling_ae) > 16) {
		why = "AE title longer than 16 characters";
		return -EINVAL;
	}
	if (strchr(p->host, ':')) {
		/* DCMTK 3.6.7 parses "host:port" with "%[^:]:%d" and connects
		 * over IPv4 only */
		why = std::string("IPv6 address ") + p->host + " not supported by the DICOM SCU "
		    "(DCMTK 3.6.7): use an IPv4 address or a host name";
		return -EINVAL;
	}
	int n = snprintf(peer.address, sizeof(peer.address), "%s:%d", p->host, p->port);
	if (n < 0 || (size_t)n >= sizeof(peer.address)) {
		why = std::string("host name too long for DCMTK (\"host:port\" over 63 characters): ") +
		    p->host;
		return -EINVAL;
	}
	peer.label = std::string(p->called_ae) + "@" + peer.address;
	return 0;
}

/* An association being built or in use, with its network. */
struct Assoc {
	T_ASC_Network     *net = nullptr;
	T_ASC_Parameters  *params = nullptr;
	T_ASC_Association *assoc = nullptr;
	bool               up = false;

	~Assoc() { drop(); }

	void drop()
	{
		if (assoc)
			ASC_destroyAssociation(&assoc);   /* frees params too */
		else if (params)
			ASC_destroyAssociationParameters(&params);
		params = nullptr;
		assoc = nullptr;
		if (net)
			ASC_dropNetwork(&net);
		up = false;
	}

	void release()
	{
		if (up && ASC_releaseAssociation(assoc).bad())
			(void)ASC_abortAssociation(assoc);
		up = false;
	}

	void abort()
	{
		if (up)
			(void)ASC_abortAssociation(assoc);
		up = false;
	}
};

struct Context {
	T_ASC_PresentationContextID id;
	std::string abstract;
	std::vector<std::string> ts;
	bool fallback;               /* the Little Endian context of the class */
	/* after negotiation */
	T_ASC_P_ResultReason result = ASC_P_NOTYETNEGOTIATED;
	std::string accepted;
};

/*
 * Set up the network and parameters for CTX, request the association.
 * 0, or a negative errno with WHY (the reject reason when rejected).
 */
int
associate(const dicom_scu_params *p, const Peer &peer, std::vector<Context> &ctx, Assoc &a,
          std::string &why)
{
	int acse = p->acse_timeout_s > 0 ? p->acse_timeout_s : 30;
	uint32_t pdu = p->max_pdu ? p->max_pdu : 65536;
	OFCondition c;

	if (pdu < ASC_MINIMUMPDUSIZE)
		pdu = ASC_MINIMUMPDUSIZE;
	if (pdu > ASC_MAXIMUMPDUSIZE)
		pdu = ASC_MAXIMUMPDUSIZE;
	set_globals_once();
	c = ASC_initializeNetwork(NET_REQUESTOR, 0, acse, &a.net);
	if (c.good())
		c = ASC_createAssociationParameters(&a.params, (long)pdu);
	if (c.bad()) {
		why = "cannot set up the network: " + cond_text(c);
		return -ENOMEM;
	}
	ASC_setAPTitles(a.params, p->calling_ae, p->called_ae, NULL);
	ASC_setPresentationAddresses(a.params, "localhost", peer.address);
	for (Context &x : ctx) {
		const char *ts[8];
		int n = 0;

		for (const std::string &s : x.ts)
			ts[n++] = s.c_str();
		c = ASC_addPresentationContext(a.params, x.id, x.abstract.c_str(), ts, n);
		if (c.bad()) {
			why = "cannot add a presentation context: " + cond_text(c);
			return -EINVAL;
		}
	}
	c = ASC_requestAssociation(a.net, a.params, &a.assoc);
	if (c.bad()) {
		std::string t = cond_text(c);
		int r = assoc_errno(c, t);

		if (c == DUL_ASSOCIATIONREJECTED) {
			T_ASC_RejectParameters rej;
			ASC_getRejectParameters(a.params, &rej);
			why = "association rejected by " + peer.label + " (" +
			    (rej.result == ASC_RESULT_REJECTEDTRANSIENT ? "transient" : "permanent") +
			    ", " + reject_source_text(rej) + "): " + reject_reason_text(rej) +
			    " [calling AE " + p->calling_ae + "]";
		} else if (c == DUL_READTIMEOUT) {
			why = "no answer to the association request from " + peer.label + " within " +
			    std::to_string(acse) + " s";
		} else if (r == -ECONNREFUSED) {
			why = "cannot connect to " + peer.label + ": connection refused";
		} else if (r == -ETIMEDOUT) {
			why = "cannot connect to " + peer.label + ": connection timed out (" + t + ")";
		} else {
			why = "cannot associate with " + peer.label + ": " + t;
		}
		return r;
	}
	a.up = true;

	/* each context's result */
	std::map<int, size_t> by_id;
	for (size_t i = 0; i < ctx.size(); i++)
		by_id[ctx[i].id] = i;
	int npc = ASC_countPresentationContexts(a.params);
	for (int i = 0; i < npc; i++) {
		T_ASC_PresentationContext pc;
		if (ASC_getPresentationContext(a.params, i, &pc).bad())
			continue;
		auto f = by_id.find(pc.presentationContextID);
		if (f == by_id.end())
			continue;
		ctx[f->second].result = pc.resultReason;
		if (pc.resultReason == ASC_P_ACCEPTANCE)
			ctx[f->second].accepted = trim_uid(pc.acceptedTransferSyntax,
			    strnlen(pc.acceptedTransferSyntax, sizeof(pc.acceptedTransferSyntax)));
	}
	return 0;
}

const char *
context_result_text(T_ASC_P_ResultReason r)
{
	switch (r) {
	case ASC_P_ACCEPTANCE:                   return "accepted";
	case ASC_P_USERREJECTION:                return "user rejection";
	case ASC_P_NOREASON:                     return "no reason";
	case ASC_P_ABSTRACTSYNTAXNOTSUPPORTED:   return "SOP class not supported";
	case ASC_P_TRANSFERSYNTAXESNOTSUPPORTED: return "transfer syntax not supported";
	case ASC_P_NOTYETNEGOTIATED:             return "not negotiated";
	}
	return "refused";
}

/* ---- C-STORE ----------------------------------------------------------------- */

void
put_elem(std::string &out, uint16_t elem, const void *v, uint32_t len)
{
	unsigned char h[8] = {
		0x00, 0x00, (unsigned char)(elem & 0xff), (unsigned char)(elem >> 8),
		(unsigned char)(len & 0xff), (unsigned char)(len >> 8 & 0xff),
		(unsigned char)(len >> 16 & 0xff), (unsigned char)(len >> 24),
	};

	out.append((const char *)h, 8);
	out.append((const char *)v, len);
}

void
put_us(std::string &out, uint16_t elem, uint16_t v)
{
	unsigned char b[2] = { (unsigned char)(v & 0xff), (unsigned char)(v >> 8) };

	put_elem(out, elem, b, 2);
}

void
put_ui(std::string &out, uint16_t elem, const std::string &uid)
{
	std::string v = uid;

	if (v.size() % 2)
		v += '\0';           /* UI pads with NUL, as DCMTK does */
	put_elem(out, elem, v.data(), (uint32_t)v.size());
}

/* The C-STORE-RQ command set, Implicit VR Little Endian (PS3.7 9.3.1.1). */
std::string
store_command(const Item &it, uint16_t msg_id)
{
	std::string body, out;
	unsigned char gl[4];

	put_ui(body, 0x0002, it.sop_class);          /* Affected SOP Class UID */
	put_us(body, 0x0100, 0x0001);                /* Command Field: C-STORE-RQ */
	put_us(body, 0x0110, msg_id);                /* Message ID */
	put_us(body, 0x0700, 0x0000);                /* Priority: medium */
	put_us(body, 0x0800, 0x0001);                /* Command Data Set Type: present */
	put_ui(body, 0x1000, it.sop_uid);            /* Affected SOP Instance UID */
	uint32_t n = (uint32_t)body.size();
	gl[0] = (unsigned char)(n & 0xff);
	gl[1] = (unsigned char)(n >> 8 & 0xff);
	gl[2] = (unsigned char)(n >> 16 & 0xff);
	gl[3] = (unsigned char)(n >> 24);
	put_elem(out, 0x0000, gl, 4);                /* Command Group Length */
	out += body;
	return out;
}

/* How sending one item ended. */
enum class Sent {
	ok,            /* the request went out; read the response */
	skipped,       /* nothing went out (result set); the association is fine */
	broken,        /* the association cannot be used any more (result set) */
};

/* Send the command and the file's dataset bytes as they are. */
Sent
send_raw(Assoc &a, const Context &x, const Item &it, uint16_t msg_id, dicom_scu_result &r)
{
	std::string cmd = store_command(it, msg_id);
	DUL_PDV pdv;
	DUL_PDVLIST list;
	OFCondition c;
	int fd;

	fd = open(it.path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		set_result(r, e == ENOENT ? DICOM_SCU_REFUSED : DICOM_SCU_RETRY, 0xFFFF,
		    "not sent: cannot open %s: %s", it.path.c_str(), strerror(e));
		return Sent::skipped;
	}

	unsigned long chunk = a.assoc->sendPDVLength;
	Uint32 out_max = dcmMaxOutgoingPDUSize.get();
	if (out_max > 12 && chunk + 12 > out_max)
		chunk = out_max - 12;
	chunk &= ~1UL;
	if (chunk < 2)
		chunk = 2;
	unsigned char *buf = a.assoc->sendPDVBuffer;

	pdv.fragmentLength = (unsigned long)cmd.size();
	pdv.presentationContextID = x.id;
	pdv.pdvType = DUL_COMMANDPDV;
	pdv.lastPDV = OFTrue;
	pdv.data = (void *)cmd.data();
	list.count = 1;
	list.pdv = &pdv;
	c = DUL_WritePDVs(&a.assoc->DULassociation, &list);
	if (c.bad()) {
		close(fd);
		set_result(r, DICOM_SCU_RETRY, 0xFFFF, "not sent: sending the C-STORE request failed: %s",
		    cond_text(c).c_str());
		return Sent::broken;
	}

	uint64_t pos = it.offset;
	while (pos < it.size) {
		size_t want = (size_t)std::min<uint64_t>(chunk, it.size - pos);
		ssize_t got = pread(fd, buf, want, (off_t)pos);
		if (got <= 0) {
			int e = got < 0 ? errno : EIO;
			close(fd);
			set_result(r, DICOM_SCU_RETRY, 0xFFFF,
			    "not sent: reading %s failed after %llu bytes: %s (association aborted)",
			    it.path.c_str(), (unsigned long long)(pos - it.offset),
			    got < 0 ? strerror(e) : "file shrank");
			return Sent::broken;
		}
		pos += (uint64_t)got;
		pdv.fragmentLength = (unsigned long)got;
		pdv.pdvType = DUL_DATASETPDV;
		pdv.lastPDV = pos >= it.size ? OFTrue : OFFalse;
		pdv.data = buf;
		c = DUL_WritePDVs(&a.assoc->DULassociation, &list);
		if (c.bad()) {
			close(fd);
			set_result(r, DICOM_SCU_RETRY, 0xFFFF, "not sent: sending the dataset failed: %s",
			    cond_text(c).c_str());
			return Sent::broken;
		}
	}
	close(fd);
	return Sent::ok;
}

/* Load the file with DCMTK, write it in the context's accepted syntax. */
Sent
send_converted(Assoc &a, const Context &x, const Item &it, uint16_t msg_id, dicom_scu_result &r)
{
	DcmFileFormat ff;
	OFCondition c;
	E_TransferSyntax to = DcmXfer(x.accepted.c_str()).getXfer();

	c = ff.loadFile(it.path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
	if (c.bad()) {
		set_result(r, DICOM_SCU_REFUSED, 0xFFFF, "not sent: cannot read %s: %s",
		    it.path.c_str(), c.text());
		return Sent::skipped;
	}
	DcmDataset *ds = ff.getDataset();
	if (ds->getOriginalXfer() != to) {
		c = ds->chooseRepresentation(to, NULL);
		if (c.bad() || !ds->canWriteXfer(to)) {
			set_result(r, DICOM_SCU_RETRY, 0xFFFF,
			    "not sent: the peer refused %s and converting it to %s failed: %s",
			    xfer_name(it.ts), xfer_name(x.accepted), c.bad() ? c.text() : "cannot write");
			return Sent::skipped;
		}
	}

	T_DIMSE_Message msg;
	memset(&msg, 0, sizeof(msg));
	msg.CommandField = DIMSE_C_STORE_RQ;
	T_DIMSE_C_StoreRQ &rq = msg.msg.CStoreRQ;
	rq.MessageID = msg_id;
	OFStandard::strlcpy(rq.AffectedSOPClassUID, it.sop_class.c_str(), sizeof(rq.AffectedSOPClassUID));
	OFStandard::strlcpy(rq.AffectedSOPInstanceUID, it.sop_uid.c_str(),
	    sizeof(rq.AffectedSOPInstanceUID));
	rq.DataSetType = DIMSE_DATASET_PRESENT;
	rq.Priority = DIMSE_PRIORITY_MEDIUM;
	c = DIMSE_sendMessageUsingMemoryData(a.assoc, x.id, &msg, NULL, ds, NULL, NULL);
	if (c.bad()) {
		set_result(r, DICOM_SCU_RETRY, 0xFFFF, "not sent: sending the C-STORE request failed: %s",
		    cond_text(c).c_str());
		return Sent::broken;
	}
	return Sent::ok;
}

/* Wait for the C-STORE-RSP to MSG_ID. true: the association is still usable. */
bool
receive_response(Assoc &a, const Item &it, uint16_t msg_id, int timeout_s,
                 const std::string &peer, dicom_scu_result &r)
{
	T_ASC_PresentationContextID pcid = 0;
	T_DIMSE_Message rsp;
	DcmDataset *detail = NULL;
	OFCondition c;

	memset(&rsp, 0, sizeof(rsp));
	c = DIMSE_receiveCommand(a.assoc, DIMSE_NONBLOCKING, timeout_s, &pcid, &rsp, &detail);
	if (c.bad()) {
		delete detail;
		if (c == DIMSE_NODATAAVAILABLE)
			set_result(r, DICOM_SCU_RETRY, 0xFFFF,
			    "no C-STORE response from %s within %d s; association aborted "
			    "(the peer may have stored it: a re-send is safe)", peer.c_str(), timeout_s);
		else if (c == DUL_PEERABORTEDASSOCIATION)
			set_result(r, DICOM_SCU_RETRY, 0xFFFF,
			    "%s aborted the association before answering", peer.c_str());
		else
			set_result(r, DICOM_SCU_RETRY, 0xFFFF, "no C-STORE response from %s: %s",
			    peer.c_str(), cond_text(c).c_str());
		return false;
	}
	if (rsp.CommandField != DIMSE_C_STORE_RSP ||
	    rsp.msg.CStoreRSP.MessageIDBeingRespondedTo != msg_id) {
		delete detail;
		set_result(r, DICOM_SCU_RETRY, 0xFFFF,
		    "unexpected answer from %s (command 0x%04x to message %u, expected a C-STORE "
		    "response to %u); association aborted", peer.c_str(), (unsigned)rsp.CommandField,
		    (unsigned)rsp.msg.CStoreRSP.MessageIDBeingRespondedTo, (unsigned)msg_id);
		return false;
	}

	uint16_t st = rsp.msg.CStoreRSP.DimseStatus;
	std::string comment;
	if (detail) {
		OFString s;
		if (detail->findAndGetOFString(DCM_ErrorComment, s).good() && !s.empty())
			comment = printable(s.c_str(), 120);
		delete detail;
	}
	int outcome = dicom_scu_outcome_of(true, st);
	const char *text = status_text(st);
	if (st == 0x0000)
		set_result(r, outcome, st, "%s", "");
	else if (outcome == DICOM_SCU_STORED)
		set_result(r, outcome, st, "stored with warning 0x%04X (%s)%s%s", (unsigned)st, text,
		    comment.empty() ? "" : ": ", comment.c_str());
	else
		set_result(r, outcome, st, "C-STORE status 0x%04X (%s)%s%s", (unsigned)st, text,
		    comment.empty() ? "" : ": ", comment.c_str());
	(void)it;
	return true;
}

/* ---- planning ---------------------------------------------------------------- */

struct Group {
	std::vector<size_t> items;       /* into the Item vector */
	std::vector<Context> ctx;
	std::map<std::string, size_t> exact, fallback;   /* key -> index into ctx */
};

std::string
exact_key(const Item &it)
{
	return it.sop_class + "|" + it.ts;
}

/* Items, in order, into associations of at most 128 contexts each. */
std::vector<Group>
plan(const std::vector<Item> &items)
{
	std::vector<Group> groups;

	for (size_t i = 0; i < items.size(); i++) {
		const Item &it = items[i];
		if (it.done)
			continue;
		if (groups.empty())
			groups.emplace_back();
		Group *g = &groups.back();
		int need = (g->exact.count(exact_key(it)) ? 0 : 1) +
		    (g->fallback.count(it.sop_class) ? 0 : 1);
		if ((int)g->ctx.size() + need > MAX_CONTEXTS) {
			groups.emplace_back();
			g = &groups.back();
		}
		if (!g->exact.count(exact_key(it))) {
			Context x;
			x.id = (T_ASC_PresentationContextID)(2 * g->ctx.size() + 1);
			x.abstract = it.sop_class;
			x.ts = { it.ts };
			x.fallback = false;
			g->exact[exact_key(it)] = g->ctx.size();
			g->ctx.push_back(x);
		}
		if (!g->fallback.count(it.sop_class)) {
			Context x;
			x.id = (T_ASC_PresentationContextID)(2 * g->ctx.size() + 1);
			x.abstract = it.sop_class;
			x.ts = { UID_LittleEndianExplicitTransferSyntax,
			         UID_LittleEndianImplicitTransferSyntax };
			x.fallback = true;
			g->fallback[it.sop_class] = g->ctx.size();
			g->ctx.push_back(x);
		}
		g->items.push_back(i);
	}
	return groups;
}

/* Every item of ITEMS not done yet gets RETRY with WHY. */
void
fail_rest(std::vector<Item> &items, dicom_scu_result *res, const std::string &why)
{
	for (Item &it : items) {
		if (it.done)
			continue;
		set_result(res[it.index], DICOM_SCU_RETRY, 0xFFFF, "%s", why.c_str());
		it.done = true;
	}
}

int
timeout_left(const dicom_scu_params *p, int timeout_s)
{
	if (p->deadline_ms <= 0)
		return timeout_s;
	int64_t left = (p->deadline_ms - mono_ms() + 999) / 1000;
	if (left < 1)
		left = 1;
	return left < timeout_s ? (int)left : timeout_s;
}

int
store(const dicom_scu_params *p, const dicom_scu_item *in, size_t n, dicom_scu_result *res,
      std::string &why)
{
	Peer peer;
	std::vector<Item> items(n);
	int r, dimse = p && p->dimse_timeout_s > 0 ? p->dimse_timeout_s : 60;
	bool associated = false;

	for (size_t i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		set_result(res[i], DICOM_SCU_RETRY, 0xFFFF, "%s", "not attempted");
	}
	if ((r = check_params(p, peer, why)) < 0) {
		for (size_t i = 0; i < n; i++)
			set_result(res[i], DICOM_SCU_RETRY, 0xFFFF, "%s", why.c_str());
		return r;
	}

	/* what each file is; a file we cannot read is settled here */
	size_t todo = 0;
	for (size_t i = 0; i < n; i++) {
		Item &it = items[i];
		std::string w;

		it.index = i;
		it.path = in[i].path ? in[i].path : "";
		it.sop_class = in[i].sop_class_uid ? in[i].sop_class_uid : "";
		it.sop_uid = in[i].sop_uid ? in[i].sop_uid : "";
		if (it.path.empty()) {
			set_result(res[i], DICOM_SCU_REFUSED, 0xFFFF, "%s", "no file");
			it.done = true;
			continue;
		}
		r = read_file_info(it, w);
		if (r < 0) {
			/* gone or malformed: the peer would never get it as it is */
			set_result(res[i], r == -ENOENT || r == -EBADMSG || r == -EINVAL ?
			    DICOM_SCU_REFUSED : DICOM_SCU_RETRY, 0xFFFF, "not sent: %s", w.c_str());
			it.done = true;
			continue;
		}
		todo++;
	}
	if (todo == 0)
		return 0;

	std::vector<Group> groups = plan(items);
	for (Group &g : groups) {
		Assoc a;

		if (p->deadline_ms > 0 && mono_ms() >= p->deadline_ms) {
			fail_rest(items, res, "not sent: deadline reached before it was sent");
			break;
		}
		r = associate(p, peer, g.ctx, a, why);
		if (r < 0) {
			fail_rest(items, res, why);
			return associated ? 0 : r;
		}
		associated = true;
		log_debug("scu: association with %s: %zu instance(s), %zu presentation context(s)",
		    peer.label.c_str(), g.items.size(), g.ctx.size());

		uint16_t msg_id = 0;
		bool usable = true;
		for (size_t k = 0; k < g.items.size() && usable; k++) {
			Item &it = items[g.items[k]];
			dicom_scu_result &rr = res[it.index];
			const Context &ex = g.ctx[g.exact[exact_key(it)]];
			const Context &fb = g.ctx[g.fallback[it.sop_class]];
			const Context *use = nullptr;
			bool raw = false;

			if (p->deadline_ms > 0 && mono_ms() >= p->deadline_ms) {
				a.release();
				fail_rest(items, res, "not sent: deadline reached before it was sent");
				return 0;
			}
			if (ex.result == ASC_P_ACCEPTANCE) {
				use = &ex;
				/* a dataset of odd length (a malformed file) cannot go in
				 * even PDV fragments: DCMTK re-encodes (pads) it */
				raw = it.has_meta && (it.size - it.offset) % 2 == 0;
			} else if (fb.result == ASC_P_ACCEPTANCE && it.coding != Coding::opaque) {
				use = &fb;
			}
			if (!use) {
				const char *why_not = ex.result == ASC_P_ABSTRACTSYNTAXNOTSUPPORTED ||
				    fb.result == ASC_P_ABSTRACTSYNTAXNOTSUPPORTED ?
				    "the peer does not support this SOP class" :
				    it.coding == Coding::opaque ?
				    "the peer refused its transfer syntax, and it cannot be decompressed here" :
				    "the peer refused its transfer syntax and Little Endian";
				/* as C-STORE status 0122: sending it again changes
				 * nothing until the PACS is configured for it */
				set_result(rr, DICOM_SCU_REFUSED, 0xFFFF, "not sent: %s (%s in %s; %s)",
				    why_not, class_name(it.sop_class), xfer_name(it.ts),
				    context_result_text(ex.result));
				it.done = true;
				continue;
			}

			msg_id++;
			Sent s = raw ? send_raw(a, *use, it, msg_id, rr) :
			    send_converted(a, *use, it, msg_id, rr);
			if (s == Sent::skipped) {
				it.done = true;
				continue;
			}
			if (s == Sent::broken) {
				it.done = true;
				a.abort();
				fail_rest(items, res, std::string("not sent: association with ") +
				    peer.label + " aborted after an error on another instance");
				return 0;
			}
			rr.converted = use == &fb && use->accepted != it.ts;
			OFStandard::strlcpy(rr.transfer_syntax, use->accepted.c_str(),
			    sizeof(rr.transfer_syntax));
			usable = receive_response(a, it, msg_id, timeout_left(p, dimse), peer.label, rr);
			if (rr.outcome == DICOM_SCU_STORED && !rr.message[0]) {
				if (rr.converted)
					say(rr.message, sizeof(rr.message), "sent as %s (the peer "
					    "refused %s)", xfer_name(use->accepted), xfer_name(it.ts));
				else if (!raw)
					say(rr.message, sizeof(rr.message), "sent re-encoded by DCMTK "
					    "(%s)", it.has_meta ? "odd-length dataset" :
					    "file without File Meta");
			}
			it.done = true;
		}
		if (!usable) {
			a.abort();
			fail_rest(items, res, std::string("not sent: association with ") + peer.label +
			    " aborted (no usable response to an earlier instance)");
			return 0;
		}
		a.release();
	}
	return 0;
}

} // namespace

extern "C" int
dicom_scu_outcome_of(bool answered, uint16_t st)
{
	if (!answered)
		return DICOM_SCU_RETRY;
	if (st == 0x0000)
		return DICOM_SCU_STORED;
	/* warnings: coercion of data elements, elements discarded, data set
	 * does not match SOP class (Bxxx); 0001 and 0107/0116 are warnings of
	 * other services some peers use */
	if (st == 0x0001 || st == 0x0107 || st == 0x0116 || (st & 0xF000) == 0xB000)
		return DICOM_SCU_STORED;
	/* duplicate SOP instance: the peer already holds it (a re-send after a
	 * lost response) */
	if (st == 0x0111)
		return DICOM_SCU_STORED;
	/* transient: out of resources, processing failure, resource
	 * limitation, duplicate invocation, cancel; pending or our own
	 * pseudo-statuses mean the store did not complete */
	if ((st & 0xFF00) == 0xA700 || st == 0x0110 || st == 0x0213 || st == 0x0210 ||
	    st == 0xFE00 || (st & 0xFF00) == 0xFF00)
		return DICOM_SCU_RETRY;
	/* 0122 SOP class not supported, A9xx data set does not match SOP class,
	 * Cxxx cannot understand, 0124 not authorized, and every other failure */
	return DICOM_SCU_REFUSED;
}

extern "C" int
dicom_scu_store(const struct dicom_scu_params *p, const struct dicom_scu_item *items, size_t n,
                struct dicom_scu_result *res, char *err, size_t errlen)
{
	std::string why;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (n > 0 && (!items || !res)) {
		say(err, errlen, "no items");
		return -EINVAL;
	}
	try {
		r = store(p, items, n, res, why);
	} catch (const std::bad_alloc &) {
		why = "out of memory";
		r = -ENOMEM;
	} catch (...) {
		why = "internal error in the SCU";
		r = -EIO;
	}
	if (r == -ENOMEM || r == -EIO) {
		for (size_t i = 0; i < n; i++) {
			if (res[i].status == 0xFFFF && res[i].outcome == DICOM_SCU_RETRY)
				say(res[i].message, sizeof(res[i].message), "%s", why.c_str());
		}
	}
	if (r < 0)
		say(err, errlen, "%s", why.c_str());
	return r;
}

extern "C" int
dicom_scu_echo(const struct dicom_scu_params *p, char *err, size_t errlen)
{
	try {
		Peer peer;
		std::string why;
		Assoc a;
		int r;

		if (err && errlen)
			err[0] = '\0';
		if ((r = check_params(p, peer, why)) < 0) {
			say(err, errlen, "%s", why.c_str());
			return r;
		}
		std::vector<Context> ctx(1);
		ctx[0].id = 1;
		ctx[0].abstract = UID_VerificationSOPClass;
		ctx[0].ts = { UID_LittleEndianExplicitTransferSyntax,
		              UID_LittleEndianImplicitTransferSyntax };
		ctx[0].fallback = true;
		if ((r = associate(p, peer, ctx, a, why)) < 0) {
			say(err, errlen, "%s", why.c_str());
			return r;
		}
		if (ctx[0].result != ASC_P_ACCEPTANCE) {
			a.release();
			say(err, errlen, "%s refused the Verification SOP class (%s)", peer.label.c_str(),
			    context_result_text(ctx[0].result));
			return -EPROTO;
		}
		DIC_US status = 0xFFFF;
		DcmDataset *detail = NULL;
		int tmo = p->dimse_timeout_s > 0 ? p->dimse_timeout_s : 60;
		OFCondition c = DIMSE_echoUser(a.assoc, 1, DIMSE_NONBLOCKING, timeout_left(p, tmo),
		    &status, &detail);
		delete detail;
		if (c.bad()) {
			a.abort();
			say(err, errlen, "C-ECHO to %s failed: %s", peer.label.c_str(),
			    c == DIMSE_NODATAAVAILABLE ? "no response in time" : cond_text(c).c_str());
			return c == DIMSE_NODATAAVAILABLE ? -ETIMEDOUT : -EIO;
		}
		a.release();
		if (status != 0x0000) {
			say(err, errlen, "C-ECHO to %s answered status 0x%04X", peer.label.c_str(),
			    (unsigned)status);
			return -EPROTO;
		}
		return 0;
	} catch (...) {
		say(err, errlen, "internal error in the SCU");
		return -ENOMEM;
	}
}

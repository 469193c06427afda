/*
 * dicom_scp.cc - the storage SCP: our own accept loop, one detached thread
 * per association, C-ECHO and C-STORE of every storage SOP class.
 *
 * DESIGN (see ../shared/docs/dcmtk-notes.md section 2):
 * - DcmSCPPool of DCMTK 3.6.7 leaks one thread per association, so the
 *   accept loop is ours: a DcmThreadSCP subclass per association on a
 *   detached thread, and an association limit answered "rejected
 *   transient, local limit exceeded".
 * - 3.6.7 enforces neither the called AE title nor more than 128
 *   presentation contexts: the AE checks are our hooks, and contexts are
 *   negotiated here, for every storage SOP class including private ones.
 * - The policy (which AE, where the file goes, what status) is the C side's,
 *   through struct dicom_scp_ops; this file only speaks DICOM.
 * - The listening socket is bound by us (bind address, IPv6) and put in
 *   place of the one DCMTK opened, with dup2(). We accept() ourselves, and a
 *   connection's thread waits until its A-ASSOCIATE-RQ is in the socket
 *   buffer before DCMTK reads it (dcmExternalSocketHandle): a client that
 *   connects and stays silent never holds up the others (DCMTK's own loop
 *   reads the request in the listener thread, for up to the ACSE timeout).
 * - Drain: idle associations are shut down; one inside a C-STORE finishes
 *   it, sends the response and is then aborted.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/dcmtrans.h"
#include "dcmtk/dcmnet/dimse.h"
#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/dul.h"
#include "dcmtk/dcmnet/scpthrd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <string>
#include <mutex>
#include <thread>

#include "dicom/dicom.h"
#include "log.h"

namespace {

/* Transfer syntaxes we accept, in order of preference for one presentation
 * context: lossless compressed first (the modality's bytes are kept), then
 * uncompressed, and lossy ones only when nothing else is proposed, so that
 * a modality is never asked to compress lossy because of us. */
const char *const ts_preference[] = {
	UID_JPEG2000LosslessOnlyTransferSyntax,
	UID_JPEGLSLosslessTransferSyntax,
	UID_JPEGProcess14SV1TransferSyntax,
	UID_JPEGProcess14TransferSyntax,
	UID_RLELosslessTransferSyntax,
	UID_DeflatedExplicitVRLittleEndianTransferSyntax,
	UID_LittleEndianExplicitTransferSyntax,
	UID_BigEndianExplicitTransferSyntax,
	UID_LittleEndianImplicitTransferSyntax,
	UID_JPEG2000TransferSyntax,
	UID_JPEGLSLossyTransferSyntax,
	UID_JPEGProcess2_4TransferSyntax,
	UID_JPEGProcess1TransferSyntax,
	UID_JPEGProcess3_5TransferSyntax,
	UID_JPEGProcess6_8TransferSyntax,
	UID_JPEGProcess7_9TransferSyntax,
	UID_JPEGProcess10_12TransferSyntax,
	UID_JPEGProcess11_13TransferSyntax,
	UID_JPEGProcess15TransferSyntax,
	UID_JPEGProcess16_18TransferSyntax,
	UID_JPEGProcess17_19TransferSyntax,
	UID_JPEGProcess20_22TransferSyntax,
	UID_JPEGProcess21_23TransferSyntax,
	UID_JPEGProcess24_26TransferSyntax,
	UID_JPEGProcess25_27TransferSyntax,
	UID_JPEGProcess28TransferSyntax,
	UID_JPEGProcess29TransferSyntax,
	UID_JPEG2000Part2MulticomponentImageCompressionLosslessOnlyTransferSyntax,
	UID_JPEG2000Part2MulticomponentImageCompressionTransferSyntax,
	UID_MPEG2MainProfileAtMainLevelTransferSyntax,
	UID_MPEG2MainProfileAtHighLevelTransferSyntax,
	UID_MPEG4HighProfileLevel4_1TransferSyntax,
	UID_MPEG4BDcompatibleHighProfileLevel4_1TransferSyntax,
	UID_MPEG4HighProfileLevel4_2_For2DVideoTransferSyntax,
	UID_MPEG4HighProfileLevel4_2_For3DVideoTransferSyntax,
	UID_MPEG4StereoHighProfileLevel4_2TransferSyntax,
	UID_HEVCMainProfileLevel5_1TransferSyntax,
	UID_HEVCMain10ProfileLevel5_1TransferSyntax,
};

/* A SOP class we store: every storage class DCMTK knows, anything under
 * the storage root, and any UID DCMTK does not know (private or newer
 * classes). Known non-storage services (query, worklist...) are refused. */
bool
storage_class(const char *uid)
{
	if (dcmIsaStorageSOPClassUID(uid))
		return true;
	if (strncmp(uid, "1.2.840.10008.5.1.4.1.1.", 24) == 0)
		return true;
	if (strncmp(uid, "1.2.840.10008.", 14) == 0)
		return dcmFindNameOfUID(uid) == NULL;
	return true;
}

struct Slot {
	int  fd = -1;              /* socket, -1 once the association is ending */
	bool busy = false;         /* inside a C-STORE */
	bool associated = false;   /* past the A-ASSOCIATE-RQ */
};

/* dcmExternalSocketHandle is one process-wide variable: it is set, used
 * by ASC_receiveAssociation and cleared under this lock. The A-ASSOCIATE-RQ
 * is already in the socket buffer by then, so the lock is held briefly. */
std::mutex external_socket_mu;

/* Most connections an association may be waiting for beyond the limit
 * (they are answered "local limit exceeded" once their request is read). */
const int PENDING_MARGIN = 16;

} // namespace

struct dicom_scp {
	dicom_scp_params p{};
	char bind[64] = "";
	const dicom_scp_ops *ops = nullptr;
	void *ctx = nullptr;
	T_ASC_Network *net = nullptr;
	int port = 0;
	std::atomic<bool> stop{false};
	std::atomic<bool> draining{false};
	std::atomic<int> max_assoc{1};
	std::mutex mu;
	std::condition_variable cv;
	std::map<uint64_t, Slot> live;
	uint64_t next_id = 1;
	DcmSharedSCPConfig shared;
};

namespace {

class StoreSCP : public DcmThreadSCP {
public:
	StoreSCP(dicom_scp *scp, uint64_t id) : m_scp(scp)
	{
		memset(&m_info, 0, sizeof(m_info));
		m_info.id = id;
	}

	~StoreSCP() override
	{
		if (m_begun && m_scp->ops->assoc_end)
			m_scp->ops->assoc_end(m_data, &m_info, m_how);
	}

protected:
	void notifyAssociationRequest(const T_ASC_Parameters &params,
	                              DcmSCPActionType &action) override
	{
		m_params = const_cast<T_ASC_Parameters *>(&params);
		snprintf(m_info.calling_ae, sizeof(m_info.calling_ae), "%s",
		    params.DULparams.callingAPTitle);
		snprintf(m_info.called_ae, sizeof(m_info.called_ae), "%s",
		    params.DULparams.calledAPTitle);
		/* callingPresentationAddress is the numeric IP: reverse DNS off */
		snprintf(m_info.peer_ip, sizeof(m_info.peer_ip), "%s",
		    params.DULparams.callingPresentationAddress);
		m_info.peer_max_pdu = (uint32_t)params.theirMaxPDUReceiveSize;
		m_decision = m_scp->ops->assoc_begin(m_scp->ctx, &m_info, &m_data);
		m_begun = true;
		m_how = "rejected";
		if (m_decision == DICOM_REJECT_NO_REASON)
			action = DCMSCP_ACTION_REFUSE_ASSOCIATION;
	}

	OFBool checkCalledAETitleAccepted(const OFString &) override
	{
		return m_decision != DICOM_REJECT_CALLED_AE;
	}

	OFBool checkCallingAETitleAccepted(const OFString &) override
	{
		return m_decision != DICOM_REJECT_CALLING_AE;
	}

	OFCondition negotiateAssociation() override
	{
		int n = ASC_countPresentationContexts(m_params);
		int accepted = 0;

		for (int i = 0; i < n; i++) {
			T_ASC_PresentationContext pc;
			if (ASC_getPresentationContext(m_params, i, &pc).bad())
				continue;
			const char *ts = choose(pc);
			if (!ts) {
				bool verif = strcmp(pc.abstractSyntax, UID_VerificationSOPClass) == 0;
				(void)ASC_refusePresentationContext(m_params, pc.presentationContextID,
				    verif || storage_class(pc.abstractSyntax) ?
				    ASC_P_TRANSFERSYNTAXESNOTSUPPORTED :
				    ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
				continue;
			}
			if (ASC_acceptPresentationContext(m_params, pc.presentationContextID,
			    ts).good())
				accepted++;
		}
		log_msg(LOG_DEBUG, "association id=%llu contexts proposed=%d accepted=%d",
		    (unsigned long long)m_info.id, n, accepted);
		return EC_Normal;
	}

	void notifyAssociationAcknowledge() override
	{
		m_how = "aborted";
		log_msg(LOG_INFO, "association id=%llu accepted calling_ae=%s "
		    "called_ae=%s peer=%s", (unsigned long long)m_info.id,
		    m_info.calling_ae, m_info.called_ae, m_info.peer_ip);
	}

	void notifyAssociationTermination() override
	{
		/* the socket is closed after this: the drain must not touch it */
		forget_socket();
	}

	void notifyReleaseRequest() override
	{
		m_how = "released";
		forget_socket();
	}

	void notifyAbortRequest() override
	{
		m_how = "aborted by peer";
		forget_socket();
	}

	void notifyDIMSEError(const OFCondition &cond) override
	{
		if (strcmp(m_how, "stopping") != 0) {
			m_how = "aborted";
			log_msg(LOG_NOTICE, "association id=%llu calling_ae=%s ended: %s",
			    (unsigned long long)m_info.id, m_info.calling_ae, cond.text());
		}
		forget_socket();
	}

	OFCondition handleIncomingCommand(T_DIMSE_Message *msg,
	                                  const DcmPresentationContextInfo &pc) override
	{
		if (msg->CommandField != DIMSE_C_STORE_RQ)
			return DcmThreadSCP::handleIncomingCommand(msg, pc);
		if (!set_busy(true)) {
			/* draining: do not start a new C-STORE; the SCU sees an
			 * abort for an instance it has not been answered for */
			m_how = "stopping";
			return NET_EC_StopAfterAssociation;
		}
		OFCondition c = store(msg->msg.CStoreRQ, pc);
		bool go_on = set_busy(false);
		if (c.good() && !go_on) {
			m_how = "stopping";
			log_msg(LOG_INFO, "association id=%llu aborted for shutdown after "
			    "its C-STORE", (unsigned long long)m_info.id);
			return NET_EC_StopAfterAssociation;
		}
		return c;
	}

private:
	const char *choose(const T_ASC_PresentationContext &pc)
	{
		bool verif = strcmp(pc.abstractSyntax, UID_VerificationSOPClass) == 0;
		if (!verif && !storage_class(pc.abstractSyntax))
			return NULL;
		for (const char *ts : ts_preference) {
			if (verif && strcmp(ts, UID_LittleEndianExplicitTransferSyntax) != 0 &&
			    strcmp(ts, UID_LittleEndianImplicitTransferSyntax) != 0 &&
			    strcmp(ts, UID_BigEndianExplicitTransferSyntax) != 0)
				continue;
			for (int j = 0; j < pc.transferSyntaxCount; j++)
				if (strcmp(pc.proposedTransferSyntaxes[j], ts) == 0)
					return ts;
		}
		return NULL;
	}

	/* Returns whether the association may go on (false once draining). */
	bool set_busy(bool busy)
	{
		std::lock_guard<std::mutex> lk(m_scp->mu);
		auto it = m_scp->live.find(m_info.id);
		if (it != m_scp->live.end())
			it->second.busy = busy;
		if (!busy)
			m_scp->cv.notify_all();
		return !m_scp->draining.load();
	}

	void forget_socket()
	{
		std::lock_guard<std::mutex> lk(m_scp->mu);
		auto it = m_scp->live.find(m_info.id);
		if (it != m_scp->live.end())
			it->second.fd = -1;
	}

	OFCondition store(T_DIMSE_C_StoreRQ &rq, const DcmPresentationContextInfo &pc)
	{
		dicom_store_req req;
		dicom_store_rsp rsp;
		char tmp[4096] = "";

		memset(&req, 0, sizeof(req));
		memset(&rsp, 0, sizeof(rsp));
		req.assoc = &m_info;
		snprintf(req.sop_class_uid, sizeof(req.sop_class_uid), "%s", rq.AffectedSOPClassUID);
		snprintf(req.sop_uid, sizeof(req.sop_uid), "%s", rq.AffectedSOPInstanceUID);
		snprintf(req.abstract_syntax, sizeof(req.abstract_syntax), "%s",
		    pc.abstractSyntax.c_str());
		snprintf(req.transfer_syntax, sizeof(req.transfer_syntax), "%s",
		    pc.acceptedTransferSyntax.c_str());
		req.message_id = rq.MessageID;
		req.priority = (uint16_t)rq.Priority;

		int r = m_scp->ops->store_begin(m_data, &req, tmp, sizeof(tmp), &rsp);
		if (!tmp[0]) {
			log_msg(LOG_ERR, "association id=%llu no file to receive into, "
			    "aborting", (unsigned long long)m_info.id);
			return DIMSE_RECEIVEFAILED;
		}
		OFCondition c = receiveSTORERequest(rq, pc.presentationContextID, OFString(tmp));
		if (c.bad()) {
			if (c.module() == OFM_dcmnet && c.code() == DIMSEC_OUTOFRESOURCES) {
				/* the dataset was drained; the file could not be written */
				log_msg(LOG_ERR, "association id=%llu sop=%s cannot write "
				    "spool file: %s", (unsigned long long)m_info.id,
				    req.sop_uid, c.text());
				rsp.status = STATUS_STORE_Refused_OutOfResources;
				snprintf(rsp.comment, sizeof(rsp.comment),
				    "triaged cannot write to its spool");
				(void)unlink(tmp);
			} else {
				/* network failure: the SCU got no answer */
				(void)unlink(tmp);
				return c;
			}
		} else if (r == 0) {
			m_scp->ops->store_end(m_data, &req, tmp, &rsp);
		} else {
			(void)unlink(tmp);       /* refused at begin: drained only */
		}
		return respond(rq, pc.presentationContextID, rsp);
	}

	OFCondition respond(const T_DIMSE_C_StoreRQ &rq, T_ASC_PresentationContextID pid,
	                    const dicom_store_rsp &rsp)
	{
		DcmDataset *detail = NULL;
		if (rsp.status != STATUS_Success && rsp.comment[0]) {
			DcmLongString ec(DCM_ErrorComment);
			ec.putString(rsp.comment);
			addStatusDetail(&detail, &ec);
		}
		OFCondition c = sendSTOREResponse(pid, rq.MessageID, rq.AffectedSOPClassUID,
		    rq.AffectedSOPInstanceUID, rsp.status, detail);
		delete detail;
		return c;
	}

	dicom_scp *m_scp;
	T_ASC_Parameters *m_params = nullptr;
	dicom_assoc_info m_info;
	void *m_data = nullptr;
	enum dicom_reject m_decision = DICOM_REJECT_NO_REASON;
	bool m_begun = false;
	const char *m_how = "rejected";
};

void
forget(dicom_scp *scp, uint64_t id)
{
	std::lock_guard<std::mutex> lk(scp->mu);
	scp->live.erase(id);
	scp->cv.notify_all();
}

/*
 * Wait until the first PDU (the A-ASSOCIATE-RQ) is in the socket buffer, or
 * its first 32 KiB, without reading it, so that DCMTK's read of it never
 * blocks other connections: a peer that connects and stays silent costs
 * its own thread only. False on timeout, close or drain.
 */
bool
wait_first_pdu(dicom_scp *scp, int fd, int timeout_s)
{
	auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);

	while (!scp->draining.load()) {
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
		    until - std::chrono::steady_clock::now()).count();
		if (left <= 0)
			return false;
		struct pollfd pfd = { fd, POLLIN, 0 };
		int n = poll(&pfd, 1, (int)(left < 200 ? left : 200));
		if (n < 0 && errno != EINTR)
			return false;
		if (n <= 0)
			continue;
		unsigned char hdr[6];
		ssize_t got = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
			return false;             /* closed or reset */
		if (got == (ssize_t)sizeof(hdr)) {
			uint64_t need = 6 + ((uint64_t)hdr[2] << 24 | (uint64_t)hdr[3] << 16 |
			    (uint64_t)hdr[4] << 8 | hdr[5]);
			int avail = 0;
			if (need > 32768)
				need = 32768;
			if (ioctl(fd, FIONREAD, &avail) == 0 && (uint64_t)avail >= need)
				return true;
		}
		if (pfd.revents & (POLLHUP | POLLERR))
			return false;
		/* part of the PDU is there: give the rest a moment */
		std::this_thread::sleep_for(std::chrono::milliseconds(5));
	}
	return false;
}

void
run_connection(dicom_scp *scp, int fd, uint64_t id, std::string peer)
{
	T_ASC_Association *a = NULL;
	OFCondition c;

	if (!wait_first_pdu(scp, fd, scp->p.acse_timeout_s)) {
		if (!scp->draining.load())
			log_msg(LOG_NOTICE, "connection from %s closed: no association "
			    "request within %d s", peer.c_str(), scp->p.acse_timeout_s);
		forget(scp, id);
		close(fd);
		return;
	}
	{
		std::lock_guard<std::mutex> lk(external_socket_mu);
		dcmExternalSocketHandle.set(fd);
		c = ASC_receiveAssociation(scp->net, &a, (long)scp->p.max_pdu, NULL, NULL,
		    OFFalse, DUL_NOBLOCK, scp->p.acse_timeout_s);
		dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
	}
	/* from here DCMTK owns fd: it closes it when the association goes */
	if (c.bad()) {
		log_msg(LOG_NOTICE, "association request from %s not received: %s",
		    peer.c_str(), c.text());
		forget(scp, id);
		if (a) {
			ASC_dropAssociation(a);
			ASC_destroyAssociation(&a);
		}
		return;
	}
	{
		std::unique_lock<std::mutex> lk(scp->mu);
		int n = 0;
		for (auto &kv : scp->live)
			n += kv.second.associated;
		if (n >= scp->max_assoc.load() || scp->draining.load()) {
			scp->live.erase(id);
			scp->cv.notify_all();
			lk.unlock();
			log_msg(LOG_WARNING, "association from %s calling_ae=%s rejected: "
			    "max_associations=%d reached", peer.c_str(),
			    a->params->DULparams.callingAPTitle, scp->max_assoc.load());
			T_ASC_RejectParameters rej = { ASC_RESULT_REJECTEDTRANSIENT,
			    ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
			    ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED };
			(void)ASC_rejectAssociation(a, &rej);
			ASC_dropAssociation(a);
			ASC_destroyAssociation(&a);
			return;
		}
		scp->live[id].associated = true;
	}
	try {
		StoreSCP s(scp, id);
		s.setSharedConfig(scp->shared);
		(void)s.run(a);         /* the DcmSCP destructor frees a */
	} catch (...) {
		log_msg(LOG_ERR, "association id=%llu: internal error (exception)",
		    (unsigned long long)id);
	}
	forget(scp, id);
}

int
bind_socket(const char *addr, int port, int *out_port, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char portstr[16];
	int fd = -1, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(addr && *addr ? addr : NULL, portstr, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "bind address %s: %s", addr, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 64) < 0)
		goto fail;
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			*out_port = ntohs(ss.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&ss)->sin6_port :
			    ((struct sockaddr_in *)&ss)->sin_port);
	}
	freeaddrinfo(res);
	return fd;
fail:
	r = -errno;
	snprintf(err, errlen, "cannot listen on %s port %d: %s", addr, port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return r;
}

} // namespace

extern "C" int
dicom_scp_open(const struct dicom_scp_params *p, const struct dicom_scp_ops *ops,
               void *ctx, struct dicom_scp **out, char *err, size_t errlen)
{
	dicom_scp *scp = NULL;
	int fd = -1, r;

	try {
		scp = new dicom_scp;
		scp->p = *p;
		snprintf(scp->bind, sizeof(scp->bind), "%s", p->bind ? p->bind : "");
		scp->p.bind = scp->bind;
		scp->ops = ops;
		scp->ctx = ctx;
		scp->max_assoc = p->max_associations;

		fd = bind_socket(scp->bind, p->port, &scp->port, err, errlen);
		if (fd < 0) {
			r = fd;
			goto fail;
		}
		/* DCMTK opens its own listening socket (on an ephemeral port
		 * of the any-address); ours, bound as configured, takes its
		 * place under the same descriptor number. */
		OFCondition c = ASC_initializeNetwork(NET_ACCEPTOR, 0,
		    p->acse_timeout_s, &scp->net);
		if (c.bad()) {
			snprintf(err, errlen, "network initialisation: %s", c.text());
			r = -EIO;
			goto fail;
		}
		int dfd = DUL_networkSocket(scp->net->network);
		if (dfd < 0 || dup2(fd, dfd) < 0) {
			snprintf(err, errlen, "cannot install listening socket");
			r = -EIO;
			goto fail;
		}
		close(fd);
		fd = -1;

		DcmSCPConfig &cfg = scp->shared.operator*();
		cfg.setPort((Uint16)scp->port);
		cfg.setMaxReceivePDULength(p->max_pdu);
		cfg.setACSETimeout((Uint32)p->acse_timeout_s);
		cfg.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
		cfg.setDIMSETimeout((Uint32)p->dimse_timeout_s);
		cfg.setConnectionBlockingMode(DUL_NOBLOCK);
		cfg.setConnectionTimeout(1);
		cfg.setRespondWithCalledAETitle(OFTrue);
		cfg.setHostLookupEnabled(OFFalse);
		*out = scp;
		return 0;
	} catch (...) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	}
fail:
	if (fd >= 0)
		close(fd);
	if (scp && scp->net)
		ASC_dropNetwork(&scp->net);
	delete scp;
	return r;
}

extern "C" int
dicom_scp_port(const struct dicom_scp *scp)
{
	return scp->port;
}

extern "C" void
dicom_scp_set_max_associations(struct dicom_scp *scp, int max)
{
	scp->max_assoc = max;
}

extern "C" int
dicom_scp_run(struct dicom_scp *scp)
{
	int lfd = DUL_networkSocket(scp->net->network);

	while (!scp->stop.load()) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		int n = poll(&pfd, 1, 500);
		if (n <= 0)
			continue;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
				log_msg(LOG_ERR, "accept: %s, pausing", strerror(errno));
				std::this_thread::sleep_for(std::chrono::milliseconds(200));
			}
			continue;
		}
		char host[INET6_ADDRSTRLEN] = "?";
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));

		std::unique_lock<std::mutex> lk(scp->mu);
		if ((int)scp->live.size() >= scp->max_assoc.load() + PENDING_MARGIN) {
			lk.unlock();
			log_msg(LOG_WARNING, "connection from %s closed: %d connections "
			    "open (max_associations=%d)", host, (int)scp->live.size(),
			    scp->max_assoc.load());
			close(fd);
			continue;
		}
		uint64_t id = scp->next_id++;
		scp->live[id].fd = fd;
		lk.unlock();
		try {
			std::thread(run_connection, scp, fd, id, std::string(host)).detach();
		} catch (...) {
			log_msg(LOG_ERR, "cannot start a thread for %s, closing", host);
			forget(scp, id);
			close(fd);
		}
	}
	return 0;
}

extern "C" void
dicom_scp_stop(struct dicom_scp *scp)
{
	scp->stop = true;
}

extern "C" int
dicom_scp_active(struct dicom_scp *scp)
{
	std::lock_guard<std::mutex> lk(scp->mu);
	return (int)scp->live.size();
}

extern "C" int
dicom_scp_drain(struct dicom_scp *scp, int timeout_ms)
{
	std::unique_lock<std::mutex> lk(scp->mu);
	auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);

	scp->draining = true;
	for (;;) {
		/* idle associations: cut them now; busy ones end after
		 * their response (handleIncomingCommand checks draining) */
		for (auto &kv : scp->live)
			if (!kv.second.busy && kv.second.fd >= 0) {
				(void)shutdown(kv.second.fd, SHUT_RDWR);
				kv.second.fd = -1;
			}
		if (scp->live.empty())
			return 0;
		if (scp->cv.wait_until(lk, until) == std::cv_status::timeout)
			return (int)scp->live.size();
	}
}

extern "C" struct dicom_scp *
dicom_scp_free(struct dicom_scp *scp)
{
	if (!scp)
		return NULL;
	if (scp->net)
		ASC_dropNetwork(&scp->net);
	delete scp;
	return NULL;
}

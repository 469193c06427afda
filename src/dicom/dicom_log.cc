/*
 * dicom_log.cc - process-wide DCMTK set-up: dictionary, codecs, network
 * globals, and DCMTK's own log forwarded into log.c.
 *
 * DESIGN: unconfigured, DCMTK logs INFO lines to stderr by itself; here its
 * root logger gets one appender that hands every event to log_msg() with
 * the matching syslog level, so there is one log stream with one format.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcobject.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/dcmnet/dul.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/oflog/oflog.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/spi/logevent.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dicom/dicom.h"
#include "log.h"

namespace {

int
syslog_level(dcmtk::log4cplus::LogLevel l)
{
	/* DCMTK's errors are mostly about what a peer sent; triaged logs
	 * the consequence itself, so they come through as warnings */
	if (l >= dcmtk::log4cplus::FATAL_LOG_LEVEL)
		return LOG_ERR;
	if (l >= dcmtk::log4cplus::WARN_LOG_LEVEL)
		return LOG_WARNING;
	if (l >= dcmtk::log4cplus::INFO_LOG_LEVEL)
		return LOG_INFO;
	return LOG_DEBUG;
}

class LogForward : public dcmtk::log4cplus::Appender {
public:
	~LogForward() override { destructorImpl(); }
	void close() override {}
protected:
	void append(const dcmtk::log4cplus::spi::InternalLoggingEvent &e) override
	{
		log_msg(syslog_level(e.getLogLevel()), "dcmtk: %s: %s",
		    e.getLoggerName().c_str(), e.getMessage().c_str());
	}
};

} // namespace

extern "C" void
dicom_log_setup(int level)
{
	try {
		dcmtk::log4cplus::LogLevel l =
		    level >= LOG_DEBUG ? dcmtk::log4cplus::DEBUG_LOG_LEVEL :
		    level >= LOG_INFO ? dcmtk::log4cplus::INFO_LOG_LEVEL :
		    level >= LOG_WARNING ? dcmtk::log4cplus::WARN_LOG_LEVEL :
		    dcmtk::log4cplus::ERROR_LOG_LEVEL;
		/* DCMTK's INFO is one line per PDU and C-STORE: too chatty for
		 * info; it only comes through at debug. */
		if (level == LOG_INFO || level == LOG_NOTICE)
			l = dcmtk::log4cplus::WARN_LOG_LEVEL;
		dcmtk::log4cplus::Logger root = dcmtk::log4cplus::Logger::getRoot();
		root.removeAllAppenders();
		root.addAppender(dcmtk::log4cplus::SharedAppenderPtr(new LogForward));
		root.setLogLevel(l);
		/* dcmimgle warns about every odd attribute of every image it
		 * renders (pixel aspect ratio, pixel spacing): not news */
		if (l > dcmtk::log4cplus::DEBUG_LOG_LEVEL)
			dcmtk::log4cplus::Logger::getInstance("dcmtk.dcmimgle")
			    .setLogLevel(dcmtk::log4cplus::ERROR_LOG_LEVEL);
	} catch (...) {
	}
}

extern "C" int
dicom_global_init(char *err, size_t errlen)
{
	try {
		dicom_log_setup(log_get_level());
		if (!dcmDataDict.isDictionaryLoaded()) {
			snprintf(err, errlen, "DICOM data dictionary not loaded "
			    "(check DCMDICTPATH, or unset it)");
			return -ENOENT;
		}
		DJDecoderRegistration::registerCodecs();
		DJLSDecoderRegistration::registerCodecs();
		DcmRLEDecoderRegistration::registerCodecs();
		dcmDisableGethostbyaddr.set(OFTrue);
		/* keep the data as it came: no silent "corrections" */
		dcmEnableAutomaticInputDataCorrection.set(OFFalse);
		/* DCMTK's first network init sets SIGPIPE to SIG_IGN; do it
		 * ourselves so it is so before any thread starts. */
		signal(SIGPIPE, SIG_IGN);
		return 0;
	} catch (...) {
		snprintf(err, errlen, "DICOM initialisation failed");
		return -ENOMEM;
	}
}

extern "C" void
dicom_global_done(void)
{
	try {
		DJDecoderRegistration::cleanup();
		DJLSDecoderRegistration::cleanup();
		DcmRLEDecoderRegistration::cleanup();
	} catch (...) {
	}
}

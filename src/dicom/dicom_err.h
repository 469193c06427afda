/*
 * dicom_err.h - C++ only, private to src/dicom/: the one way the DICOM
 * code fills its callers' error buffers.
 */
#ifndef TRIAGED_DICOM_ERR_H
#define TRIAGED_DICOM_ERR_H

#ifndef __cplusplus
#error "dicom_err.h is C++ (src/dicom only)"
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Format the reason into ERR (may be NULL) and return CODE (a negative errno). */
inline int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

inline int
set_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

#endif

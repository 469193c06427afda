/*
 * dicom_j2k.h - JPEG 2000 frames through OpenJPEG, for dicom_image.cc only
 * (C++, inside src/dicom/; nothing here crosses dicom.h).
 */
#ifndef TRIAGED_DICOM_J2K_H
#define TRIAGED_DICOM_J2K_H

#ifndef __cplusplus
#error "dicom_j2k.h is C++, for src/dicom/ only"
#endif

#include <stddef.h>
#include <stdint.h>

class DcmDataset;

struct j2k_frame {
	uint32_t width, height;   /* of the decoded grid */
	unsigned reduce;          /* resolution levels dropped: grid = image / 2^reduce */
};

/*
 * Decode frame INDEX (0-based, of FRAMES) of the JPEG 2000 encapsulated
 * pixel data of DS (ROWS x COLS, SPP samples), dropping up to REDUCE
 * resolution levels (0 = full size), and put it back into DS as native
 * pixel data of one frame: 16 bits allocated, Bits Stored and Pixel
 * Representation from the codestream, Rows/Columns of the decoded grid,
 * colour interleaved and YBR_ICT/YBR_RCT given as RGB. OUT says what was
 * decoded. 0, or a negative errno with ERR filled (-EBADMSG for anything
 * wrong with the fragments or the codestream). May throw std::bad_alloc.
 */
int dicom_j2k_decode_frame(DcmDataset *ds, uint32_t index, uint32_t frames, uint32_t rows,
    uint32_t cols, uint32_t spp, unsigned reduce, struct j2k_frame *out,
    char *err, size_t errlen);

#endif

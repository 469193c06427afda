# 530-results-sources: the result writers on the sources a PACS really
# sends: JPEG 2000 (lossless and lossy), MONOCHROME1, 16-bit, an undeclared
# 8-bit character set, multi-frame, colour, a legacy UID with a leading zero
# and a Modality LUT Sequence; and a result with awkward text (long UTF-8
# labels, a box over the whole image, no scores).
#
# Jobs (one source each unless said): J1 CR leg J2K lossless MONOCHROME1;
#   J2 CR chest J2K lossless MONOCHROME1 and J3 the same pixels in explicit
#   VR LE; J4 DX chest J2K 16-bit with undeclared ISO 8859-5 names; J5 CR
#   chest J2K lossy MONOCHROME1; J6 a generated 3-frame grayscale SC with
#   findings on frames 2 and 3 plus a generated RGB image; J7 the dental
#   CR (SOP Instance UID 999.999.01.23.45.6789, Modality LUT Sequence);
#   J8 a DX wrist with a hostile-but-valid result (64-byte UTF-8 label and
#   algorithm name, a box over the whole image, a 1-pixel box, findings
#   without score, with and without a box, a long summary).
# Expected: every writer succeeds; dciodvfy finds no Error in any SR or SC
#   (for J7, only the errors about the source's own UID, which the results
#   must quote as received); pixelmed and dcmjs as in 510; boxes and far
#   pixels as in 510; the J2K and native renderings of one image are the
#   same (J2 = J3); the MONOCHROME1 renderings have the polarity of DCMTK's
#   own display rendering; the lossy source's overlay says Lossy Image
#   Compression 01; the multi-frame SR points at frames 2 and 3 and the
#   overlay shows frame 2; every Series Description fits 64 bytes.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/500-results-lib.bash"

# result_for NAME FILE [LABEL]: two findings (a definite and a doubtful
# box) on FILE, in $T/out/NAME.json
result_for() {
	local name=$1 f=$2 sop rows cols
	sop=$(dcm_get "$f" SOPInstanceUID)
	rows=$(dcm_get "$f" Rows)
	cols=$(dcm_get "$f" Columns)
	cat > "$T/out/$name.json" <<EOF
{"status": "ok", "algorithm": {"name": "Probe", "version": "1.0"},
 "study": {"outcome": "positive", "score": 0.8},
 "findings": [
  {"label": "finding", "score": 0.8, "sop_instance_uid": "$sop",
   "box": [$((cols / 4)), $((rows / 4)), $((cols / 2)), $((rows / 2))]},
  {"label": "doubt", "score": 0.2, "sop_instance_uid": "$sop",
   "box": [$((cols * 6 / 10)), $((rows * 6 / 10)), $((cols * 8 / 10)), $((rows * 9 / 10))]}]}
EOF
}

J1=$TESTDATA/cr/CR_leg_RG3_j2k-lossless.dcm
J2=$TESTDATA/misc-syntax/CR_chest_j2k-lossless.dcm
J3=$TESTDATA/misc-syntax/CR_chest_explicit-le.dcm
J4=$TESTDATA/dx/DX_chest_gdcm-DX_J2K_0Padding_j2k-lossless.dcm
J5=$TESTDATA/cr/CR_chest_RG1_j2k-lossy.dcm
J7=$TESTDATA/cr/CR_dental-panoramic_jpeg-lossless-sv1_modality-lut-seq.dcm
for f in "$J1" "$J2" "$J3" "$J4" "$J5" "$J7"; do [ -f "$f" ] || fail "missing test file $f"; done

step "J1: CR leg, JPEG 2000 lossless, MONOCHROME1"
result_for j1 "$J1"
results_job j1 tid1500 "" 2 1 "$J1"
step "J2, J3: one CR chest as JPEG 2000 and as explicit VR LE"
result_for j2 "$J2"
results_job j2 tid1500 "" 2 1 "$J2"
result_for j3 "$J3"
results_job j3 tid1500 "" 2 1 "$J3"
check "the JPEG 2000 and the native rendering are the same image"
"$PY" - "$T/out/job-j2/render-1.pgm" "$T/out/job-j3/render-1.pgm" <<'EOF' || fail "J2K rendering differs from the native one"
import sys, numpy as np
def pgm(p):
    d = open(p, "rb").read().split(maxsplit=4)
    return np.frombuffer(d[4][:int(d[1]) * int(d[2])], np.uint8).reshape(int(d[2]), int(d[1])).astype(int)
a, b = pgm(sys.argv[1]), pgm(sys.argv[2])
print("max difference", np.abs(a - b).max())
assert a.shape == b.shape and np.abs(a - b).max() <= 1
EOF
ok "J2K = native rendering"
check "MONOCHROME1 renderings have the polarity of DCMTK's display rendering"
dcm2pnm +Wm +op "$J3" "$T/out/j3-ref.pgm" 2>/dev/null || fail "dcm2pnm cannot render $J3"
results_check "$T/out/j3-polarity.log" polarity "$T/out/job-j3/render-1.pgm" "$T/out/j3-ref.pgm"
if command -v gdcmconv >/dev/null 2>&1 && gdcmconv --raw "$J1" "$T/out/j1-raw.dcm" >/dev/null 2>&1 &&
	dcm2pnm +Wm +op "$T/out/j1-raw.dcm" "$T/out/j1-ref.pgm" 2>/dev/null; then
	results_check "$T/out/j1-polarity.log" polarity "$T/out/job-j1/render-1.pgm" "$T/out/j1-ref.pgm"
else
	note "gdcmconv cannot decode $J1 here: J1 polarity compared through J2/J3 only"
fi

step "J4: DX chest, JPEG 2000, 16 bits, undeclared 8-bit character set"
result_for j4 "$J4"
results_job j4 tid1500 "" 2 1 "$J4"
step "J5: CR chest, lossy JPEG 2000, MONOCHROME1"
result_for j5 "$J5"
results_job j5 mammo-cad "" 0 1 "$J5"
[ "$(dcm_get "$T/out/job-j5/overlay-1.dcm" LossyImageCompression)" = 01 ] \
	|| fail "the overlay of a lossy source does not say Lossy Image Compression 01"
ok "overlay of the lossy source: Lossy Image Compression 01"

step "J6: a 3-frame grayscale image and an RGB image"
"$PY" - "$J3" "$T/out/mf.dcm" "$T/out/rgb.dcm" <<'EOF' || fail "cannot make the multi-frame and colour sources"
import sys, copy
import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian
src = pydicom.dcmread(sys.argv[1])
a = src.pixel_array.astype(np.uint16)
mf = copy.deepcopy(src)
mf.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
mf.SOPClassUID = mf.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"  # MF grayscale word SC
mf.SOPInstanceUID = mf.file_meta.MediaStorageSOPInstanceUID = "2.25.5300000000000000000000000000001"
mf.NumberOfFrames = 3
mf.PixelData = np.stack([np.roll(a, 60 * k, axis=1) for k in range(3)]).tobytes()
mf.save_as(sys.argv[2], write_like_original=False)
c = copy.deepcopy(src)
c.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
c.SOPInstanceUID = c.file_meta.MediaStorageSOPInstanceUID = "2.25.5300000000000000000000000000002"
g = (a.astype(float) / max(1, a.max()) * 255).astype(np.uint8)
c.SamplesPerPixel, c.PhotometricInterpretation, c.PlanarConfiguration = 3, "RGB", 0
c.BitsAllocated, c.BitsStored, c.HighBit, c.PixelRepresentation = 8, 8, 7, 0
for k in ("WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType"):
    if k in c:
        delattr(c, k)
c.PixelData = np.stack([g, g // 2 + 64, 255 - g], axis=-1).tobytes()
c.save_as(sys.argv[3], write_like_original=False)
EOF
cat > "$T/out/j6.json" <<'EOF'
{"status": "ok", "algorithm": {"name": "Probe", "version": "1.0"},
 "study": {"outcome": "positive", "score": 0.9},
 "findings": [
  {"label": "on frame 2", "score": 0.9, "sop_instance_uid": "2.25.5300000000000000000000000000001", "frame": 2, "box": [100, 100, 200, 200]},
  {"label": "on frame 3", "score": 0.7, "sop_instance_uid": "2.25.5300000000000000000000000000001", "frame": 3, "box": [50, 50, 90, 90]},
  {"label": "colour", "score": 0.4, "sop_instance_uid": "2.25.5300000000000000000000000000002", "box": [100, 100, 200, 300]}]}
EOF
# sr-viewer-parse.js maps only "<SOP>:1" to an image id (a viewer maps every
# frame): of the 3 boxes it can place the one on the single-frame image
results_job j6 tid1500 "" 1 2 "$T/out/mf.dcm" "$T/out/rgb.dcm"
"$PY" - "$T/out/job-j6" <<'EOF' || fail "multi-frame references"
import sys, pydicom
d = sys.argv[1]
ov = pydicom.dcmread(d + "/overlay-1.dcm")
frames = [int(i.get("ReferencedFrameNumber", 0)) for i in ov.SourceImageSequence]
print("overlay of the multi-frame source: frame", frames)
assert frames == [2], frames
EOF
ok "multi-frame: the SR points at frames 2 and 3 (checked above), the overlay shows frame 2"

step "J7: legacy SOP Instance UID with a leading zero, Modality LUT Sequence"
result_for j7 "$J7"
RESULTS_ALLOW_ERROR='999\.999\.01\.23\.45\.6789|Dicom dataset contains invalid data values for Value Representations'
results_job j7 tid1500 "" 2 1 "$J7"
RESULTS_ALLOW_ERROR=

step "J8: awkward result text"
make_studies DXW --kind dx-wrist --count 1 --size 512x416 --seed 5301
J8=$(find "$DXW" -name '*.dcm' | sort | head -n 1)
S8=$(dcm_get "$J8" SOPInstanceUID)
LONG="Fraktur distaler Radius – Grünholz ✓ ÄÖÜ äöü ß «q»"    # 64 bytes
cat > "$T/out/j8.json" <<EOF
{"status": "ok",
 "algorithm": {"name": "Long algorithm name – UTF-8 – Ünïcödé – near the limit", "version": "2024.10-rc1+build.7", "vendor": "Ünïcödé GmbH"},
 "study": {"outcome": "negative", "summary": "$(printf 'Zusammenfassung mit Umlauten äöü und einem sehr langen Text, der umbrochen werden muss. %.0s' 1 2 3 4 5 6 7 8 9 10 11)"},
 "findings": [
  {"label": "$LONG", "sop_instance_uid": "$S8", "box": [0, 0, 416, 512]},
  {"label": "tiny", "score": 0.99, "sop_instance_uid": "$S8", "box": [200, 200, 201, 201]},
  {"label": "no box, no score", "sop_instance_uid": "$S8"}]}
EOF
results_job j8 tid1500 "" 2 1 "$J8"
finish_results

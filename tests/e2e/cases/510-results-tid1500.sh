# 510-results-tid1500: the result writers (SR TID 1500, overlays, summary)
# on generated radiograph studies, through tests/tools/results_driver (no
# daemon).
#
# Jobs:     A cr-chest (PA + LL), positive: two coded fractures with boxes on
#             the PA (solid), one uncoded doubtful finding with a box and one
#             without a box on the LL;
#           B dx-wrist (2 views), negative, score only, no finding;
#           C hand-bone-age, the reference backend (NOT FOR DIAGNOSIS):
#             indeterminate, bone age 132 mo (LOINC 37362-1), one uncoded
#             finding with a box.
# Expected: per job one SR, one overlay per image with findings, one
#           summary; every object passes dciodvfy with no Error; every SR
#           passes pixelmed's DicomSRValidator (TID 1500, no Error) and is
#           read by dcmjs + @cornerstonejs/adapters with one RectangleROI
#           per box (skipped when those node modules are absent); the SR
#           evidence lists exactly the job's instances; each finding is a
#           measurement group with its code (else 99TRIAGED, declared), its
#           score (UCUM 1) and its box as a closed 5-point POLYLINE inside
#           the referenced image (or an IMAGE reference without a box); the
#           study score, the outcome (SCT present/absent/undetermined) and
#           bone age in UCUM mo; on each overlay the pixels on every box
#           edge differ from the rendering of the source and the pixels far
#           from the boxes are that rendering; NOT FOR DIAGNOSIS in the
#           reference backend's series descriptions and SR.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/500-results-lib.bash"

make_studies CR   --kind cr-chest      --count 1 --size 512x416 --seed 5101
make_studies DX   --kind dx-wrist      --count 1 --size 512x416 --seed 5102
make_studies HAND --kind hand-bone-age --count 1 --size 512x416 --seed 5103

mapfile -t A < <(find "$CR" -name '*.dcm' | sort)
mapfile -t B < <(find "$DX" -name '*.dcm' | sort)
mapfile -t C < <(find "$HAND" -name '*.dcm' | sort)
[ ${#A[@]} = 2 ] && [ ${#B[@]} = 2 ] && [ ${#C[@]} = 1 ] || fail "unexpected generated studies"
A1=$(dcm_get "${A[0]}" SOPInstanceUID); A2=$(dcm_get "${A[1]}" SOPInstanceUID)
C1=$(dcm_get "${C[0]}" SOPInstanceUID)

cat > "$T/out/a.json" <<EOF
{"status": "ok",
 "algorithm": {"name": "FractureNet", "version": "2.1", "vendor": "Example AI"},
 "study": {"outcome": "positive", "score": 0.91,
           "summary": "Two suspected rib fractures on the PA view; a doubtful finding on the lateral view."},
 "findings": [
  {"label": "fracture", "score": 0.91, "code": {"scheme": "SCT", "value": "72704001", "meaning": "Fracture"},
   "sop_instance_uid": "$A1", "frame": 1, "box": [100, 120, 180, 200]},
  {"label": "fracture", "score": 0.62, "code": {"scheme": "SCT", "value": "72704001", "meaning": "Fracture"},
   "sop_instance_uid": "$A1", "frame": 1, "box": [250, 300, 330, 360]},
  {"label": "doubtful fracture", "score": 0.31, "sop_instance_uid": "$A2", "box": [200, 200, 260, 280]},
  {"label": "effusion", "score": 0.55, "sop_instance_uid": "$A2"}]}
EOF
cat > "$T/out/b.json" <<EOF
{"status": "ok", "algorithm": {"name": "FractureNet", "version": "2.1", "vendor": "Example AI"},
 "study": {"outcome": "negative", "score": 0.08}, "findings": []}
EOF
cat > "$T/out/c.json" <<EOF
{"status": "ok", "algorithm": {"name": "reference", "version": "0.1.0", "vendor": "triaged"},
 "study": {"outcome": "indeterminate",
           "summary": "Chronological age reported as bone age (reference analysis).",
           "measurements": [{"name": "bone age", "value": 132, "unit": "mo",
                             "code": {"scheme": "LN", "value": "37362-1", "meaning": "Bones X-ray bone age"}}]},
 "findings": [{"label": "salient region", "score": 0.7, "sop_instance_uid": "$C1", "box": [60, 80, 140, 170]}]}
EOF

step "job A: cr-chest, positive, 4 findings (3 boxes)"
results_job a tid1500 "" 3 2 "${A[@]}"
step "job B: dx-wrist, negative, no finding"
results_job b tid1500 "" 0 0 "${B[@]}"
step "job C: hand bone age, reference backend (NOT FOR DIAGNOSIS)"
results_job c tid1500 nfd 1 1 "${C[@]}"

check "bone age is a numeric measurement of 132 UCUM mo"
"$PY" - "$T/out/job-c/sr.dcm" <<'EOF' || fail "bone age measurement"
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
def walk(i):
    for c in i.get("ContentSequence", []) or []:
        yield c
        yield from walk(c)
hits = [c for c in walk(ds) if c.ValueType == "NUM" and c.ConceptNameCodeSequence[0].CodeValue == "37362-1"]
assert len(hits) == 1, hits
mv = hits[0].MeasuredValueSequence[0]
u = mv.MeasurementUnitsCodeSequence[0]
print("bone age", mv.NumericValue, u.CodeValue, u.CodingSchemeDesignator, u.CodeMeaning)
assert float(mv.NumericValue) == 132 and u.CodeValue == "mo" and u.CodingSchemeDesignator == "UCUM"
EOF
ok "bone age 132 mo"
finish_results

# 520-results-mammo-cad: the result writers on a 4-view screening
# mammogram, as a Mammography CAD SR (sr_template = mammo-cad, TID 4000 built
# by hand) and as TID 1500; plus a For Processing (MONOCHROME1, 14-bit)
# mammogram.
#
# Jobs:     M mg-screening RCC LCC RMLO LMLO, positive 0.87: a mass (0.87)
#           and a doubtful calcification (0.42) on RCC, a mass (0.81) on
#           RMLO, nothing on the left; written with mammo-cad, then T the
#           same result with tid1500; P mg-screening --for-processing, one
#           finding per view, mammo-cad.
# Expected: pixelmed's DicomSRValidator finds TID 4000 and reports no Error
#           (language, Image Library, CAD processing summary, Summary of
#           Detections / Analyses present); dciodvfy no Error on every SR and
#           SC; each finding a Single Image Finding with its outline (the
#           box, on its image) and Certainty of Finding in % (score x 100);
#           evidence = the 4 views; overlays only for the views with
#           findings, boxes drawn where the findings are and nothing else
#           changed; the MONOCHROME1 overlay has the polarity of DCMTK's
#           display rendering.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/500-results-lib.bash"

make_studies MG  --kind mg-screening --count 1 --size 512x416 --seed 5201
make_studies MGP --kind mg-screening --count 1 --size 512x416 --seed 5202 --for-processing
mapfile -t M < <(find "$MG" -name '*.dcm' | sort)
mapfile -t P < <(find "$MGP" -name '*.dcm' | sort)
[ ${#M[@]} = 4 ] && [ ${#P[@]} = 4 ] || fail "unexpected generated studies"

declare -A VIEW
for f in "${M[@]}" "${P[@]}"; do
	VIEW[$f]=$(dcm_get "$f" ImageLaterality)$(dcm_get "$f" ViewPosition)
done
pick() { # pick VIEW FILES...: the file of that view
	local v=$1 f
	shift
	for f in "$@"; do [ "${VIEW[$f]}" = "$v" ] && { echo "$f"; return; }; done
	fail "no $v view"
}
RCC=$(dcm_get "$(pick RCC "${M[@]}")" SOPInstanceUID)
RMLO=$(dcm_get "$(pick RMLO "${M[@]}")" SOPInstanceUID)

cat > "$T/out/m.json" <<EOF
{"status": "ok", "algorithm": {"name": "MammoDetect", "version": "3.0", "vendor": "Example AI"},
 "study": {"outcome": "positive", "score": 0.87,
           "summary": "Suspicious mass in the right breast, upper outer quadrant."},
 "findings": [
  {"label": "mass", "score": 0.87, "sop_instance_uid": "$RCC", "box": [120, 140, 200, 230]},
  {"label": "calcification", "score": 0.42, "sop_instance_uid": "$RCC", "box": [250, 300, 290, 340]},
  {"label": "mass", "score": 0.81, "sop_instance_uid": "$RMLO", "box": [150, 160, 230, 240]}]}
EOF
cp "$T/out/m.json" "$T/out/t.json"

{
	printf '{"status": "ok", "algorithm": {"name": "reference", "version": "0.1.0"},\n'
	printf ' "study": {"outcome": "indeterminate", "score": 0.5}, "findings": [\n'
	sep=
	for f in "${P[@]}"; do
		printf '%s  {"label": "salient region", "score": 0.66, "sop_instance_uid": "%s", "box": [100, 150, 220, 260]}' \
			"$sep" "$(dcm_get "$f" SOPInstanceUID)"
		sep=$',\n'
	done
	printf ']}\n'
} > "$T/out/p.json"

step "job M: 4-view screening, Mammography CAD SR"
results_job m mammo-cad "" 0 2 "${M[@]}"
step "job T: the same result as TID 1500"
results_job t tid1500 "" 3 2 "${M[@]}"
step "job P: For Processing (MONOCHROME1), reference backend, Mammography CAD SR"
results_job p mammo-cad nfd 0 4 "${P[@]}"

check "the MONOCHROME1 overlays have the polarity of DCMTK's rendering of the source"
k=0
while read -r _ path src; do
	k=$((k + 1))
	[ "$(dcm_get "$src" PhotometricInterpretation)" = MONOCHROME1 ] || fail "$src is not MONOCHROME1"
	dcm2pnm +Wm +op "$src" "$T/out/p-ref-$k.pgm" 2>/dev/null || fail "dcm2pnm cannot render $src"
	results_check "$T/out/p-polarity-$k.log" polarity "$T/out/job-p/render-$k.pgm" "$T/out/p-ref-$k.pgm"
done < <(grep '^overlay ' "$T/out/p.driver")
finish_results

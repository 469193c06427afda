# 500-results-lib.bash - sourced by the e2e cases 5xx (after lib.sh): run
# the result writers through tests/tools/results_driver and check what they
# wrote with 500-results-check.py (content) and the validators. Not a case
# itself (ctest runs cases/*.sh only).
#
#   results_job NAME TEMPLATE NFD BOXES OVERLAYS SOURCE...
#       $T/out/NAME.json is the result; writes into $T/out/job-NAME; NFD
#       "nfd" = as the reference backend (NOT FOR DIAGNOSIS); BOXES = boxes
#       the SR must show as RectangleROI in dcmjs; OVERLAYS = overlays
#       expected. Fails the case at the first failed check.
#   RESULTS_ALLOW_ERROR  regex of dciodvfy Error lines to tolerate (e.g.
#       those about a source's own legacy UID)

RESULTS_DRIVER=$TRIAGED_BUILD_DIR/tests/results_driver
[ -x "$RESULTS_DRIVER" ] || fail "no results_driver at $RESULTS_DRIVER (cmake --build … --target results_driver)"
require_cmd dciodvfy
RESULTS_CHECK=("$PY" "$E2E_DIR/cases/500-results-check.py")
export SR_VIEWER_PARSE=$TOOLS/sr-viewer-parse.js
RESULTS_VALIDATE=()
PIXELMED_JAR=${PIXELMED_JAR:-/usr/share/java/pixelmed.jar}
if command -v java >/dev/null 2>&1 && [ -f "$PIXELMED_JAR" ]; then
	RESULTS_VALIDATE+=(--pixelmed "$PIXELMED_JAR")
else
	note "pixelmed (java, $PIXELMED_JAR) not found: DicomSRValidator checks skipped"
fi
RESULTS_NM=
for d in "${TRIAGED_SR_NODE_MODULES:-}" "$TRIAGED_BUILD_DIR/npm/node_modules" "${TRIAGED_NODE_MODULES:-}"; do
	if [ -n "$d" ] && [ -f "$d/dcmjs/package.json" ] && [ -f "$d/@cornerstonejs/adapters/package.json" ]; then
		RESULTS_NM=$d
		break
	fi
done
if [ -n "$RESULTS_NM" ] && command -v node >/dev/null 2>&1; then
	RESULTS_VALIDATE+=(--node-modules "$RESULTS_NM")
else
	note "dcmjs + @cornerstonejs/adapters not installed (TRIAGED_SR_NODE_MODULES, $TRIAGED_BUILD_DIR/npm/node_modules): viewer-side SR check skipped"
fi
RESULTS_JOBS=0

# results_check LOG ARGS...: run the checker, keep its output in LOG, print
# the failed lines and fail the case when a check failed.
results_check() {
	local out=$1
	shift
	if ! "${RESULTS_CHECK[@]}" "$@" > "$out" 2>&1; then
		grep -v '^ok:' "$out" | head -n 30 | sed 's/^/    | /' >&3
		fail "check failed: $* (see above)"
	fi
	log "$(grep -c '^ok:' "$out") checks passed: $(basename "$out" .log)"
}

results_job() {
	local name=$1 template=$2 nfd=$3 boxes=$4 want_ov=$5 dir=$T/out/job-$1
	shift 5
	local args=(--template "$template" --route "test-$name" --job "$((RESULTS_JOBS + 1))" --render)
	local cargs=()
	if [ "$nfd" = nfd ]; then
		args+=(--not-for-diagnosis --backend reference)
		cargs+=(--nfd)
	fi
	RESULTS_JOBS=$((RESULTS_JOBS + 1))
	"$RESULTS_DRIVER" "${args[@]}" "$T/out/$name.json" "$dir" "$@" > "$T/out/$name.driver" 2>"$T/out/$name.driver.err" \
		|| { sed 's/^/    | /' "$T/out/$name.driver.err" >&3; fail "results_driver failed for job $name"; }
	log "driver: $(grep '^time_ms' "$T/out/$name.driver")"
	local n_ov
	n_ov=$(grep -c '^overlay ' "$T/out/$name.driver" || true)
	[ "$n_ov" = "$want_ov" ] || fail "job $name: $n_ov overlays written, $want_ov expected"
	[ -s "$dir/sr.dcm" ] && [ -s "$dir/summary.dcm" ] || fail "job $name: SR or summary missing"
	ok "job $name: SR, $n_ov overlay(s), summary written"

	results_check "$T/out/$name-sr.log" sr "$dir/sr.dcm" --result "$T/out/$name.json" \
		--template "$template" "${cargs[@]}" "$@"
	local k=0 path src
	while read -r _ path src; do
		k=$((k + 1))
		results_check "$T/out/$name-overlay-$k.log" overlay "$path" --result "$T/out/$name.json" \
			--source "$src" --render "$dir/render-$k.pgm" "${cargs[@]}"
	done < <(grep '^overlay ' "$T/out/$name.driver")
	results_check "$T/out/$name-summary.log" summary "$dir/summary.dcm" --result "$T/out/$name.json" \
		"${cargs[@]}" "$@"
	local vargs=("${RESULTS_VALIDATE[@]}" --boxes "$boxes")
	[ -z "${RESULTS_ALLOW_ERROR:-}" ] || vargs+=(--allow-error "$RESULTS_ALLOW_ERROR")
	results_check "$T/out/$name-validate.log" validate "${vargs[@]}" "$dir"/*.dcm
	grep -h '^   ' "$T/out/$name-validate.log" | sort | uniq -c | sed 's/^/    /' >&3 || true
}

finish_results() {
	log "$RESULTS_JOBS job(s) written and checked"
}

# 600-forward-lib.bash - sourced by the e2e cases 6xx (after lib.sh): the
# destinations (src/dest_*.c) driven by tests/tools/dest_driver, without the
# daemon. Not a case itself (ctest runs cases/*.sh only).
#
#   DRIVER                 tests/dest_driver of the build
#   DCONF                  $T/dest.conf: [server] ae_title = TRIAGED, then
#                          what the case appends ([destination NAME] ...)
#   orthanc_pacs DIR MODE  orthanc-test-pacs on free ports (PACS TESTPACS,
#                          daemon AE TRIAGED), tracked for cleanup; sets
#                          OPORT, OHTTP, O (its REST base URL)
#   orthanc_compare TSV [REMOTE_AET]
#                          600-forward-compare.py against $O: each distinct
#                          instance sent OK is in Orthanc, in the file's
#                          transfer syntax, with the file's elements
#   every_row TSV STATUS CODE MESSAGE
#                          every line of dest_driver's output has these

DRIVER=$TRIAGED_BUILD_DIR/tests/dest_driver
[ -x "$DRIVER" ] || fail "no dest_driver at $DRIVER (cmake --build $TRIAGED_BUILD_DIR --target dest_driver)"
DCONF=$T/dest.conf
printf '[server]\nae_title = TRIAGED\n' > "$DCONF"

orthanc_pacs() {
	local dir=$1 mode=${2:-open}
	OPORT=$(free_port); OHTTP=$(free_port)
	O=http://127.0.0.1:$OHTTP
	"$TOOLS/orthanc-test-pacs" start "$dir" "$OPORT" "$OHTTP" TESTPACS TRIAGED "$(free_port)" "$mode" \
		> "$dir.start.log" 2>&1 || fail "Orthanc did not start: $(cat "$dir.start.log")"
	track_pid "$(cat "$dir/orthanc.pid")"
	log "$(cat "$dir.start.log")"
}

orthanc_compare() {
	"$PY" "$E2E_DIR/cases/600-forward-compare.py" "$O" "$1" "$T/out/back.dcm" ${2:+"$2"} \
		> "$T/out/compare.txt" 2>&1 || fail "Orthanc's copies differ from the files:
$(cat "$T/out/compare.txt")"
	log "$(tail -n 1 "$T/out/compare.txt")"
}

every_row() {
	local bad
	[ -s "$1" ] || fail "$1 is empty"
	bad=$(awk -F'\t' -v s="$2" -v c="$3" -v m="$4" '$2 != s || $3 != c || $4 != m' "$1")
	[ -z "$bad" ] || fail "expected $2 $3 '$4' on every line of $1, got:
$bad"
}

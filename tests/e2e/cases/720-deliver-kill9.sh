# 720-deliver-kill9: kill -9 of triaged while it delivers to the PACS.
#
# Config:   [destination pacs] type = dicom -> Orthanc, one association;
#           receive only (no route), so the dispatcher has 40 originals.
# Modality: storescu sends 20 generated two-image CR studies (1024x832).
# Expected: triaged is killed with SIGKILL while dispatches are being sent;
#           after the restart every dispatch is delivered, Orthanc holds
#           each of the 40 instances exactly once (no instance missing, none
#           twice: Orthanc keeps one per SOP Instance UID and counts them),
#           with the dataset triaged received.
. "$(dirname "$0")/../lib.sh"
require_binaries
require_cmd Orthanc curl

make_studies CR --kind cr-chest --count 20 --size 1024x832 --seed 7201
PACS=$T/pacs
P_DICOM=$(free_port)
P_HTTP=$(free_port)
O=http://127.0.0.1:$P_HTTP
"$TOOLS/orthanc-test-pacs" start "$PACS" "$P_DICOM" "$P_HTTP" TESTPACS TRIAGED 21104 open > "$T/out/pacs.start" 2>&1 \
	|| { cat "$T/out/pacs.start" >&3; fail "Orthanc did not start"; }
track_pid "$(cat "$PACS/orthanc.pid")"

receive_only
CONF_EXTRA="[destination pacs]
type = dicom
host = 127.0.0.1
port = $P_DICOM
ae_title = TESTPACS
send = originals
max_associations = 1
retry_base_s = 1
retry_max_s = 2"
write_config stable_seconds=2
start_triaged

mapfile -t FILES < <(find "$CR" -name '*.dcm' | sort)
step "send ${#FILES[@]} images; kill -9 triaged while it forwards them"
storescu_send "$T/out/send.log" MODALITY1 "${FILES[@]}" || fail "storescu failed"
delivered_some() {
	ctl_json "$T/out/status.json" status --json
	[ "$(json "$T/out/status.json" "d['dispatches'].get('delivered', 0)")" -ge 3 ]
}
wait_for 60 "the first deliveries" delivered_some || fail "nothing delivered"
kill -9 "$TRIAGED_PID"
wait "$TRIAGED_PID" 2>/dev/null || true
untrack_pid "$TRIAGED_PID"
TRIAGED_PID=
ctl_json "$T/out/killed.json" status --json
log "at the kill: $(json "$T/out/killed.json" "d['dispatches']")"
[ "$(json "$T/out/killed.json" "d['dispatches'].get('delivered', 0)")" -lt "${#FILES[@]}" ] \
	|| note "everything was delivered before the kill (machine fast); the restart check still runs"

step "restart: every dispatch delivered, each instance in Orthanc once"
start_triaged
grep -q "dispatch(es) interrupted by the last stop are pending again\|spool reconciled" "$T/triaged.log" || true
all_delivered() {
	ctl_json "$T/out/status.json" status --json
	[ "$(json "$T/out/status.json" "d['dispatches'].get('delivered', 0)")" = "${#FILES[@]}" ]
}
wait_for 120 "all ${#FILES[@]} delivered" all_delivered || { cat "$T/out/status.json" >&3; fail "not all delivered after the restart"; }
n=$(curl -sf "$O/statistics" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])')
[ "$n" = "${#FILES[@]}" ] || fail "Orthanc holds $n instances, expected ${#FILES[@]}"
for f in "${FILES[@]}"; do
	sop=$(dcm_get "$f" SOPInstanceUID)
	id=$(curl -sf -X POST "$O/tools/lookup" -d "$sop" | "$PY" -c 'import json,sys; r=[x["ID"] for x in json.load(sys.stdin) if x["Type"]=="Instance"]; print(r[0] if r else "")')
	[ -n "$id" ] || fail "$sop missing in Orthanc"
	curl -sf -o "$T/out/back.dcm" "$O/instances/$id/file" || fail "cannot download $sop"
	study=$(dcm_get "$f" StudyInstanceUID)
	dataset_bytes_equal "$SPOOL/studies/$study/$sop.dcm" "$T/out/back.dcm" > /dev/null || fail "$sop differs in Orthanc"
done
ok "${#FILES[@]} instances in Orthanc, once each, same datasets"
stop_triaged
"$TOOLS/orthanc-test-pacs" stop "$PACS" > /dev/null 2>&1 || true

# 710-deliver-orthanc: store-and-forward to a real PACS (Orthanc), with an
# outage and a refusal in the middle.
#
# Config:   the default routes; [destination pacs] type = dicom -> Orthanc,
#           send = originals, results, short backoff (retry_base_s = 1,
#           retry_max_s = 3).
# Modality: storescu sends generated CR, MG and child-hand studies and the
#           shared SR files (unrouted: no route takes SR), then every image
#           of the shared test data (all transfer syntaxes, J2K included),
#           and dcmsend a CT and an MR study (no route takes them).
# Expected: every original reaches Orthanc with the same dataset bytes as
#           the spool copy (which is what the modality sent), routed or
#           not (the test data: same transfer syntax, dataset bytes or at
#           least every element and the pixel bytes); the SR and SC results
#           of every job arrive in their source
#           study; while Orthanc is down a new study waits (pending, with
#           the reason) and arrives once Orthanc is back, originals before
#           results; with Orthanc refusing our AE (strict mode) and a short
#           max_age the dispatches end dead with the reason, and after the
#           fix `triagectl retry --state dead` delivers them.
. "$(dirname "$0")/../lib.sh"
require_binaries
require_cmd Orthanc curl
ORTHANC_TOOL=$TOOLS/orthanc-test-pacs

make_studies CR   --kind cr-chest      --count 1 --size 512x416 --seed 7101
make_studies MG   --kind mg-screening  --count 1 --size 640x496 --seed 7102
make_studies HAND --kind hand-bone-age --count 1 --size 512x416 --seed 7103
make_studies DX   --kind dx-wrist      --count 1 --size 512x416 --seed 7104
make_studies CR2  --kind cr-chest      --count 1 --size 512x416 --seed 7105

PACS=$T/pacs
P_DICOM=$(free_port)
P_HTTP=$(free_port)
O=http://127.0.0.1:$P_HTTP
pacs_start() { # pacs_start open|strict DAEMON_AET
	"$ORTHANC_TOOL" start "$PACS" "$P_DICOM" "$P_HTTP" TESTPACS "$2" 21104 "$1" > "$T/out/pacs.start" 2>&1 \
		|| { cat "$T/out/pacs.start" >&3; fail "Orthanc did not start"; }
	track_pid "$(cat "$PACS/orthanc.pid")"
	log "Orthanc ($1, known AE $2) on DICOM $P_DICOM, HTTP $P_HTTP"
}
pacs_stop() { "$ORTHANC_TOOL" stop "$PACS" > /dev/null 2>&1 || true; }
pacs_start open TRIAGED

dest_conf() { # dest_conf MAX_AGE
	CONF_EXTRA="[destination pacs]
type = dicom
host = 127.0.0.1
port = $P_DICOM
ae_title = TESTPACS
send = originals, results
max_associations = 2
max_age = $1
retry_base_s = 1
retry_max_s = 3"
}
dest_conf 1h
write_config stable_seconds=2
start_triaged
"$TRIAGECTL" -c "$CONF" echo pacs > "$T/out/echo.txt" 2>&1 || { cat "$T/out/echo.txt" >&3; fail "triagectl echo pacs failed with Orthanc up"; }
ok "triagectl echo pacs: $(cat "$T/out/echo.txt")"

# settled: no study receiving, no job or dispatch still to do, twice 2 s
# apart (the dispatches of new results are queued once a second)
idle_now() {
	ctl_json "$T/out/status.json" status --json
	[ "$(json "$T/out/status.json" "d['studies']['receiving'] + d['jobs'].get('pending', 0) + d['jobs'].get('running', 0) + d['dispatches'].get('pending', 0) + d['dispatches'].get('sending', 0)")" = 0 ]
}
settled() { idle_now && sleep 2 && idle_now; }

# in_pacs SOP: prints the Orthanc id of the instance, or nothing
in_pacs() { curl -sf -X POST "$O/tools/lookup" -d "$1" | "$PY" -c 'import json,sys; r=[x["ID"] for x in json.load(sys.stdin) if x["Type"]=="Instance"]; print(r[0] if r else "")'; }

# check_study STUDY_UID: every original (same dataset) and every result in Orthanc
check_study() {
	local uid=$1 sop path id n=0
	ctl_json "$T/out/study.json" show "$uid" --json
	while IFS=$'\t' read -r sop path; do
		id=$(in_pacs "$sop")
		[ -n "$id" ] || fail "study $uid: instance $sop is not in Orthanc"
		curl -sf -o "$T/out/back.dcm" "$O/instances/$id/file" || fail "cannot download $sop from Orthanc"
		dataset_bytes_equal "$path" "$T/out/back.dcm" > "$T/out/diff.txt" \
			|| { cat "$T/out/diff.txt" >&3; fail "$sop: Orthanc's dataset differs from what triaged received"; }
		n=$((n + 1))
	done < <(json "$T/out/study.json" "'\\n'.join(i['sop_instance_uid'] + '\\t' + i['path'] for i in d['instances'])" | sed '/^$/d')
	while IFS=$'\t' read -r sop kind; do
		id=$(in_pacs "$sop")
		[ -n "$id" ] || fail "study $uid: $kind result $sop is not in Orthanc"
		[ "$(curl -sf "$O/instances/$id/simplified-tags" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["StudyInstanceUID"])')" = "$uid" ] \
			|| fail "$kind result $sop is not in the source study $uid"
		n=$((n + 1))
	done < <(json "$T/out/study.json" "'\\n'.join(r['sop_instance_uid'] + '\\t' + r['kind'] for r in d['results'])" | sed '/^$/d')
	[ "$(json "$T/out/study.json" "sum(1 for x in d['dispatches'] if x['state'] != 'delivered')")" = 0 ] \
		|| fail "study $uid has dispatches not delivered"
	log "study $uid: $n objects in Orthanc, originals bit-identical"
}

step "a mixed set: CR, MG, child hand (routed) and SR files (not routed)"
mapfile -t FIRST < <(find "$CR" "$MG" "$HAND" -name '*.dcm' | sort; ls "$TESTDATA"/sr/*.dcm)
storescu_send "$T/out/send1.log" MODALITY1 "${FIRST[@]}" || fail "storescu failed"
wait_for 90 "everything analysed and delivered" settled || { cat "$T/out/status.json" >&3; fail "not settled"; }
[ "$(json "$T/out/status.json" "d['dispatches'].get('dead', 0)")" = 0 ] || fail "dead dispatches"
ctl_json "$T/out/studies.json" list --studies --json
for uid in $(json "$T/out/studies.json" "' '.join(s['study_uid'] for s in d['studies'])" | tr -d '"'); do
	check_study "$uid"
done
sr_study=$(dcm_get "$(ls "$TESTDATA"/sr/*.dcm | head -1)" StudyInstanceUID)
[ "$(json "$T/out/studies.json" "len([s for s in d['studies'] if s['study_uid'] == '$sr_study'])")" = 1 ] || fail "SR study not received"
ok "routed and unrouted studies all in Orthanc with their results"

step "unrouted modalities: a CT and an MR study are forwarded too"
"$PY" - "$(find "$CR" -name '*.dcm' | head -1)" "$T/out" <<'PY' || fail "cannot make the CT and MR files"
import sys, uuid, pydicom
src, out = sys.argv[1], sys.argv[2]
for mod, cls in (("CT", "1.2.840.10008.5.1.4.1.1.2"), ("MR", "1.2.840.10008.5.1.4.1.1.4")):
    d = pydicom.dcmread(src)
    d.SOPClassUID = d.file_meta.MediaStorageSOPClassUID = cls
    d.Modality = mod
    d.StudyInstanceUID = "2.25.%d" % uuid.uuid4().int
    d.SeriesInstanceUID = "2.25.%d" % uuid.uuid4().int
    d.SOPInstanceUID = d.file_meta.MediaStorageSOPInstanceUID = "2.25.%d" % uuid.uuid4().int
    d.save_as("%s/unrouted-%s.dcm" % (out, mod))
PY
dcmsend_send "$T/out/unrouted.rpt" "$T/out/unrouted.log" MODALITY1 "$T"/out/unrouted-*.dcm || fail "dcmsend failed"
wait_for 60 "CT and MR delivered" settled || { cat "$T/out/status.json" >&3; fail "not settled"; }
for f in "$T"/out/unrouted-*.dcm; do
	uid=$(dcm_get "$f" StudyInstanceUID)
	ctl_json "$T/out/unrouted.json" show "$uid" --json
	[ "$(json "$T/out/unrouted.json" "len(d['jobs'])")" = 0 ] || fail "a job was made for $(dcm_get "$f" Modality)"
	check_study "$uid"
done
ok "CT and MR (no route takes them) are in Orthanc, bit-identical"

step "the shared test data (every transfer syntax) through the daemon to Orthanc"
mapfile -t TD < <(find "$TESTDATA/cr" "$TESTDATA/dx" "$TESTDATA/mg" "$TESTDATA/hand" "$TESTDATA/misc-syntax" -name '*.dcm' | sort)
storescu_send "$T/out/sendtd.log" MODALITY1 "${TD[@]}" || note "storescu exited non-zero"
wait_for 120 "test data analysed and delivered" settled || { cat "$T/out/status.json" >&3; fail "test data not settled"; }
[ "$(json "$T/out/status.json" "d['dispatches'].get('dead', 0)")" = 0 ] || fail "dead dispatches for the test data"
# what triaged stored (the bytes as received) against what Orthanc holds,
# in the same transfer syntax, from our AE: dataset bytes, or at least every
# element outside group 0002 and the pixel data byte for byte
: > "$T/out/td.tsv"
for f in "${TD[@]}"; do
	sop=$(dcm_get "$f" SOPInstanceUID); study=$(dcm_get "$f" StudyInstanceUID)
	[ -f "$SPOOL/studies/$study/$sop.dcm" ] && printf '%s\tOK\t0x0000\tstored\n' "$SPOOL/studies/$study/$sop.dcm" >> "$T/out/td.tsv"
done
"$PY" "$E2E_DIR/cases/600-forward-compare.py" "$O" "$T/out/td.tsv" "$T/out/cmp.dcm" TRIAGED > "$T/out/cmp.txt" 2>&1 \
	|| { sed 's/^/    /' "$T/out/cmp.txt" >&3; fail "Orthanc does not hold what triaged received"; }
tail -1 "$T/out/cmp.txt" | sed 's/^/    /' >&3
ok "every test-data original forwarded by the daemon, same elements, same transfer syntax"

step "outage: Orthanc stopped while a study arrives"
pacs_stop
mapfile -t SECOND < <(find "$DX" -name '*.dcm' | sort)
dx_study=$(dcm_get "${SECOND[0]}" StudyInstanceUID)
storescu_send "$T/out/send2.log" MODALITY1 "${SECOND[@]}" || fail "storescu failed"
waiting() {
	ctl_json "$T/out/dx.json" show "$dx_study" --json
	[ "$(json "$T/out/dx.json" "sum(1 for x in d['dispatches'] if x['state'] == 'pending' and x['attempts'] >= 2 and x['error'])")" -ge 2 ]
}
wait_for 60 "dispatches retried with a reason" waiting || { cat "$T/out/dx.json" >&3; fail "no retries while the PACS is down"; }
log "while down: $(json "$T/out/dx.json" "d['dispatches'][0]['error']")"
echo_ok MODALITY1 || fail "triaged stopped answering C-ECHO during the outage"
rc=0; "$TRIAGECTL" -c "$CONF" echo pacs > "$T/out/echo.txt" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "triagectl echo pacs exited $rc with Orthanc down (expected 1)"
log "triagectl echo with Orthanc down: $(cat "$T/out/echo.txt")"
assert_alive
pacs_start open TRIAGED
wait_for 90 "delivered after the outage" settled || { cat "$T/out/status.json" >&3; fail "not delivered after the outage"; }
check_study "$dx_study"
"$PY" - "$O" "$T/out/study.json" <<-'EOF' || fail "results reached Orthanc before the originals"
import json, sys, urllib.request
o, d = sys.argv[1], json.load(open(sys.argv[2]))
def received(sop):
    ids = json.load(urllib.request.urlopen(urllib.request.Request(o + "/tools/lookup", data=sop.encode(), method="POST")))
    iid = [x["ID"] for x in ids if x["Type"] == "Instance"][0]
    return urllib.request.urlopen(o + "/instances/%s/metadata/ReceptionDate" % iid).read().decode()
orig = [received(i["sop_instance_uid"]) for i in d["instances"]]
res = [received(r["sop_instance_uid"]) for r in d["results"]]
print("    originals received %s, results %s" % (max(orig), min(res)))
assert max(orig) <= min(res), (orig, res)
EOF
ok "everything of the study arrived after the outage, originals first"

step "refusal: Orthanc in strict mode does not know our AE; max_age 4 s"
pacs_stop
pacs_start strict SOMEONE_ELSE
dest_conf 4s
write_config stable_seconds=2 port="$PORT"
kill -HUP "$TRIAGED_PID"
sleep 1
mapfile -t THIRD < <(find "$CR2" -name '*.dcm' | sort)
cr2_study=$(dcm_get "${THIRD[0]}" StudyInstanceUID)
storescu_send "$T/out/send3.log" MODALITY1 "${THIRD[@]}" || fail "storescu failed"
dead() {
	ctl_json "$T/out/cr2.json" show "$cr2_study" --json
	[ "$(json "$T/out/cr2.json" "sum(1 for x in d['dispatches'] if x['state'] == 'dead')")" -ge 2 ]
}
wait_for 60 "dispatches dead after max_age" dead || { cat "$T/out/cr2.json" >&3; fail "no dead dispatches"; }
why=$(json "$T/out/cr2.json" "[x['error'] for x in d['dispatches'] if x['state'] == 'dead'][0]")
log "dead because: $why"
echo "$why" | grep -qi "max_age" || fail "the dead dispatch does not say it ran out of max_age"
echo "$why" | grep -qi "reject" || fail "the dead dispatch does not name the rejection"
ctl_json "$T/out/deadlist.json" list --dispatches --state dead --destination pacs --json
[ "$(json "$T/out/deadlist.json" "len(d['dispatches'])")" -ge 2 ] || fail "triagectl list --dispatches --state dead does not list them"
[ -z "$(in_pacs "$(json "$T/out/cr2.json" "d['instances'][0]['sop_instance_uid']")")" ] || fail "instance in Orthanc although it refused us"

step "fixed: Orthanc knows our AE; triagectl retry --state dead"
pacs_stop
pacs_start strict TRIAGED
dest_conf 1h
write_config stable_seconds=2 port="$PORT"
kill -HUP "$TRIAGED_PID"
sleep 1
ctl_json "$T/out/retry.json" retry --state dead --json
[ "$(json "$T/out/retry.json" "d['changed']")" -ge 2 ] || fail "retry changed nothing"
wait_for 60 "delivered after retry" settled || { cat "$T/out/status.json" >&3; fail "not delivered after retry"; }
check_study "$cr2_study"
ok "dead dispatches delivered once retried"
stop_triaged
pacs_stop

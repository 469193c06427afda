# 640-forward-dicomweb: the dicomweb destination stores into Orthanc's
# DICOMweb plugin (STOW-RS), with a result per instance.
#
# Config:   [destination web] type = dicomweb, url =
#           http://127.0.0.1:PORT/dicom-web; Orthanc started here with its
#           own configuration: the Debian plugin libOrthancDicomWeb.so
#           (orthanc-dicomweb 1.7), "DicomWeb": {"Enable": true, "Root":
#           "/dicom-web/"}, DICOM server off, free HTTP port, loopback only.
# Sender:   tests/dest_driver.
# Expected:
#   - echo (QIDO-RS GET .../studies?limit=1) OK;
#   - every file of testdata/{cr,dx,mg,hand,misc-syntax,sr} and generated CR,
#     MG and hand studies in one request: every file OK (in the response's
#     ReferencedSOPSequence); Orthanc holds each distinct SOP Instance UID
#     in the file's transfer syntax with the same elements as the file;
#   - one request of three new instances with a file Orthanc cannot store
#     (empty StudyInstanceUID) in second place: Orthanc 1.7 answers HTTP 200
#     but lists only the first instance, so the first is OK and the two others
#     RETRY "not confirmed by the server (HTTP 200, ...)" (decided from the
#     body, not the status); the third is not in Orthanc; sent again without
#     the bad file, it is OK;
#   - a wrong URL (no DICOMweb there): every file FAIL "STOW-RS: HTTP 404";
#     Orthanc stopped: every file RETRY "... Couldn't connect to server".
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/600-forward-lib.bash"
require_cmd Orthanc curl
PLUGIN=
for p in /usr/share/orthanc/plugins/libOrthancDicomWeb.so $(dpkg -L orthanc-dicomweb 2>/dev/null | grep '\.so' || true); do
	[ -f "$p" ] && { PLUGIN=$p; break; }
done
[ -n "$PLUGIN" ] || skip "the Orthanc DICOMweb plugin (package orthanc-dicomweb) is not installed"
BAD_STUDY=$TESTDATA/malformed/CR_chest_empty-PatientID-and-StudyUID.dcm

make_studies CR   --kind cr-chest      --count 1 --size 1024x832 --seed 6401
make_studies MGI  --kind mg-screening  --count 1 --size 1024x832 --seed 6402 --syntax implicit
make_studies HRLE --kind hand-bone-age --count 1 --size 1024x832 --seed 6403 --syntax rle
mapfile -t FILES < <(testdata_files cr dx mg hand misc-syntax sr; find "$CR" "$MGI" "$HRLE" -name '*.dcm' | sort)
NSOP=$(distinct_sops "${FILES[@]}")
log "${#FILES[@]} files, $NSOP distinct SOP Instance UIDs"

OHTTP=$(free_port)
O=http://127.0.0.1:$OHTTP
W=$T/web
mkdir -p "$W/storage" "$W/index" "$W/tmp" "$W/log"
cat > "$W/orthanc.json" <<EOF
{
  "Name" : "TEST-PACS-WEB",
  "StorageDirectory" : "$W/storage",
  "IndexDirectory" : "$W/index",
  "TemporaryDirectory" : "$W/tmp",
  "Plugins" : [ "$PLUGIN" ],
  "DicomWeb" : { "Enable" : true, "Root" : "/dicom-web/", "EnableWado" : false },
  "HttpServerEnabled" : true, "HttpPort" : $OHTTP,
  "RemoteAccessAllowed" : false, "AuthenticationEnabled" : false,
  "DicomServerEnabled" : false,
  "StableAge" : 5, "ExecuteLuaEnabled" : false, "RestApiWriteToFileSystemEnabled" : false
}
EOF
Orthanc --logdir="$W/log" "$W/orthanc.json" > "$W/log/stdout.log" 2>&1 3>&- &
OPID=$!
track_pid "$OPID"
wait_for 30 "Orthanc to answer" curl -sf "$O/system" || fail "Orthanc did not start: $(tail -n 5 "$W/log/stdout.log")"
curl -sf "$O/plugins/dicom-web" > /dev/null || fail "the DICOMweb plugin is not loaded: $(curl -s "$O/plugins")"
log "Orthanc pid $OPID on $O with $PLUGIN"

cat >> "$DCONF" <<EOF
[destination web]
type = dicomweb
url = $O/dicom-web/
timeout_s = 60
[destination nowhere]
type = dicomweb
url = $O/no-dicom-web-here
EOF

step "echo"
out=$("$DRIVER" -c "$DCONF" -d web --echo 2>&1) || fail "echo failed: $out"
ok "$out"

step "STOW-RS of ${#FILES[@]} files in one request"
"$DRIVER" -c "$DCONF" -d web "${FILES[@]}" > "$T/out/web.tsv" 2> "$T/out/web.log" || true
log "$(tail -n 1 "$T/out/web.log")"
bad=$(awk -F'\t' '$2 != "OK" || $4 != ""' "$T/out/web.tsv")
[ -z "$bad" ] || fail "not stored: $bad"
ok "${#FILES[@]}/${#FILES[@]} OK"

check "Orthanc holds each instance in the file's transfer syntax, with the file's elements"
orthanc_compare "$T/out/web.tsv"
n=$(curl -s "$O/statistics" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])')
[ "$n" = "$NSOP" ] || fail "Orthanc holds $n instances, expected $NSOP"
ok "Orthanc holds $n instances, all as sent"

step "one request: a new instance, a file Orthanc cannot store, two more new instances"
"$PY" - "$TESTDATA/sr/SR_basic-text_reportsi.dcm" "$T/out" <<'EOF'
import sys, warnings
warnings.simplefilter("ignore")
import pydicom, pydicom.uid
for i in range(3):
    ds = pydicom.dcmread(sys.argv[1])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as("%s/new%d.dcm" % (sys.argv[2], i))
EOF
MIX=("$T/out/new0.dcm" "$BAD_STUDY" "$T/out/new1.dcm" "$T/out/new2.dcm")
"$DRIVER" -c "$DCONF" -d web "${MIX[@]}" > "$T/out/mix.tsv" 2> "$T/out/mix.log" || true
awk -F'\t' '{ n = split($1, p, "/"); printf "    %-45s %-5s %s\n", p[n], $2, $4 }' "$T/out/mix.tsv" >&3
[ "$(sed -n 1p "$T/out/mix.tsv" | cut -f2)" = OK ] || fail "the first instance: $(sed -n 1p "$T/out/mix.tsv")"
bad=$(sed -n '2,4p' "$T/out/mix.tsv" | awk -F'\t' '$2 != "RETRY" || $4 !~ /^STOW-RS: not confirmed by the server \(HTTP 200, in neither ReferencedSOPSequence nor FailedSOPSequence\)$/')
[ -z "$bad" ] || fail "expected RETRY 'not confirmed' after the bad part: $bad"
ok "HTTP 200, yet only the first instance confirmed: OK, RETRY, RETRY, RETRY"
uid=$(dcm_get "$T/out/new2.dcm" SOPInstanceUID)
[ "$(curl -s -X POST "$O/tools/lookup" -d "$uid" | tr -d ' \n')" = "[]" ] \
	|| fail "Orthanc holds new2 although it did not confirm it"
"$DRIVER" -c "$DCONF" -d web "$T/out/new1.dcm" "$T/out/new2.dcm" > "$T/out/again.tsv" 2> "$T/out/again.log" \
	|| fail "sent again: $(cat "$T/out/again.tsv")"
ok "sent again without the bad file: OK"

step "a URL without DICOMweb, then Orthanc stopped"
"$DRIVER" -c "$DCONF" -d nowhere "${FILES[@]:0:3}" > "$T/out/nowhere.tsv" 2> "$T/out/nowhere.log" || true
bad=$(awk -F'\t' '$2 != "FAIL" || $4 !~ /^STOW-RS: HTTP 404/' "$T/out/nowhere.tsv")
[ -z "$bad" ] || fail "expected FAIL HTTP 404: $bad"
ok "FAIL: $(head -n 1 "$T/out/nowhere.tsv" | cut -f4)"
kill "$OPID"
wait_for 20 "Orthanc to stop" eval '! proc_alive '"$OPID" || fail "Orthanc did not stop"
untrack_pid "$OPID"
"$DRIVER" -c "$DCONF" -d web "${FILES[@]:0:3}" > "$T/out/down.tsv" 2> "$T/out/down.log" || true
bad=$(awk -F'\t' '$2 != "RETRY" || $4 !~ /^STOW-RS to http:.*failed: Couldn.t connect to server/' "$T/out/down.tsv")
[ -z "$bad" ] || fail "expected RETRY could not connect: $bad"
ok "RETRY: $(head -n 1 "$T/out/down.tsv" | cut -f4)"

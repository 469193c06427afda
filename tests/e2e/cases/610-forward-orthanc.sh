# 610-forward-orthanc: the dicom destination forwards the real test
# radiographs and generated studies to Orthanc, unchanged.
#
# Config:   [destination pacs] type = dicom, Orthanc (orthanc-test-pacs,
#           open mode) on free loopback ports; calling_ae TRIAGED.
# Sender:   tests/dest_driver (src/dest_dicom.c over dicom_scu.cc): C-ECHO,
#           then every file of testdata/{cr,dx,mg,hand,misc-syntax,sr} (every
#           transfer syntax: explicit/implicit/big endian, deflate, RLE, JPEG
#           baseline/extended/lossless, JPEG-LS, JPEG 2000 lossless and lossy,
#           a file without File Meta) plus generated CR, MG (implicit VR) and
#           hand (RLE) studies, in one send() = one association.
# Expected: every file OK with status 0x0000 on one association; Orthanc
#           holds each distinct SOP Instance UID once, with RemoteAET
#           TRIAGED, in the file's own transfer syntax (never decompressed:
#           Orthanc takes every syntax); the file Orthanc returns
#           (/instances/ID/file) has the same elements as the source, pixel
#           bytes included (group 0002 aside, and the illegal groups 0001-0007
#           that Orthanc itself drops; Orthanc keeps the first copy of a
#           SOP Instance UID and re-encodes sequence lengths, so bytes are
#           compared element by element; a malformed odd-length JPEG 2000
#           fragment arrives padded to even length).
#           Then the same files to DCMTK storescp +B (bit-preserving, every
#           syntax accepted): the dataset bytes it received are exactly the
#           file's dataset bytes for every file that has a File Meta and an
#           even-length dataset (the others are re-encoded by DCMTK, and
#           say so).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/600-forward-lib.bash"
require_cmd Orthanc curl storescp

make_studies CR   --kind cr-chest      --count 1 --size 1024x832 --seed 6101
make_studies MGI  --kind mg-screening  --count 1 --size 1024x832 --seed 6102 --syntax implicit
make_studies HRLE --kind hand-bone-age --count 1 --size 1024x832 --seed 6103 --syntax rle
mapfile -t FILES < <(testdata_files cr dx mg hand misc-syntax sr; find "$CR" "$MGI" "$HRLE" -name '*.dcm' | sort)
NSOP=$(distinct_sops "${FILES[@]}")
log "${#FILES[@]} files, $NSOP distinct SOP Instance UIDs"

orthanc_pacs "$T/pacs" open
cat >> "$DCONF" <<EOF
[destination pacs]
type = dicom
host = 127.0.0.1
port = $OPORT
ae_title = TESTPACS
timeout_s = 60
EOF

step "C-ECHO through the destination's echo()"
out=$("$DRIVER" -c "$DCONF" -d pacs --echo 2>&1) || fail "echo failed: $out"
[ "$out" = "echo	OK" ] || fail "echo printed: $out"
ok "echo OK"

step "send ${#FILES[@]} files to Orthanc in one send()"
t0=$(date +%s%N)
"$DRIVER" -c "$DCONF" -d pacs "${FILES[@]}" > "$T/out/pacs.tsv" 2> "$T/out/pacs.log" || true
log "$(tail -n 1 "$T/out/pacs.log") in $(elapsed_since "$t0") s"
print_results "$T/out/pacs.tsv"

check "every file OK with C-STORE status 0x0000"
bad=$(awk -F'\t' '$2 != "OK" || $3 != "0x0000"' "$T/out/pacs.tsv")
[ -z "$bad" ] || fail "not delivered: $bad"
[ "$(wc -l < "$T/out/pacs.tsv")" = "${#FILES[@]}" ] || fail "dest_driver printed $(wc -l < "$T/out/pacs.tsv") lines for ${#FILES[@]} files"
ok "${#FILES[@]}/${#FILES[@]} OK"

check "Orthanc holds every distinct SOP Instance UID once, from AE TRIAGED, in the file's transfer syntax, with the same elements"
orthanc_compare "$T/out/pacs.tsv" TRIAGED
n=$(curl -s "$O/statistics" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["CountInstances"])')
[ "$n" = "$NSOP" ] || fail "Orthanc holds $n instances, expected $NSOP"
ok "Orthanc holds $n instances, all as sent"

step "the same files to storescp +B (bit-preserving): the wire carries the file's dataset bytes"
SPORT=$(free_port)
printf '[destination scp]\ntype = dicom\nhost = 127.0.0.1\nport = %s\nae_title = STORESCP\n' "$SPORT" >> "$DCONF"
mkdir -p "$T/scp"
storescp -v -aet STORESCP +xa +B +uf -od "$T/scp" "$SPORT" > "$T/out/storescp.log" 2>&1 3>&- &
SCP_PID=$!
track_pid "$SCP_PID"
wait_for 10 "storescp to answer" echoscu -to 2 -aet TRIAGED -aec STORESCP 127.0.0.1 "$SPORT" || fail "storescp did not start"
n0=$(grep -c '^I: Association Received' "$T/out/storescp.log" || true)
"$DRIVER" -c "$DCONF" -d scp "${FILES[@]}" > "$T/out/scp.tsv" 2> "$T/out/scp.log" || true
bad=$(awk -F'\t' '$2 != "OK" || $3 != "0x0000"' "$T/out/scp.tsv")
[ -z "$bad" ] || fail "not delivered to storescp: $bad"
E2E_DIR=$E2E_DIR "$PY" - "$T/out/scp.tsv" "$T/scp" > "$T/out/wire.txt" 2>&1 <<'EOF' || fail "wire bytes differ: $(cat "$T/out/wire.txt")"
import hashlib, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
import dicomtool
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
got = {hashlib.sha256(dicomtool.dataset_bytes(os.path.join(sys.argv[2], f))).hexdigest()
       for f in os.listdir(sys.argv[2])}
raw = reenc = bad = 0
for path, status, code, msg in rows:
    if "re-encoded" in msg:
        reenc += 1
        continue
    if hashlib.sha256(dicomtool.dataset_bytes(path)).hexdigest() in got:
        raw += 1
    else:
        bad += 1
        print("NOT BIT-IDENTICAL: %s" % path)
print("%d files: %d received byte for byte as in the file, %d re-encoded by DCMTK (no File Meta or "
      "odd-length dataset), %d different" % (len(rows), raw, reenc, bad))
sys.exit(1 if bad or raw == 0 else 0)
EOF
log "$(tail -n 1 "$T/out/wire.txt")"
n=$(( $(grep -c '^I: Association Received' "$T/out/storescp.log" || true) - n0 ))
[ "$n" = 1 ] || fail "storescp saw $n associations for the batch, expected 1"
ok "one association for all ${#FILES[@]} files"
grep 're-encoded' "$T/out/scp.tsv" | awk -F'\t' '{ print "    " $1 ": " $4 }' >&3 || true
ok "bit-identical on the wire"

"$TOOLS/orthanc-test-pacs" stop "$T/pacs" > /dev/null 2>&1 || true

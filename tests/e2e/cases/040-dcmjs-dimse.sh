# 040-dcmjs-dimse: the real test radiographs from an independent, pure-JS
# DICOM stack (dcmjs-dimse 0.3.3 via shared/tools/dimse-send.js).
#
# Config:   defaults.
# Modality: dimse-send.js --each (one association per file: one file it
#           cannot encode must not end the others), through wiretap.py.
#           Left out, as peers.md section 2 lists: files without File Meta
#           (it refuses them), Deflated Explicit VR LE (it sends it
#           corrupted), and DA values longer than 8 (it aborts).
# Expected: every file it sends is answered Success and stored once,
#           bit-identical to what went over the wire, in the file's own
#           transfer syntax (dcmjs-dimse proposes it first); triagectl agrees.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only
require_dimse

mapfile -t ALL < <(testdata_files cr dx mg hand misc-syntax sr)
FILES=()
for f in "${ALL[@]}"; do
	case $(basename "$f") in
	CR_chest_barre_implicit-le_no-meta.dcm) log "left out (no File Meta, dcmjs-dimse refuses it): $f" ;;
	CR_chest_deflated-explicit-le.dcm)      log "left out (dcmjs-dimse sends deflate corrupted): $f" ;;
	DX_chest_pydicom966fixed_j2k-lossless.dcm) log "left out (DA of 56 chars, dcmjs-dimse cannot encode it): $f" ;;
	*) FILES+=("$f") ;;
	esac
done
NSOP=$(distinct_sops "${FILES[@]}")
log "${#FILES[@]} files, $NSOP distinct SOP Instance UIDs"

write_config
start_triaged
wiretap_start "$T/out/wire"

step "dimse-send.js --each sends ${#FILES[@]} files"
t0=$(date +%s%N)
dimse_send "$T/out/dimse.log" NODESCU "${FILES[@]}" --each || note "dimse-send.js exited non-zero"
log "dimse-send.js took $(elapsed_since "$t0") s: $(tail -n 1 "$T/out/dimse.log")"
sender_results dimse "$T/out/dimse.log" "${FILES[@]}" > "$T/out/results.tsv"
print_results "$T/out/results.tsv"
wiretap_stop

check "every file answered Success"
bad=$(awk -F'\t' '$2 != "0x0000"' "$T/out/results.tsv")
[ -z "$bad" ] || fail "not answered Success:
$bad"
ok "${#FILES[@]}/${#FILES[@]} Success"

check "each distinct SOP Instance UID stored once, bit for bit as sent; triagectl agrees"
dicomtool verify --spool "$SPOOL" --results "$T/out/results.tsv" --wire "$T/out/wire" --same-syntax \
	--triagectl "$TRIAGECTL" --config "$CONF" --exact || fail "stored instances do not match what was sent (see above)"

check "every association was from NODESCU and is in the log with the peer IP"
grep -q 'calling_ae=NODESCU' "$T/triaged.log" || note "calling AE NODESCU does not appear in the log"

check "no temp files left under spool/tmp"
[ "$(tmp_count)" = 0 ] || fail "left in $SPOOL/tmp: $(ls -la "$SPOOL/tmp")"
ok "spool/tmp is empty"
assert_nothing_outside_spool
stop_triaged

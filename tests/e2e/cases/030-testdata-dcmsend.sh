# 030-testdata-dcmsend: the real test radiographs, sent with DCMTK dcmsend.
#
# Config:   defaults.
# Modality: dcmsend -dn (never decompress: every file goes in its own
#           compressed syntax, or not at all), +f (files without File Meta
#           too), -nuc, -nh; one association per batch as dcmsend decides;
#           through wiretap.py, which records the dataset bytes sent.
#           dcmsend proposes one context per SOP class and syntax; for an
#           uncompressed file it offers explicit LE, big endian and implicit
#           LE in one context, so the receiver's choice decides the syntax on
#           the wire (dcmsend then converts: noted, not a daemon fault).
# Expected: every file answered Success (dcmsend's report), each distinct
#           SOP Instance UID stored once, dataset bit-identical to what went
#           over the wire, in that syntax; triagectl lists each once.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only
require_cmd dcmsend

mapfile -t FILES < <(testdata_files cr dx mg hand misc-syntax sr)
NSOP=$(distinct_sops "${FILES[@]}")
log "${#FILES[@]} test files, $NSOP distinct SOP Instance UIDs"

write_config
start_triaged
wiretap_start "$T/out/wire"

step "dcmsend sends ${#FILES[@]} files as they are (-dn)"
t0=$(date +%s%N)
dcmsend_send "$T/out/report.txt" "$T/out/dcmsend.log" MODALITY2 "${FILES[@]}" || note "dcmsend exited non-zero"
log "dcmsend took $(elapsed_since "$t0") s; $(grep -c 'Requesting Association' "$T/out/dcmsend.log" || true) association(s)"
sender_results dcmsend "$T/out/report.txt" "${FILES[@]}" > "$T/out/results.tsv"
print_results "$T/out/results.tsv"
wiretap_stop

check "every file answered Success"
bad=$(awk -F'\t' '$2 != "0x0000"' "$T/out/results.tsv")
[ -z "$bad" ] || fail "not answered Success (dcmsend log: $T/out/dcmsend.log):
$bad
$(grep -E '^[EF]:' "$T/out/dcmsend.log" | head -n 20)"
ok "${#FILES[@]}/${#FILES[@]} Success"

check "each distinct SOP Instance UID stored once, bit for bit as sent; triagectl agrees"
dicomtool verify --spool "$SPOOL" --results "$T/out/results.tsv" --wire "$T/out/wire" \
	--triagectl "$TRIAGECTL" --config "$CONF" --exact || fail "stored instances do not match what was sent (see above)"

check "triagectl status counts $NSOP instances"
ctl_json "$T/out/status.json" status --json
n=$(json "$T/out/status.json" "d['instances']")
[ "$n" = "$NSOP" ] || fail "triagectl status: instances=$n, expected $NSOP"
ok "$n instances"

check "no temp files left under spool/tmp"
[ "$(tmp_count)" = 0 ] || fail "left in $SPOOL/tmp: $(ls -la "$SPOOL/tmp")"
ok "spool/tmp is empty"
assert_nothing_outside_spool
stop_triaged

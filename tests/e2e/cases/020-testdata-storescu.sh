# 020-testdata-storescu: the real test radiographs, sent with DCMTK storescu.
#
# Config:   defaults (any calling AE, min_free_mb 0).
# Modality: storescu -xf storescu-radiography.cfg Radiography (the shared
#           profile, with its uncompressed group split into one context per
#           syntax so storescu can send each file in its own syntax), one
#           association, every file of testdata cr dx mg hand misc-syntax sr
#           (30 files, 12 transfer syntaxes, several share SOP Instance UIDs).
#           It goes through wiretap.py, which records the dataset bytes sent.
# Expected: every C-STORE answered Success; each distinct SOP Instance UID
#           stored once as studies/<study>/<sop>.dcm, dataset bit-identical to
#           what was sent, in the file's own transfer syntax (the profile
#           offers each syntax on its own, so the daemon must accept them all
#           and storescu never has to convert); triagectl lists each once;
#           tmp/ empty; nothing written elsewhere.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

mapfile -t FILES < <(testdata_files cr dx mg hand misc-syntax sr)
NSOP=$(distinct_sops "${FILES[@]}")
log "${#FILES[@]} test files, $NSOP distinct SOP Instance UIDs"

write_config
start_triaged
wiretap_start "$T/out/wire"

step "storescu sends ${#FILES[@]} files in one association"
t0=$(date +%s%N)
storescu_send "$T/out/storescu.log" MODALITY1 "${FILES[@]}" || note "storescu exited non-zero"
log "storescu took $(elapsed_since "$t0") s"
sender_results storescu "$T/out/storescu.log" "${FILES[@]}" > "$T/out/results.tsv"
print_results "$T/out/results.tsv"
wiretap_stop

check "every file answered Success"
bad=$(awk -F'\t' '$2 != "0x0000"' "$T/out/results.tsv")
[ -z "$bad" ] || fail "not answered Success:
$bad"
ok "${#FILES[@]}/${#FILES[@]} Success"

check "each distinct SOP Instance UID stored once, bit for bit, in the syntax it was sent in; triagectl agrees"
dicomtool verify --spool "$SPOOL" --results "$T/out/results.tsv" --wire "$T/out/wire" --same-syntax \
	--triagectl "$TRIAGECTL" --config "$CONF" --exact || fail "stored instances do not match what was sent (see above)"

check "triagectl status counts $NSOP instances"
ctl_json "$T/out/status.json" status --json
n=$(json "$T/out/status.json" "d['instances']")
[ "$n" = "$NSOP" ] || fail "triagectl status: instances=$n, expected $NSOP"
up=$(json "$T/out/status.json" "d['daemon']")
[ "$up" = up ] || fail "triagectl status: daemon=$up while triaged runs"
ok "status: daemon up, $n instances"

check "triagectl exit codes: 3 for an unknown study, 2 for a usage error"
rc=0; ctl show 9.9.9.9 > "$T/out/nf.out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "triagectl show 9.9.9.9 exited $rc, expected 3 (not found): $(cat "$T/out/nf.out")"
rc=0; ctl show 9.9.9.9 --json > "$T/out/nf.out" 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "triagectl show 9.9.9.9 --json exited $rc, expected 3 (not found): $(cat "$T/out/nf.out")"
rc=0; ctl frobnicate > "$T/out/usage.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "triagectl frobnicate exited $rc, expected 2 (usage): $(cat "$T/out/usage.out")"
ok "3 and 2"

check "no temp files left under spool/tmp"
[ "$(tmp_count)" = 0 ] || fail "left in $SPOOL/tmp: $(ls -la "$SPOOL/tmp")"
ok "spool/tmp is empty"
assert_nothing_outside_spool
stop_triaged

# 080-min-free: free-space floor.
#
# Config:   min_free_mb above the free space of the spool's filesystem;
#           then min_free_mb = 0, applied with SIGHUP.
# Modality: storescu -v, one CR image.
# Expected: C-STORE answered 0xA700 (storescu: "Refused: OutOfResources")
#           with an Error Comment; nothing stored (spool, tmp, database);
#           the daemon keeps running; after the config is rewritten with a
#           lower value and SIGHUP is sent, the same image stores fine.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

make_studies GEN --kind cr-chest --count 1 --size 256x208 --seed 8001
mapfile -t FILES < <(find "$GEN" -name '*.dcm' | sort)

free_mb=$(( $(df -Pk "$T" | awk 'NR==2 {print $4}') / 1024 ))
floor=$(( free_mb + 100000 ))
log "filesystem of $T has $free_mb MB free; min_free_mb = $floor"
write_config min_free_mb=$floor
start_triaged

step "storing with less free space than min_free_mb"
storescu_send "$T/out/full.log" MODALITY1 "${FILES[0]}" || true
sender_results storescu "$T/out/full.log" "${FILES[0]}" > "$T/out/full.tsv"
print_results "$T/out/full.tsv"
check "storescu reports 'Refused: OutOfResources' (0xA700) with an Error Comment"
grep -q 'Received Store Response (Refused: OutOfResources)' "$T/out/full.log" \
	|| fail "storescu -v did not report Refused: OutOfResources: $(grep -E 'Response|^[EF]:' "$T/out/full.log")"
ok "storescu: Refused: OutOfResources"
# storescu prints the status detail only at debug level: read it with storescu -d,
# and once more with rawscu.py, which prints the Error Comment of the response
storescu -d -aet MODALITY1 -aec "$AE" 127.0.0.1 "$PORT" "${FILES[0]}" > "$T/out/full-d.log" 2>&1 || true
comment=$(sed -n 's/^D: (0000,0902) LO \[\(.*\)\].*/\1/p' "$T/out/full-d.log" | head -n 1)
[ -n "$comment" ] || fail "no Error Comment (0000,0902) in the response: $(grep -A6 'Status Detail' "$T/out/full-d.log" || echo 'no Status Detail')"
rawscu MODALITY1 "$AE" "${FILES[0]}" > "$T/out/full-raw.log" 2>&1 || true
grep -q '^RESULT 0xA700 ' "$T/out/full-raw.log" || fail "rawscu.py: $(cat "$T/out/full-raw.log")"
ok "0xA700, Error Comment: $comment"
check "nothing stored: spool, tmp and database empty; the daemon is still up"
[ "$(stored_count)" = 0 ] || fail "stored although refused: $(stored_files)"
[ "$(tmp_count)" = 0 ] || fail "left in tmp: $(ls -la "$SPOOL/tmp")"
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['instances']")" = 0 ] || fail "triagectl status: $(cat "$T/out/status.json")"
assert_alive "after refusing for lack of space"
ok "nothing stored"

step "min_free_mb = 0, SIGHUP"
write_config min_free_mb=0
kill -HUP "$TRIAGED_PID"
check "the daemon survives SIGHUP and stores again (retrying for up to 10 s while the reload lands)"
try_store() {
	storescu_send "$T/out/retry.log" MODALITY1 "${FILES[@]}" || true
	sender_results storescu "$T/out/retry.log" "${FILES[@]}" > "$T/out/retry.tsv"
	[ -z "$(awk -F'\t' '$2 != "0x0000"' "$T/out/retry.tsv")" ]
}
t0=$(date +%s%N)
wait_for 10 "stores to succeed after SIGHUP" try_store \
	|| fail "still refused 10 s after SIGHUP with min_free_mb = 0: $(cat "$T/out/retry.tsv")"
assert_alive "after SIGHUP"
ok "stored $(elapsed_since "$t0") s after SIGHUP"
grep -qiE 'reload|SIGHUP' "$T/triaged.log" || note "the log does not mention the reload"
dicomtool verify --spool "$SPOOL" --results "$T/out/retry.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "stored instances do not match what was sent"
assert_nothing_outside_spool
stop_triaged

# 090-duplicates: the same SOP Instance UID received more than once.
#
# Config:   defaults.
# Modality: storescu sends one image twice in one association, then again
#           in a second association; then storescu and dcmsend send the
#           same 6 images (1024x832) at the same time, in the same order.
# Expected: every C-STORE answered Success; each SOP Instance UID stored
#           once (one file, one row in `triagectl show`), intact; the
#           instance counts of triagectl status/list match.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only
require_cmd dcmsend

make_studies GEN --kind cr-chest --count 3 --size 1024x832 --seed 9001
mapfile -t FILES < <(find "$GEN" -name '*.dcm' | sort)
A=${FILES[0]}
write_config
start_triaged

step "one image twice in one association"
storescu_send "$T/out/twice.log" MODALITY1 "$A" "$A" || true
grep -c 'Received Store Response (Success)' "$T/out/twice.log" | grep -qx 2 \
	|| fail "expected two Success responses: $(grep -E 'Response|^[EF]:' "$T/out/twice.log")"
ok "both answered Success"
check "one file, one row"
[ "$(stored_count)" = 1 ] || fail "$(stored_count) files stored: $(stored_files)"
sender_results storescu "$T/out/twice.log" "$A" > "$T/out/twice.tsv"
dicomtool verify --spool "$SPOOL" --results "$T/out/twice.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "the image is not stored once, intact"

step "the same image again, in a new association"
storescu_send "$T/out/again.log" MODALITY1 "$A" || true
grep -q 'Received Store Response (Success)' "$T/out/again.log" \
	|| fail "re-send not answered Success: $(grep -E 'Response|^[EF]:' "$T/out/again.log")"
[ "$(stored_count)" = 1 ] || fail "$(stored_count) files stored after a re-send: $(stored_files)"
ok "Success, still one file"

step "storescu and dcmsend send the same ${#FILES[@]} images at the same time"
storescu -v -aet MODALITY1 -aec "$AE" -xf "$PROFILE" Radiography -nh 127.0.0.1 "$PORT" "${FILES[@]}" \
	> "$T/out/par-storescu.log" 2>&1 &
p1=$!; track_pid $p1
dcmsend -v -aet MODALITY2 -aec "$AE" -dn -nh --create-report-file "$T/out/par-report.txt" 127.0.0.1 "$PORT" "${FILES[@]}" \
	> "$T/out/par-dcmsend.log" 2>&1 &
p2=$!; track_pid $p2
rc1=0; wait $p1 || rc1=$?; untrack_pid $p1
rc2=0; wait $p2 || rc2=$?; untrack_pid $p2
sender_results storescu "$T/out/par-storescu.log" "${FILES[@]}" > "$T/out/par1.tsv"
sender_results dcmsend "$T/out/par-report.txt" "${FILES[@]}" > "$T/out/par2.tsv"
log "storescu (exit $rc1):"; print_results "$T/out/par1.tsv"
log "dcmsend (exit $rc2):"; print_results "$T/out/par2.tsv"
check "every C-STORE of both senders answered Success"
bad=$(cat "$T/out/par1.tsv" "$T/out/par2.tsv" | awk -F'\t' '$2 != "0x0000"')
[ -z "$bad" ] || fail "not answered Success:
$bad"
ok "$(( ${#FILES[@]} * 2 )) Success"

check "each of the ${#FILES[@]} SOP Instance UIDs stored once, intact; listed once"
cat "$T/out/par1.tsv" "$T/out/par2.tsv" "$T/out/twice.tsv" > "$T/out/all.tsv"
dicomtool verify --spool "$SPOOL" --results "$T/out/all.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "duplicates are not stored exactly once"
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['instances']")" = "${#FILES[@]}" ] \
	|| fail "triagectl status: instances=$(json "$T/out/status.json" "d['instances']"), expected ${#FILES[@]}"
ctl_json "$T/out/list.json" list --studies --json
total=$(json "$T/out/list.json" "sum(s['instances'] for s in d['studies'])")
[ "$total" = "${#FILES[@]}" ] || fail "triagectl list --studies: instances add up to $total, expected ${#FILES[@]}"
ok "${#FILES[@]} instances, each once"
[ "$(tmp_count)" = 0 ] || fail "left in tmp: $(ls -la "$SPOOL/tmp")"
assert_nothing_outside_spool
stop_triaged

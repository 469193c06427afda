# 100-kill9-durability: kill -9 in the middle of a transfer.
#
# Config:   defaults.
# Modality: storescu -v sends 40 CR images (make-studies cr-chest, 20
#           studies of 2, 1024x832, 1.7 MB each) in one association, through
#           wiretap.py limited to 20 MB/s so the transfer takes a few seconds;
#           after 15 Success responses the daemon is killed with SIGKILL.
# Expected: every instance answered Success is on disk before and after the
#           restart, listed exactly once, bit-identical to its source; any
#           other stored instance is intact too; spool/tmp is emptied on
#           start; sending everything again gives 40 instances, each once.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

make_studies GEN --kind cr-chest --count 20 --size 1024x832 --seed 10001
mapfile -t FILES < <(find "$GEN" -name '*.dcm' | sort)
printf '%s\n' "${FILES[@]}" > "$T/out/all.list"
KILL_AFTER=15
write_config
start_triaged
# a slow link: the transfer lasts a few seconds, the kill lands mid-stream
wiretap_start "$T/out/wire" 20000000

step "storescu sends ${#FILES[@]} images; SIGKILL after $KILL_AFTER Success responses"
storescu -v -aet MODALITY1 -aec "$AE" -xf "$PROFILE" Radiography 127.0.0.1 "$SEND_PORT" "${FILES[@]}" \
	> "$T/out/send1.log" 2>&1 &
SPID=$!; track_pid $SPID
successes() { grep -c 'Received Store Response (Success)' "$T/out/send1.log" || true; }
t0=$(date +%s%N)
while [ "$(successes)" -lt "$KILL_AFTER" ]; do
	proc_alive "$SPID" || break
	[ "$(( ($(date +%s%N) - t0) / 1000000000 ))" -lt 60 ] || fail "fewer than $KILL_AFTER responses after 60 s"
	sleep 0.02
done
kill9_triaged
n_at_kill=$(successes)
log "killed after $n_at_kill Success responses ($(elapsed_since "$t0") s into the transfer)"
wait_for 30 "storescu to give up" eval '! proc_alive '"$SPID" || fail "storescu still running 30 s after the kill"
wait "$SPID" || true; untrack_pid "$SPID"
sender_results storescu "$T/out/send1.log" "${FILES[@]}" > "$T/out/send1.tsv"
n_ok=$(awk -F'\t' '$2 == "0x0000"' "$T/out/send1.tsv" | wc -l)
log "storescu: $n_ok Success, $(awk -F'\t' '$2 != "0x0000"' "$T/out/send1.tsv" | wc -l) without a Success response"
[ "$n_ok" -lt "${#FILES[@]}" ] || fail "the whole transfer finished before the kill: the test proves nothing (machine too fast?)"

check "while the daemon is dead: every Success-answered instance is already on disk, intact; nothing half-written under studies/"
dicomtool verify --spool "$SPOOL" --results "$T/out/send1.tsv" --maybe "$T/out/all.list" --exact \
	|| fail "the spool after SIGKILL does not hold every acknowledged instance intact"
log "spool/tmp after the kill: $(tmp_count) entr(y/ies)"
ctl_json "$T/out/status-down.json" status --json
[ "$(json "$T/out/status-down.json" "d['daemon']")" = down ] \
	|| fail "triagectl status says daemon=$(json "$T/out/status-down.json" "d['daemon']") after SIGKILL"
ok "triagectl status works while the daemon is down: daemon=down, instances=$(json "$T/out/status-down.json" "d['instances']")"

step "restart with the same config"
start_triaged
check "spool/tmp is empty after the start"
[ "$(tmp_count)" = 0 ] || fail "left in $SPOOL/tmp after restart: $(ls -la "$SPOOL/tmp")"
ok "tmp empty"
check "every acknowledged instance listed exactly once and intact; no instance without its file"
dicomtool verify --spool "$SPOOL" --results "$T/out/send1.tsv" --maybe "$T/out/all.list" \
	--triagectl "$TRIAGECTL" --config "$CONF" --exact || fail "acknowledged instances lost or damaged by SIGKILL + restart"
ctl_json "$T/out/status1.json" status --json
n_db=$(json "$T/out/status1.json" "d['instances']")
[ "$n_db" = "$(stored_count)" ] || fail "triagectl status: $n_db instances, spool holds $(stored_count) files"
ok "$n_db instances in the database, $(stored_count) files"

step "send everything again"
wiretap_stop
storescu_send "$T/out/send2.log" MODALITY1 "${FILES[@]}" || true
sender_results storescu "$T/out/send2.log" "${FILES[@]}" > "$T/out/send2.tsv"
bad=$(awk -F'\t' '$2 != "0x0000"' "$T/out/send2.tsv")
[ -z "$bad" ] || fail "second send not answered Success:
$bad"
ok "${#FILES[@]}/${#FILES[@]} Success"
check "all ${#FILES[@]} instances stored once, bit for bit"
dicomtool verify --spool "$SPOOL" --results "$T/out/send2.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "after the second send the spool is not exactly the ${#FILES[@]} instances"
ctl_json "$T/out/status2.json" status --json
[ "$(json "$T/out/status2.json" "d['instances']")" = "${#FILES[@]}" ] \
	|| fail "triagectl status: $(json "$T/out/status2.json" "d['instances']") instances, expected ${#FILES[@]}"
ok "${#FILES[@]} instances"
assert_nothing_outside_spool
stop_triaged

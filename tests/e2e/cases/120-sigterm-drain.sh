# 120-sigterm-drain: SIGTERM while associations are open.
#
# Config:   defaults.
# Part 1:   storescu sends 20 CR images (1024x832) through wiretap.py limited
#           to 10 MB/s (about 3.5 s); SIGTERM after 5 Success responses.
# Expected: triaged exits 0 within 15 s; the C-STORE in progress at SIGTERM
#           is finished and answered Success (design section 2: "finishes the
#           C-STOREs in progress"); every instance answered Success is stored
#           once, bit for bit (checked after a restart); any other stored
#           instance is intact; tmp/ is empty after the restart.
# Part 2:   an idle association (rawscu.py: C-ECHO, then holds the
#           association open for 60 s); SIGTERM.
# Expected: triaged exits 0 within 15 s.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

make_studies GEN --kind cr-chest --count 10 --size 1024x832 --seed 12001
mapfile -t FILES < <(find "$GEN" -name '*.dcm' | sort)
printf '%s\n' "${FILES[@]}" > "$T/out/all.list"
write_config
start_triaged
wiretap_start "$T/out/wire" 10000000

step "SIGTERM in the middle of a transfer"
storescu -v -aet MODALITY1 -aec "$AE" -xf "$PROFILE" Radiography 127.0.0.1 "$SEND_PORT" "${FILES[@]}" \
	> "$T/out/send.log" 2>&1 &
SPID=$!; track_pid $SPID
successes() { grep -c 'Received Store Response (Success)' "$T/out/send.log" || true; }
wait_for 60 "5 Success responses" eval '[ "$(successes)" -ge 5 ] || ! proc_alive '"$SPID" \
	|| fail "fewer than 5 responses after 60 s"
proc_alive "$SPID" || fail "the transfer ended before SIGTERM: $(tail -n 5 "$T/out/send.log")"
# at 10 MB/s an image takes ~170 ms: 50 ms after a response the next
# C-STORE is surely under way
sleep 0.05
c0=$(successes)
grep 'Sending Store Request' "$T/out/send.log" | tail -n 1 | grep -q "MsgID $((c0 + 1))," \
	|| fail "expected C-STORE $((c0 + 1)) to be under way at SIGTERM: $(tail -n 3 "$T/out/send.log")"
log "SIGTERM after $c0 Success responses, while C-STORE $((c0 + 1)) is being sent"
stop_triaged 15
wait_for 30 "storescu to finish" eval '! proc_alive '"$SPID" || fail "storescu still running 30 s after the daemon exited"
wait "$SPID" || true; untrack_pid "$SPID"
wiretap_stop
sender_results storescu "$T/out/send.log" "${FILES[@]}" > "$T/out/send.tsv"
n_ok=$(awk -F'\t' '$2 == "0x0000"' "$T/out/send.tsv" | wc -l)
log "storescu: $n_ok Success; the others: $(awk -F'\t' '$2 != "0x0000" {print $2}' "$T/out/send.tsv" | sort | uniq -c | tr '\n' ' ')"
grep -E 'Releasing|Aborting|Peer|^[EF]:' "$T/out/send.log" | head -n 5 | sed 's/^/    storescu: /'
check "the C-STORE in progress at SIGTERM (number $((c0 + 1))) was finished and answered Success"
[ "$n_ok" -gt "$c0" ] || fail "C-STORE $((c0 + 1)), in progress at SIGTERM, got no Success response: $(sed -n "$((c0 + 1))p" "$T/out/send.tsv")"
ok "$n_ok Success responses in all"

step "restart: every acknowledged instance is there"
start_triaged
[ "$(tmp_count)" = 0 ] || fail "left in $SPOOL/tmp after restart: $(ls -la "$SPOOL/tmp")"
dicomtool verify --spool "$SPOOL" --results "$T/out/send.tsv" --maybe "$T/out/all.list" \
	--triagectl "$TRIAGECTL" --config "$CONF" --exact || fail "acknowledged instances missing or damaged after SIGTERM"

step "SIGTERM with an idle association open"
rawscu IDLESCU "$AE" --echo --hold 60 > "$T/out/idle.log" 2>&1 &
RPID=$!; track_pid $RPID
wait_for 10 "the idle association" grep -q HOLDING "$T/out/idle.log" || fail "rawscu.py: $(cat "$T/out/idle.log")"
log "association open and idle: $(tr '\n' ' ' < "$T/out/idle.log")"
stop_triaged 15
kill "$RPID" 2>/dev/null || true; wait "$RPID" 2>/dev/null || true; untrack_pid "$RPID"

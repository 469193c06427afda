# 140-concurrency: parallel associations and the max_associations limit.
#
# Part 1:   default max_associations (16); 4 storescu at once, 10 images each
#           (4 different sets of 5 CR studies).
# Expected: all 40 answered Success, each stored once, bit for bit.
# Part 2:   max_associations = 2; two slow senders (rawscu.py: store one
#           image, then hold the association open 8 s) occupy both slots; a
#           third sender (storescu) and a C-ECHO arrive meanwhile.
# Expected: the third association is rejected, transient, "Local Limit
#           Exceeded" (design: beyond max_associations); the two held
#           associations are unaffected; once they are released the third
#           sender's retry is stored; nothing is lost.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

SETS=()
for i in 1 2 3 4; do
	make_studies "D$i" --kind cr-chest --count 5 --size 512x416 --seed 1400$i
	v=D$i; SETS+=("${!v}")
done
make_studies D5 --kind cr-chest --count 2 --size 512x416 --seed 14005

step "4 storescu associations at once, 10 images each"
write_config
start_triaged
PIDS_SEND=()
for i in 1 2 3 4; do
	mapfile -t F < <(find "${SETS[$((i - 1))]}" -name '*.dcm' | sort)
	printf '%s\n' "${F[@]}" > "$T/out/set$i.list"
	storescu -v -aet "MOD$i" -aec "$AE" -xf "$PROFILE" Radiography 127.0.0.1 "$PORT" "${F[@]}" > "$T/out/par$i.log" 2>&1 &
	PIDS_SEND+=($!); track_pid $!
done
for p in "${PIDS_SEND[@]}"; do wait "$p" || true; untrack_pid "$p"; done
: > "$T/out/par.tsv"
for i in 1 2 3 4; do
	mapfile -t F < "$T/out/set$i.list"
	sender_results storescu "$T/out/par$i.log" "${F[@]}" >> "$T/out/par.tsv"
done
check "all 40 answered Success"
bad=$(awk -F'\t' '$2 != "0x0000"' "$T/out/par.tsv")
[ -z "$bad" ] || fail "not answered Success:
$bad"
ok "40/40 Success"
peak=$(grep -c 'accepted calling_ae=MOD' "$T/triaged.log" || true)
log "$peak associations from MOD1..MOD4 in the log"
dicomtool verify --spool "$SPOOL" --results "$T/out/par.tsv" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "parallel associations lost or damaged instances"
stop_triaged

step "max_associations = 2: two held associations, a third one arrives"
write_config max_associations=2
start_triaged
mapfile -t F < <(find "$D5" -name '*.dcm' | sort | head -n 3)
rawscu SLOW1 "$AE" "${F[0]}" --hold 8 > "$T/out/slow1.log" 2>&1 &
S1=$!; track_pid $S1
rawscu SLOW2 "$AE" "${F[1]}" --hold 8 > "$T/out/slow2.log" 2>&1 &
S2=$!; track_pid $S2
wait_for 15 "both slow senders to hold their association" \
	eval 'grep -q HOLDING "$T/out/slow1.log" && grep -q HOLDING "$T/out/slow2.log"' \
	|| fail "slow senders: $(cat "$T/out/slow1.log" "$T/out/slow2.log")"
log "SLOW1: $(tr '\n' ' ' < "$T/out/slow1.log"); SLOW2: $(tr '\n' ' ' < "$T/out/slow2.log")"

check "a third association (storescu) is rejected: transient, Local Limit Exceeded"
rc=0
storescu -v -aet THIRD -aec "$AE" -xf "$PROFILE" Radiography 127.0.0.1 "$PORT" "${F[2]}" > "$T/out/third.log" 2>&1 || rc=$?
grep -E '^F: (Result|Reason)' "$T/out/third.log" | sed 's/^/    /' || true
[ "$rc" != 0 ] && grep -q 'Association Rejected' "$T/out/third.log" \
	|| fail "the third association was not rejected: $(grep -E 'Response|Association|^[EF]:' "$T/out/third.log")"
grep -q '^F: Reason: Local Limit Exceeded' "$T/out/third.log" \
	|| fail "rejected, but not for 'Local Limit Exceeded': $(grep '^F:' "$T/out/third.log")"
grep -q '^F: Result: Rejected Transient' "$T/out/third.log" \
	|| fail "rejected permanently, expected transient: $(grep '^F: Result' "$T/out/third.log")"
ok "rejected transient, Local Limit Exceeded"
check "a C-ECHO meanwhile is rejected too"
echo_ok && fail "C-ECHO accepted while max_associations=2 associations are held"
ok "rejected"

check "the held associations finish normally"
for p in $S1 $S2; do wait "$p" || true; untrack_pid "$p"; done
grep -q '^RESULT 0x0000' "$T/out/slow1.log" && grep -q '^RESULT 0x0000' "$T/out/slow2.log" \
	|| fail "slow senders: $(cat "$T/out/slow1.log" "$T/out/slow2.log")"
grep -q ABORTED "$T/out/slow1.log" "$T/out/slow2.log" && fail "a held association was aborted: $(cat "$T/out/slow1.log" "$T/out/slow2.log")"
ok "both stored and released"

check "the third sender's retry is stored"
retry() {
	storescu_send "$T/out/third2.log" THIRD "${F[2]}" || true
	grep -q 'Received Store Response (Success)' "$T/out/third2.log"
}
wait_for 10 "the retry to succeed" retry || fail "retry after release: $(grep -E 'Response|^[EF]:' "$T/out/third2.log")"
ok "stored"
cat "$T"/out/set?.list > "$T/out/all.list"
printf '%s\n' "${F[@]}" >> "$T/out/all.list"
dicomtool verify --spool "$SPOOL" --sources "$T/out/all.list" --triagectl "$TRIAGECTL" --config "$CONF" --exact \
	|| fail "instances lost with max_associations = 2"
assert_nothing_outside_spool
stop_triaged

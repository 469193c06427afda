# 060-malformed: every file of shared/testdata/malformed, one at a time,
# from three senders: storescu (with the profile), dcmjs-dimse (it sends some
# broken files storescu refuses) and rawscu.py (sends the file's dataset
# bytes as they are, with a well-formed command; a fresh SOP Instance UID in
# the command when the file has none). All through wiretap.py, so that the
# SOP Instance UID each sender really put in its request is known.
#
# Config:   defaults.
# Expected: for every file the daemon receives, either an error status (no
#           new file in the spool), or Success and then the stored file is
#           structurally sound (DCMTK and pydicom parse all of it, its UIDs
#           are the ones it is filed under). Never a crash: the daemon
#           answers C-ECHO after every file; a good file still stores fine at
#           the end; nothing is written outside the spool. A file a sender
#           refuses to send is reported "not sent by <tool>" and not counted.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only
HAVE_DIMSE=1
NODE_MODULES=$(node_modules_dir)
if ! command -v node >/dev/null 2>&1 || [ -z "$NODE_MODULES" ]; then
	HAVE_DIMSE=0
	note "dcmjs-dimse not installed: only storescu and rawscu.py send"
fi

mapfile -t FILES < <(find "$TESTDATA/malformed" -type f | sort)
write_config
start_triaged

TABLE=$T/out/table.tsv
: > "$TABLE"
received=0 errors=0 successes=0 failures=0

wiretap_start "$T/out/wire"
WIRE_INDEX=$T/out/wire/index.jsonl
touch "$WIRE_INDEX"

# wire_sop LINES_BEFORE DEFAULT: the Affected SOP Instance UID the last send
# actually put in its C-STORE request (senders may rewrite UIDs: dcmjs
# strips letters from UI values), or DEFAULT when nothing was sent
wire_sop() {
	tail -n +"$(($1 + 1))" "$WIRE_INDEX" | "$PY" -c '
import json, sys
sops = [r["sop_uid"] for r in map(json.loads, sys.stdin) if "sop_uid" in r]
print(sops[-1] if sops else sys.argv[1])' "$2"
}

# judge FILE TOOL RESULT_TSV COUNT_BEFORE SOP: classify one send, append to the table
judge() {
	local f=$1 tool=$2 tsv=$3 before=$4 sop=$5 code text after stored probs verdict
	sop=$(wire_sop "$WIRE_LINES" "$sop")
	code=$(cut -f2 "$tsv" | head -n 1)
	text=$(cut -f3 "$tsv" | head -n 1)
	after=$(stored_count)
	case $code in
	NOTSENT)
		verdict="not sent by $tool" ;;
	REJECTED)
		verdict="association rejected (${text:-no reason})"; received=$((received + 1)) ;;
	NORESPONSE)
		verdict="FAIL: no C-STORE response (association aborted or closed): $text"
		received=$((received + 1)); failures=$((failures + 1)) ;;
	0x0000|0xB*)
		received=$((received + 1)); successes=$((successes + 1))
		mapfile -t stored < <(find "$SPOOL/studies" -type f -name "$sop.dcm")
		if [ "${#stored[@]}" != 1 ]; then
			verdict="FAIL: $code but ${#stored[@]} stored file(s) named $sop.dcm"
			failures=$((failures + 1))
		elif probs=$(dicomtool intact "${stored[0]}" "$sop" "$(basename "$(dirname "${stored[0]}")")"); then
			verdict="$code stored, structurally sound"
		else
			verdict="FAIL: $code but the stored file is broken: $probs"
			failures=$((failures + 1))
		fi ;;
	0x*)
		received=$((received + 1)); errors=$((errors + 1))
		if [ "$after" != "$before" ]; then
			verdict="FAIL: error $code but the spool grew from $before to $after files"
			failures=$((failures + 1))
		else
			verdict="$code error${text:+ ($text)}"
		fi ;;
	*)
		verdict="FAIL: unexpected result '$code' $text"; failures=$((failures + 1)) ;;
	esac
	printf '%s\t%s\t%s\n' "$(basename "$f")" "$tool" "$verdict" >> "$TABLE"
	log "$(basename "$f") via $tool: $verdict"
	if ! proc_alive "$TRIAGED_PID" || ! echo_ok; then
		printf '%s\t%s\t%s\n' "$(basename "$f")" "$tool" "FAIL: daemon dead or deaf afterwards" >> "$TABLE"
		fail "triaged no longer answers C-ECHO after $(basename "$f") via $tool"
	fi
}

for f in "${FILES[@]}"; do
	step "$(basename "$f")"
	sop=$(dicomtool info "$f" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["sop_uid"] or "")')
	b=$(basename "$f" .dcm)

	before=$(stored_count); WIRE_LINES=$(wc -l < "$WIRE_INDEX")
	storescu_send "$T/out/$b.storescu.log" MODALITY1 "$f" || true
	sender_results storescu "$T/out/$b.storescu.log" "$f" > "$T/out/$b.storescu.tsv"
	judge "$f" storescu "$T/out/$b.storescu.tsv" "$before" "$sop"

	if [ "$HAVE_DIMSE" = 1 ] && [ "$b" = CT_bad-sequence-UN ]; then
		# dcmjs (not the daemon) spends ~30 s of CPU parsing this file's UN sequence
		printf '%s\t%s\t%s\n' "$(basename "$f")" dcmjs-dimse "skipped (dcmjs needs ~30 s to parse it)" >> "$TABLE"
	elif [ "$HAVE_DIMSE" = 1 ]; then
		before=$(stored_count); WIRE_LINES=$(wc -l < "$WIRE_INDEX")
		dimse_send "$T/out/$b.dimse.log" NODESCU "$f" --each || true
		sender_results dimse "$T/out/$b.dimse.log" "$f" > "$T/out/$b.dimse.tsv"
		judge "$f" dcmjs-dimse "$T/out/$b.dimse.tsv" "$before" "$sop"
	fi

	before=$(stored_count); WIRE_LINES=$(wc -l < "$WIRE_INDEX")
	rsop=$sop
	extra=()
	if [ -z "$rsop" ]; then
		rsop=2.25.$("$PY" -c 'import uuid; print(uuid.uuid4().int)')
		extra=(--sop-uid "$rsop")
	fi
	rawscu RAWSCU "$AE" "$f" "${extra[@]+"${extra[@]}"}" > "$T/out/$b.raw.log" 2>&1 || true
	sender_results rawscu "$T/out/$b.raw.log" "$f" > "$T/out/$b.raw.tsv"
	judge "$f" "rawscu${extra[*]:+ (command UID $rsop)}" "$T/out/$b.raw.tsv" "$before" "$rsop"
done

wiretap_stop
step "results"
awk -F'\t' '{ printf "    %-48s %-22s %s\n", $1, substr($2, 1, 22), $3 }' "$TABLE"
log "$received sends reached the daemon: $errors answered with an error status, $successes with Success; $failures problem(s)"

check "a good file still stores fine"
make_studies GOOD --kind cr-chest --count 1 --size 256x208 --seed 6001
mapfile -t GOODF < <(find "$GOOD" -name '*.dcm' | sort)
storescu_send "$T/out/good.log" MODALITY1 "${GOODF[@]}" || true
sender_results storescu "$T/out/good.log" "${GOODF[@]}" > "$T/out/good.tsv"
[ -z "$(awk -F'\t' '$2 != "0x0000"' "$T/out/good.tsv")" ] || fail "good files after the malformed ones: $(cat "$T/out/good.tsv")"
dicomtool verify --spool "$SPOOL" --results "$T/out/good.tsv" || fail "good files not stored as sent"
ok "good study stored"

assert_nothing_outside_spool
[ "$failures" = 0 ] || fail "$failures malformed-input check(s) failed (table above)"
stop_triaged

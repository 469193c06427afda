# 070-hostile-uids: UIDs that would be dangerous as file names.
#
# Config:   defaults.
# Modality: datasets made with pydicom from a good CR image, with the SOP
#           Instance UID, the Study Instance UID or the Series Instance UID
#           set to "../../x", "1.2/../../etc", 70 digits, "1.2.abc" or empty.
#           Sent with storescu (it does not validate UIDs); the cases it
#           cannot send (empty SOP Instance UID) and a command/dataset
#           mismatch are sent with rawscu.py.
# Expected: every one answered with an error status (0xA900 or 0xCxxx), the
#           daemon keeps running, nothing is stored, no file or directory
#           named after any of those strings appears anywhere, nothing is
#           written outside the spool; afterwards a good file stores fine.
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

make_studies BASE --kind cr-chest --count 1 --size 256x208 --seed 7001
SRC=$(find "$BASE" -name '*.dcm' | sort | head -n 1)
LONG=1.2.840.$(printf '1%.0s' $(seq 1 62))          # 70 characters, digits and dots
VALUES=("../../x" "1.2/../../etc" "$LONG" "1.2.abc" "")
mkdir -p "$T/out/hostile"

# escape targets outside $T: none of them may appear
ESCAPES=(/x /x.dcm /etc.dcm /tmp/x /tmp/x.dcm /tmp/etc.dcm /var/x /var/x.dcm)
for p in "${ESCAPES[@]}"; do [ ! -e "$p" ] || ESCAPES=("${ESCAPES[@]/$p}"); done

write_config
start_triaged

RESULTS=$T/out/results.tsv
: > "$RESULTS"
n=0
expect_error() { # expect_error LABEL TSV: the one send in TSV must get an error status
	local label=$1 code text
	code=$(cut -f2 "$2" | head -n 1); text=$(cut -f3 "$2" | head -n 1)
	printf '%s\t%s\t%s\n' "$label" "$code" "$text" >> "$RESULTS"
	case $code in
	0xA9??|0xC???) log "ok: $label -> $code $text" ;;
	0x0000|0xB???) fail "$label was answered $code (stored?) - expected an error status" ;;
	NOTSENT)       fail "$label: the sender did not send it ($text) - test setup problem" ;;
	*)             fail "$label: expected an error status 0xA900 or 0xCxxx, got $code $text" ;;
	esac
	assert_alive "after $label"
	[ "$(stored_count)" = 0 ] || fail "after $label the spool holds: $(stored_files)"
}

for field in sop study series; do
	step "hostile $field UID"
	for v in "${VALUES[@]}"; do
		n=$((n + 1))
		f=$T/out/hostile/$n-$field.dcm
		dicomtool make-hostile "$f" "$field" "$v" "$SRC"
		label="$field UID '$v'"
		if [ "$field" = sop ] && [ -z "$v" ]; then
			# storescu refuses a dataset without SOP Instance UID: send it raw,
			# once with an empty command UID, once with a valid one
			rawscu RAWSCU "$AE" "$f" > "$T/out/$n.raw.log" 2>&1 || true
			sender_results rawscu "$T/out/$n.raw.log" "$f" > "$T/out/$n.tsv"
			code=$(cut -f2 "$T/out/$n.tsv")
			if [ "$code" = NORESPONSE ]; then
				# an empty Affected SOP Instance UID in the command is a DIMSE
				# protocol error; DCMTK aborts such an association itself
				printf '%s\t%s\t%s\n' "$label (empty in the command too)" "aborted" "association aborted" >> "$RESULTS"
				note "$label with an empty command UID: association aborted (DIMSE-level), accepted"
				assert_alive "after $label"
				[ "$(stored_count)" = 0 ] || fail "after $label the spool holds: $(stored_files)"
			else
				expect_error "$label (empty in the command too)" "$T/out/$n.tsv"
			fi
			rawscu RAWSCU "$AE" "$f" --sop-uid "2.25.$n$n$n$n" > "$T/out/$n.raw2.log" 2>&1 || true
			sender_results rawscu "$T/out/$n.raw2.log" "$f" > "$T/out/$n.tsv"
			expect_error "$label (valid UID in the command)" "$T/out/$n.tsv"
			continue
		fi
		storescu_send "$T/out/$n.log" MODALITY1 "$f" || true
		sender_results storescu "$T/out/$n.log" "$f" > "$T/out/$n.tsv"
		expect_error "$label" "$T/out/$n.tsv"
		if [ "$field" = sop ] && [ "$v" = "../../x" ]; then
			# the command says a valid UID, the dataset says ../../x
			rawscu RAWSCU "$AE" "$f" --sop-uid "2.25.$n$n$n$n" > "$T/out/$n.raw.log" 2>&1 || true
			sender_results rawscu "$T/out/$n.raw.log" "$f" > "$T/out/$n.tsv"
			expect_error "$label (valid UID in the command)" "$T/out/$n.tsv"
		fi
	done
done

step "results"
awk -F'\t' '{ printf "    %-60s %-8s %s\n", $1, $2, $3 }' "$RESULTS"

check "nothing stored, nothing listed"
[ "$(stored_count)" = 0 ] || fail "stored: $(stored_files)"
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['instances']")" = 0 ] || fail "triagectl status: $(cat "$T/out/status.json")"
ctl_json "$T/out/list.json" list --studies --json
[ "$(json "$T/out/list.json" "len(d['studies'])")" = 0 ] || fail "triagectl lists studies: $(cat "$T/out/list.json")"
ok "spool and database empty"

check "no file or directory anywhere is named after the hostile strings"
bad=$(find "$T" \( -name '*..*' -o -name 'x' -o -name 'x.dcm' -o -name '*etc*' -o -name '*abc*' -o -name "*${LONG:0:40}*" \) \
	! -path "$T/out/*" -print)
[ -z "$bad" ] || fail "suspicious paths: $bad"
for p in "${ESCAPES[@]}"; do
	[ -z "$p" ] || [ ! -e "$p" ] || fail "$p appeared during the test"
done
extra=$(find "$T" -mindepth 1 -maxdepth 1 ! -name out ! -name var ! -name cwd ! -name 'triaged.*' ! -name '*.cfg' -print)
[ -z "$extra" ] || fail "unexpected entries in the test dir: $extra"
ok "no path made of a hostile UID, inside or outside the test dir"
assert_nothing_outside_spool

check "a good file still stores fine"
storescu_send "$T/out/good.log" MODALITY1 "$SRC" || true
sender_results storescu "$T/out/good.log" "$SRC" > "$T/out/good.tsv"
dicomtool verify --spool "$SPOOL" --results "$T/out/good.tsv" --exact || fail "good file not stored as sent"
stop_triaged

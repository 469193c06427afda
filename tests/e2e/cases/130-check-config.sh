# 130-check-config: `triaged -c FILE --check-config`.
#
# Expected: a good file -> exit 0, no error lines, nothing started or
#           created; a file with exactly 3 errors (an AE title over 16
#           characters, a port out of range, a non-numeric min_free_mb) ->
#           exit 1 and exactly 3 lines "FILE:LINE: [section] key: why" with
#           the right line numbers, sections and keys; an exec backend whose
#           program is missing -> exit 1, "FILE: [backend NAME]: ...program".
. "$(dirname "$0")/../lib.sh"
require_binaries
receive_only

step "a good file"
write_config
rc=0
"$TRIAGED" -c "$CONF" --check-config > "$T/out/good.out" 2>&1 || rc=$?
sed 's/^/    | /' "$T/out/good.out"
[ "$rc" = 0 ] || fail "--check-config on a good file exited $rc"
if grep -qE '^[^ ]+:[0-9]+: \[' "$T/out/good.out"; then fail "error lines for a good file"; fi
ok "exit 0, no error lines"
check "--check-config starts nothing: the port stays closed"
echo_ok && fail "something answers C-ECHO on port $PORT after --check-config"
ok "port $PORT closed"
[ ! -e "$SPOOL/studies" ] && [ ! -e "$DB" ] \
	|| note "--check-config created $(ls -d "$SPOOL/studies" "$DB" 2>/dev/null | tr '\n' ' ')"

step "a file with 3 errors"
BAD=$T/bad.conf
cat > "$BAD" <<-CONF
	; three errors: lines 3, 4 and 10
	[server]
	ae_title = THIS_AE_TITLE_IS_TOO_LONG
	port = 70000
	bind = 127.0.0.1
	max_associations = 4

	[storage]
	spool_dir = $T/var/spool
	min_free_mb = plenty
	database = $T/var/triaged.db

	[study]
	stable_seconds = 2
CONF
nl -ba "$BAD" | sed 's/^/    /'
rc=0
"$TRIAGED" -c "$BAD" --check-config > "$T/out/bad.out" 2>&1 || rc=$?
sed 's/^/    | /' "$T/out/bad.out"
check "exit status 1"
[ "$rc" = 1 ] || fail "--check-config on a file with 3 errors exited $rc, expected 1"
ok "exit 1"
check "exactly 3 lines 'FILE:LINE: [section] key: why', at lines 3, 4, 10"
mapfile -t ERRS < <(grep -E "^$(printf '%s' "$BAD" | sed 's/[.[\*^$/]/\\&/g'):[0-9]+: \[[a-z]+\] [a-z_]+: .+" "$T/out/bad.out")
[ "${#ERRS[@]}" = 3 ] || fail "expected 3 error lines of the form $BAD:LINE: [section] key: why, got ${#ERRS[@]}"
for want in "3: [server] ae_title: " "4: [server] port: " "10: [storage] min_free_mb: "; do
	printf '%s\n' "${ERRS[@]}" | grep -qF "$BAD:$want" || fail "no error line starting '$BAD:$want'"
	ok "$BAD:$want..."
done
other=$(grep -vE "^$(printf '%s' "$BAD" | sed 's/[.[\*^$/]/\\&/g'):[0-9]+: \[" "$T/out/bad.out" | grep -v '^$' || true)
[ -z "$other" ] || note "other output besides the 3 error lines: $other"

step "a missing file"
rc=0
"$TRIAGED" -c "$T/nonexistent.conf" --check-config > "$T/out/missing.out" 2>&1 || rc=$?
sed 's/^/    | /' "$T/out/missing.out"
[ "$rc" = 1 ] || fail "--check-config on a missing file exited $rc, expected 1"
grep -q "nonexistent.conf" "$T/out/missing.out" || fail "the message does not name the missing file"
ok "exit 1, names the file"

step "an exec backend whose program is not there"
MISSING=$T/missing-backend.conf
cat > "$MISSING" <<CONF
[storage]
spool_dir = $T/var/spool
database = $T/var/triaged.db

[route fracture]
modality = CR
backend = fracture-ai

[backend fracture-ai]
type = exec
command = /opt/vendor/bin/fracture-ai --model v3
CONF
rc=0
"$TRIAGED" -c "$MISSING" --check-config > "$T/out/missing-backend.out" 2>&1 || rc=$?
sed 's/^/    | /' "$T/out/missing-backend.out"
[ "$rc" = 1 ] || fail "--check-config with a missing exec program exited $rc, expected 1"
grep -q "^$MISSING: \[backend fracture-ai\]: .*/opt/vendor/bin/fracture-ai" "$T/out/missing-backend.out" \
	|| fail "the message does not name the file, the backend and the program"
ok "exit 1: $(head -n 1 "$T/out/missing-backend.out")"

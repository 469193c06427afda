# 830-systemd-unit: the installed unit, sysusers and tmpfiles files, checked
# with systemd's own tools (no running systemd needed).
#
# Install:  DESTDIR=$T/root cmake --install $TRIAGED_BUILD_DIR --prefix /usr
# Expected:
#   - `systemd-analyze verify` of the installed unit, in a copy whose only
#     change is that ExecStart names the DESTDIR binary and config (verify
#     checks that the command exists; with --root= it would also need the
#     whole systemd tree there), with MANPATH at the installed man pages (so
#     Documentation=man:... is checked against them): exit 0 and not one
#     line of output (an unknown key is only a warning). Skipped (77) only
#     when verify fails on a trivial unit too, i.e. cannot run here;
#   - `systemd-analyze security --offline=true`: overall exposure <= 2.0;
#   - the unit, the sysusers file, the tmpfiles file and the conf agree:
#     Type=notify with a watchdog, User=/Group= the sysusers user,
#     StateDirectory= /var/lib/triaged where the conf's spool_dir and
#     database are, made 0750 by tmpfiles, never aged (no cleanup of the
#     spool);
#   - `systemd-sysusers --dry-run --root` would create user and group
#     triaged; for real in a copy of the root: triaged with home
#     /var/lib/triaged and a nologin shell; then `systemd-tmpfiles --root
#     --create` makes /var/lib/triaged and spool/ 0750 triaged:triaged, and
#     a second run changes nothing.
. "$(dirname "$0")/../lib.sh"
require_cmd cmake systemd-analyze systemd-sysusers systemd-tmpfiles man

ROOT=$T/root
BUILD=$TRIAGED_BUILD_DIR
step "DESTDIR=$ROOT cmake --install $BUILD --prefix /usr"
DESTDIR=$ROOT cmake --install "$BUILD" --prefix /usr > "$T/out/install.log" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/install.log" >&3; fail "cmake --install failed"; }
UNIT=$ROOT/lib/systemd/system/triaged.service
SYSUSERS=$ROOT/usr/lib/sysusers.d/triaged.conf
TMPFILES=$ROOT/usr/lib/tmpfiles.d/triaged.conf
CONFFILE=$ROOT/etc/triaged/triaged.conf
for f in "$UNIT" "$SYSUSERS" "$TMPFILES" "$CONFFILE"; do [ -f "$f" ] || fail "not installed: $f"; done
ok "unit, sysusers, tmpfiles and conf installed"

# unit_values KEY: every value of KEY= in the installed unit, one a line
unit_values() { sed -n "s/^$1=//p" "$UNIT"; }

step "systemd-analyze verify"
mkdir -p "$T/probe" "$T/verify"
printf '[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=/bin/true\n' > "$T/probe/e2e-probe.service"
if ! (cd "$T/probe" && systemd-analyze verify --man=no "$T/probe/e2e-probe.service") > "$T/out/probe.log" 2>&1; then
	skip "systemd-analyze verify fails on a trivial unit here: $(head -c 300 "$T/out/probe.log")"
fi
exec_start=$(unit_values ExecStart)
[ "$(unit_values ExecStart | wc -l)" = 1 ] || fail "not one ExecStart= line: $exec_start"
read -r -a argv <<< "$exec_start"
[ "${argv[0]}" = /usr/sbin/triaged ] && [ -x "$ROOT${argv[0]}" ] || fail "ExecStart=$exec_start: ${argv[0]} is not the installed binary"
conf=${argv[2]:-}
[ "${argv[1]:-}" = -c ] && [ -f "$ROOT$conf" ] || fail "ExecStart=$exec_start: -c names no installed config"
VUNIT=$T/verify/triaged.service
sed "s|^ExecStart=${argv[0]} -c $conf|ExecStart=$ROOT${argv[0]} -c $ROOT$conf|" "$UNIT" > "$VUNIT"
diff "$UNIT" "$VUNIT" > "$T/out/unit.diff" || true
[ "$(grep -c '^[<>]' "$T/out/unit.diff")" = 2 ] && grep -q "^> ExecStart=$ROOT/usr/sbin/triaged " "$T/out/unit.diff" \
	|| fail "the copy for verify differs in more than ExecStart: $(cat "$T/out/unit.diff")"
rc=0
(cd "$T/verify" && MANPATH=$ROOT/usr/share/man systemd-analyze verify --man=yes "$VUNIT") > "$T/out/verify.log" 2>&1 || rc=$?
sed 's/^/    | /' "$T/out/verify.log" >&3
[ "$rc" = 0 ] || fail "systemd-analyze verify exited $rc"
[ ! -s "$T/out/verify.log" ] || fail "systemd-analyze verify printed warnings"
ok "verify: exit 0, no output (ExecStart, ExecReload, dependencies, Documentation man pages)"

step "systemd-analyze security --offline=true"
rc=0
(cd "$T/verify" && systemd-analyze security --offline=true --no-pager "$UNIT") > "$T/out/security.log" 2>&1 || rc=$?
grep '✗' "$T/out/security.log" | sed 's/^/    /' | cut -c1-150 >&3 || true
line=$(grep 'Overall exposure level' "$T/out/security.log" || true)
[ -n "$line" ] || { sed 's/^/    | /' "$T/out/security.log" >&3; fail "systemd-analyze security exited $rc and printed no overall exposure"; }
exposure=$(sed -n 's/.*: \([0-9][0-9]*\.[0-9]\) .*/\1/p' <<< "$line")
[ -n "$exposure" ] || fail "cannot read the exposure in: $line"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "overall exposure $exposure > 2.0 ($line)"
ok "$line (<= 2.0)"

step "unit, sysusers, tmpfiles and conf agree"
[ "$(unit_values Type)" = notify ] || fail "Type=$(unit_values Type), expected notify (sd_notify READY)"
[ -n "$(unit_values WatchdogSec)" ] || fail "no WatchdogSec="
user=$(unit_values User); group=$(unit_values Group)
[ -n "$user" ] && [ "$user" != root ] || fail "User=$user: the service must run as its own user"
grep -q -E "^u +$user +" "$SYSUSERS" || fail "sysusers does not create User=$user: $(grep -v '^#' "$SYSUSERS")"
[ "$group" = "$user" ] || fail "Group=$group is not the sysusers group $user"
state=$(unit_values StateDirectory)
[ "$state" = triaged ] || fail "StateDirectory=$state, expected triaged"
for key in spool_dir database; do
	v=$(sed -n "s/^$key *= *\([^ ;]*\).*/\1/p" "$CONFFILE")
	[[ "$v" == /var/lib/$state/* ]] || fail "the conf's $key = $v is not under StateDirectory /var/lib/$state (ProtectSystem=strict makes the rest read-only)"
done
grep -q -E "^u +$user +.* /var/lib/$state\$" "$SYSUSERS" || note "the user's home is not /var/lib/$state"
while read -r type path mode owner grp age rest; do
	case $type in ''|\#*) continue ;; esac
	[[ "$path" == /var/lib/$state* ]] || fail "tmpfiles touches $path, outside /var/lib/$state"
	[ "$mode" = 0750 ] && [ "$owner" = "$user" ] && [ "$grp" = "$user" ] || fail "tmpfiles: $type $path $mode $owner $grp"
	[ -z "$age" ] || [ "$age" = - ] || fail "tmpfiles ages $path ($age): systemd-tmpfiles --clean would delete spooled images"
done < "$TMPFILES"
ok "Type=notify, WatchdogSec=$(unit_values WatchdogSec), User=Group=$user (sysusers), StateDirectory=/var/lib/$state holds spool and database, tmpfiles 0750 and never aged"

step "systemd-sysusers --dry-run --root"
systemd-sysusers --dry-run --root="$ROOT" > "$T/out/sysusers-dry.log" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/sysusers-dry.log" >&3; fail "systemd-sysusers --dry-run failed"; }
sed 's/^/    | /' "$T/out/sysusers-dry.log" >&3
grep -q "Creating group '$user'" "$T/out/sysusers-dry.log" && grep -q "Creating user '$user'" "$T/out/sysusers-dry.log" \
	|| fail "sysusers --dry-run would not create user and group $user"
[ ! -e "$ROOT/etc/passwd" ] || fail "--dry-run wrote $ROOT/etc/passwd"
ok "would create group and user $user"

step "systemd-sysusers and systemd-tmpfiles --create in a copy of the root"
R2=$T/root2
cp -a "$ROOT" "$R2"
systemd-sysusers --root="$R2" > "$T/out/sysusers.log" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/sysusers.log" >&3; fail "systemd-sysusers --root failed"; }
pw=$(grep "^$user:" "$R2/etc/passwd" || true)
[ -n "$pw" ] || fail "no $user in $R2/etc/passwd"
IFS=: read -r _ _ uid gid _ home shell <<< "$pw"
[ "$home" = "/var/lib/$state" ] || fail "home of $user is $home"
[[ "$shell" == */nologin ]] || fail "shell of $user is $shell"
[ "$uid" -lt 1000 ] && [ "$uid" -gt 0 ] || fail "$user has uid $uid, not a system uid"
ok "$pw"
systemd-tmpfiles --root="$R2" --create > "$T/out/tmpfiles.log" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/tmpfiles.log" >&3; fail "systemd-tmpfiles --create failed"; }
[ ! -s "$T/out/tmpfiles.log" ] || sed 's/^/    | /' "$T/out/tmpfiles.log" >&3
for d in "/var/lib/$state" "/var/lib/$state/spool"; do
	[ -d "$R2$d" ] || fail "tmpfiles did not create $d"
	[ "$(stat -c '%a %u %g' "$R2$d")" = "750 $uid $gid" ] || fail "$d: $(stat -c '%a %u %g' "$R2$d"), expected 750 $uid $gid"
done
touch "$R2/var/lib/$state/spool/keep"
systemd-tmpfiles --root="$R2" --create --clean > "$T/out/tmpfiles2.log" 2>&1 || fail "second systemd-tmpfiles run failed: $(cat "$T/out/tmpfiles2.log")"
[ -f "$R2/var/lib/$state/spool/keep" ] || fail "systemd-tmpfiles --clean removed a spooled file"
ok "/var/lib/$state and spool/ 0750 $uid:$gid; a second run (with --clean) keeps the spool"

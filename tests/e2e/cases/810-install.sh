# 810-install: `cmake --install --prefix /usr` into a DESTDIR, then the
# installed daemon, with the installed config, delivers to a PACS.
#
# Install:  DESTDIR=$T/root cmake --install $TRIAGED_BUILD_DIR --prefix /usr
# Expected: exactly the files of the Debian layout (nothing under /usr/etc
#           or /usr/local), each with its mode: triaged and triagectl in
#           /usr/sbin 0755, /etc/triaged/triaged.conf 0644, the unit in
#           /lib/systemd/system, sysusers and tmpfiles files in /usr/lib,
#           man pages gzipped (-n: no name, no time stamp) in man5/man8,
#           the example backend 0755 in /usr/lib/triaged/backends (where the
#           conf's commented example points), README, docs, copyright and
#           changelog.gz in /usr/share/doc/triaged; each file is the source (the man pages
#           once unzipped); the unit's ExecStart names the installed
#           binary and config; `triaged --check-config` of the untouched
#           installed conf passes.
# Run:      the INSTALLED triaged and triagectl with the INSTALLED conf, in
#           which sed changes only paths and ports: spool_dir and database
#           under $T, port and bind 127.0.0.1, min_free_mb 0, stable_seconds
#           2, and its commented [destination pacs] uncommented, pointing at
#           DCMTK storescp (the PACS) on a free port.
# Modality: storescu sends a generated CR study (route fracture, backend
#           reference).
# Expected: the PACS receives every original (same SOP Instance UIDs) and
#           every result of the job: one SR and secondary captures;
#           `triagectl status --json` shows the job done, every dispatch
#           delivered, and `list --json` the job done on route fracture.
. "$(dirname "$0")/../lib.sh"
require_cmd cmake storescp dcmdump gzip

ROOT=$T/root
BUILD=$TRIAGED_BUILD_DIR
SRC=$TRIAGED_SOURCE_DIR
# the man page sources the build used (docs/man unless configured otherwise)
MANSRC=$(sed -n 's/^TRIAGED_MAN_SOURCE_DIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
[ -n "$MANSRC" ] || fail "$BUILD/CMakeCache.txt has no TRIAGED_MAN_SOURCE_DIR (cmake/install.cmake not included?)"

step "DESTDIR=$ROOT cmake --install $BUILD --prefix /usr"
DESTDIR=$ROOT cmake --install "$BUILD" --prefix /usr > "$T/out/install.log" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/install.log" >&3; fail "cmake --install failed"; }
ok "$(grep -c 'Installing' "$T/out/install.log") files installed"

# path (below $ROOT), mode, source it must equal ("" = none; .gz: unzipped)
EXPECTED="usr/sbin/triaged 755 -
usr/sbin/triagectl 755 -
etc/triaged/triaged.conf 644 $SRC/conf/triaged.conf
lib/systemd/system/triaged.service 644 $SRC/systemd/triaged.service
usr/lib/sysusers.d/triaged.conf 644 $SRC/systemd/triaged.sysusers
usr/lib/tmpfiles.d/triaged.conf 644 $SRC/systemd/triaged.tmpfiles
usr/lib/triaged/backends/example-backend 755 $SRC/src/backends/example-backend
usr/share/man/man8/triaged.8.gz 644 $MANSRC/triaged.8
usr/share/man/man8/triagectl.8.gz 644 $MANSRC/triagectl.8
usr/share/man/man5/triaged.conf.5.gz 644 $MANSRC/triaged.conf.5
usr/share/doc/triaged/README.md 644 $SRC/README.md
usr/share/doc/triaged/benchmarks.md 644 $SRC/docs/benchmarks.md
usr/share/doc/triaged/copyright 644 $BUILD/doc/copyright
usr/share/doc/triaged/changelog.gz 644 $BUILD/doc/changelog"
# written by others: installed when it exists at configure time
if [ -f "$SRC/docs/conformance.md" ] && grep -q 'conformance.md' "$T/out/install.log"; then
	EXPECTED+=$'\n'"usr/share/doc/triaged/conformance.md 644 $SRC/docs/conformance.md"
elif [ -f "$SRC/docs/conformance.md" ]; then
	note "docs/conformance.md exists but was not installed: reconfigure $BUILD"
fi

step "every expected file, its mode and its content"
while read -r path mode src; do
	f=$ROOT/$path
	[ -f "$f" ] || fail "not installed: /$path"
	m=$(stat -c %a "$f")
	[ "$m" = "$mode" ] || fail "/$path has mode $m, expected $mode"
	case $path in
	*.gz)
		gzip -t "$f" || fail "/$path is not a valid gzip file"
		[ "$(od -An -tx1 -j3 -N5 "$f" | tr -d ' ')" = 0000000000 ] \
			|| fail "/$path carries a file name or a time stamp (gzip -n expected)"
		gzip -dc "$f" | cmp -s - "$src" || fail "/$path does not unzip to $src"
		;;
	*)
		[ "$src" = - ] || cmp -s "$f" "$src" || fail "/$path differs from $src"
		;;
	esac
	log "  /$path  $m"
done <<< "$EXPECTED"
ok "all $(wc -l <<< "$EXPECTED") files, modes and contents as expected"

check "nothing else is installed (no /usr/etc, no /usr/local)"
find "$ROOT" -type f -printf '%P\n' | sort > "$T/out/found"
awk '{print $1}' <<< "$EXPECTED" | sort > "$T/out/want"
extra=$(comm -23 "$T/out/found" "$T/out/want")
[ -z "$extra" ] || fail "unexpected files installed: $(echo $extra)"
ok "exactly the expected files"

check "the unit's ExecStart names the installed binary and config"
exec_start=$(sed -n 's/^ExecStart=//p' "$ROOT/lib/systemd/system/triaged.service")
read -r -a argv <<< "$exec_start"
[ "${argv[0]}" = /usr/sbin/triaged ] || fail "ExecStart runs ${argv[0]}, not /usr/sbin/triaged"
[ "${argv[1]:-}" = -c ] && [ "${argv[2]:-}" = /etc/triaged/triaged.conf ] \
	|| fail "ExecStart=$exec_start does not name -c /etc/triaged/triaged.conf"
[ -x "$ROOT${argv[0]}" ] && [ -f "$ROOT${argv[2]}" ] || fail "ExecStart=$exec_start: not installed"
ok "ExecStart=$exec_start"

check "the conf's commented exec backend example names the installed example backend"
cmd=$(sed -n 's/^# *command = \([^ ]*example-backend\).*/\1/p' "$ROOT/etc/triaged/triaged.conf" | head -n 1)
[ -n "$cmd" ] || fail "no example-backend command in the installed conf"
[ -x "$ROOT$cmd" ] || fail "the conf's example command $cmd is not installed"
ok "$cmd"

check "the installed conf's paths are the production ones"
grep -q '^spool_dir = /var/lib/triaged/spool ' "$ROOT/etc/triaged/triaged.conf" \
	&& grep -q '^database = /var/lib/triaged/triaged.db ' "$ROOT/etc/triaged/triaged.conf" \
	|| fail "spool_dir/database are not under /var/lib/triaged: $(grep -E '^(spool_dir|database)' "$ROOT/etc/triaged/triaged.conf")"
grep -q '^d /var/lib/triaged/spool ' "$ROOT/usr/lib/tmpfiles.d/triaged.conf" \
	|| fail "tmpfiles.d does not create /var/lib/triaged/spool"
ok "spool and database under /var/lib/triaged (made by tmpfiles.d and StateDirectory=)"

TRIAGED=$ROOT/usr/sbin/triaged
TRIAGECTL=$ROOT/usr/sbin/triagectl
CONF=$ROOT/etc/triaged/triaged.conf

step "installed triaged --check-config of the untouched installed conf"
"$TRIAGED" -c "$CONF" --check-config > "$T/out/check.txt" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/check.txt" >&3; fail "--check-config of the installed conf failed"; }
ok "$(cat "$T/out/check.txt")"

step "the PACS: DCMTK storescp"
PACS_DIR=$T/pacs
PACS_PORT=$(free_port)
mkdir -p "$PACS_DIR"
storescp -v -aet STORESCP +B -od "$PACS_DIR" "$PACS_PORT" > "$T/out/storescp.log" 2>&1 3>&- &
track_pid $!
wait_for 10 "storescp to answer" echoscu -to 2 -aet PROBE -aec STORESCP 127.0.0.1 "$PACS_PORT" \
	|| fail "storescp did not start: $(cat "$T/out/storescp.log")"
ok "storescp STORESCP on 127.0.0.1:$PACS_PORT"

step "the installed conf, paths and ports redirected by sed"
PORT=$(free_port)
AE=TRIAGED
SPOOL=$T/var/spool
DB=$T/var/triaged.db
sed -i \
	-e "s|^port = 11112 |port = $PORT |" \
	-e "s|^bind = 0.0.0.0 |bind = 127.0.0.1 |" \
	-e "s|^spool_dir = /var/lib/triaged/spool |spool_dir = $SPOOL |" \
	-e "s|^database = /var/lib/triaged/triaged.db |database = $DB |" \
	-e "s|^min_free_mb = 1024 |min_free_mb = 0 |" \
	-e "s|^stable_seconds = 20 |stable_seconds = 2 |" \
	-e '/^# \[destination pacs\]/,/^$/s/^# //' \
	"$CONF"
sed -i -e '/^\[destination pacs\]/,/^$/{' \
	-e "s|^port = 4242 |port = $PACS_PORT |" \
	-e "s|^ae_title = PACS |ae_title = STORESCP |" \
	-e "s|^retry_base_s = 10 |retry_base_s = 1 |" -e '}' "$CONF"
diff -u "$SRC/conf/triaged.conf" "$CONF" > "$T/out/conf.diff" || true
grep '^[-+][^-+]' "$T/out/conf.diff" | sed 's/^/    /' >&3
# every edit above must have matched a line of the shipped file
for want in "^port = $PORT " "^bind = 127.0.0.1 " "^spool_dir = $SPOOL " "^database = $DB " "^min_free_mb = 0 " \
	"^stable_seconds = 2 " "^\[destination pacs\]" "^port = $PACS_PORT " "^ae_title = STORESCP " "^retry_base_s = 1 "; do
	grep -q "$want" "$CONF" || fail "the installed conf has no line the sed edit expected ($want)"
done
"$TRIAGED" -c "$CONF" --check-config > "$T/out/check2.txt" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/check2.txt" >&3; fail "--check-config of the redirected conf failed"; }
ok "$(cat "$T/out/check2.txt")"

step "installed triaged runs; a CR study arrives"
start_triaged
"$TRIAGECTL" -c "$CONF" echo pacs > "$T/out/echo.txt" 2>&1 \
	|| fail "installed triagectl echo pacs failed: $(cat "$T/out/echo.txt")"
ok "triagectl echo pacs: $(cat "$T/out/echo.txt")"
make_studies CR --kind cr-chest --count 1 --size 512x416 --seed 8101
mapfile -t FILES < <(find "$CR" -name '*.dcm' | sort)
study=$(dcm_get "${FILES[0]}" StudyInstanceUID)
storescu_send "$T/out/send.log" MODALITY1 "${FILES[@]}" || fail "storescu failed: $(tail -n 5 "$T/out/send.log")"
ok "${#FILES[@]} files sent, study $study"

# settled: the job done, and a delivered dispatch for every instance and
# every result of the study (results are queued for dispatch a moment
# after they are written), nothing left to do
settled() {
	ctl_json "$T/out/status.json" status --json
	[ "$(json "$T/out/status.json" "d['jobs'].get('done', 0)")" -ge 1 ] || return 1
	[ "$(json "$T/out/status.json" "d['studies']['receiving'] + d['jobs'].get('pending', 0) + d['jobs'].get('running', 0) + d['dispatches'].get('pending', 0) + d['dispatches'].get('sending', 0)")" = 0 ] || return 1
	ctl_json "$T/out/show.json" show "$study" --json
	[ "$(json "$T/out/show.json" "len(d['results']) > 0 and len(d['dispatches']) == len(d['instances']) + len(d['results']) and all(x['state'] == 'delivered' for x in d['dispatches'])")" = true ]
}
wait_for 120 "the job done and every dispatch delivered" settled \
	|| { sed 's/^/    | /' "$T/out/status.json" "$T/out/show.json" >&3; fail "not settled"; }

step "what the PACS holds"
ctl_json "$T/out/show.json" show "$study" --json
json "$T/out/show.json" "'\\n'.join(i['sop_instance_uid'] for i in d['instances'])" | sed '/^$/d' | sort > "$T/out/want-orig"
json "$T/out/show.json" "'\\n'.join(r['sop_instance_uid'] for r in d['results'])" | sed '/^$/d' | sort > "$T/out/want-res"
[ "$(wc -l < "$T/out/want-orig")" = "${#FILES[@]}" ] || fail "triagectl show lists $(wc -l < "$T/out/want-orig") instances, ${#FILES[@]} were sent"
: > "$T/out/pacs.tsv"
# top_level FILE TAG: the value of a top-level (not nested) attribute, as
# dcmdump prints it (UIDs: the name of a known one)
top_level() { dcmdump -q +p +P "$2" "$1" | sed -n "s/^($2) [A-Z][A-Z] [=[]\([^] ]*\).*/\1/p" | head -n 1; }
for f in "$PACS_DIR"/*; do
	[ -f "$f" ] || continue
	printf '%s\t%s\t%s\n' "$(top_level "$f" 0008,0018)" "$(top_level "$f" 0008,0016)" \
		"$(top_level "$f" 0020,000d)" >> "$T/out/pacs.tsv"
done
sort -o "$T/out/pacs.tsv" "$T/out/pacs.tsv"
cut -f2 "$T/out/pacs.tsv" | sort | uniq -c | sed 's/^/    /' >&3
total=$(( $(wc -l < "$T/out/want-orig") + $(wc -l < "$T/out/want-res") ))
[ "$(wc -l < "$T/out/pacs.tsv")" = "$total" ] \
	|| fail "the PACS holds $(wc -l < "$T/out/pacs.tsv") files, expected $total (originals + results)"
missing=$(cut -f1 "$T/out/pacs.tsv" | sort | comm -13 - <(sort "$T/out/want-orig" "$T/out/want-res"))
[ -z "$missing" ] || fail "not in the PACS: $missing"
awk -F'\t' -v s="$study" '$3 != s {bad=1} END {exit bad}' "$T/out/pacs.tsv" || fail "a file in the PACS is not in study $study"
n_sr=$(grep -c $'\t[A-Za-z]*SRStorage\t' "$T/out/pacs.tsv" || true)
n_sc=$(grep -c $'\tSecondaryCaptureImageStorage\t' "$T/out/pacs.tsv" || true)
[ "$n_sr" = 1 ] || fail "$n_sr SR objects in the PACS, expected 1"
[ "$n_sc" -ge 1 ] || fail "no secondary capture in the PACS"
n_orig=$(cut -f1 "$T/out/pacs.tsv" | sort | comm -12 - "$T/out/want-orig" | wc -l)
[ "$n_orig" = "${#FILES[@]}" ] || fail "$n_orig originals in the PACS, ${#FILES[@]} sent"
ok "PACS: ${#FILES[@]} originals, $n_sr SR, $n_sc secondary capture(s), all in study $study"

step "installed triagectl status --json and list --json"
ctl_json "$T/out/status.json" status --json
[ "$(json "$T/out/status.json" "d['jobs'].get('done', 0)")" = 1 ] || fail "status: jobs $(json "$T/out/status.json" "d['jobs']")"
[ "$(json "$T/out/status.json" "d['dispatches'].get('delivered', 0)")" = "$total" ] \
	|| fail "status: dispatches $(json "$T/out/status.json" "d['dispatches']"), expected $total delivered"
[ "$(json "$T/out/status.json" "sum(v for k, v in d['dispatches'].items() if k != 'delivered')")" = 0 ] \
	|| fail "status: dispatches not delivered: $(json "$T/out/status.json" "d['dispatches']")"
ok "status: jobs $(json "$T/out/status.json" "d['jobs']"), dispatches $(json "$T/out/status.json" "d['dispatches']")"
ctl_json "$T/out/list.json" list --json
[ "$(json "$T/out/list.json" "len(d['jobs'])")" = 1 ] || fail "list: $(json "$T/out/list.json" "d['jobs']")"
[ "$(json "$T/out/list.json" "d['jobs'][0]['state'] + ' ' + d['jobs'][0]['route'] + ' ' + d['jobs'][0]['study_uid']")" = "done fracture $study" ] \
	|| fail "list: $(json "$T/out/list.json" "d['jobs'][0]")"
[ "$(json "$T/out/show.json" "sorted(set(x['state'] for x in d['dispatches']))")" = '["delivered"]' ] \
	|| fail "show: dispatch states $(json "$T/out/show.json" "[x['state'] for x in d['dispatches']]")"
ok "list: job $(json "$T/out/list.json" "d['jobs'][0]['id']") done on route fracture, outcome $(json "$T/out/list.json" "d['jobs'][0]['outcome']")"
stop_triaged

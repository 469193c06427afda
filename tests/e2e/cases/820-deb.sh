# 820-deb: the Debian package made by CPack, then installed with dpkg into
# a temporary root, removed and purged.
#
# Build:    cpack -G DEB -B $T/pkg --config $TRIAGED_BUILD_DIR/CPackConfig.cmake
# Expected: one triaged_<version>_<arch>.deb (Debian file name); dpkg-deb -c
#           lists the binaries, the conf, the unit in /lib/systemd/system,
#           sysusers and tmpfiles files, gzipped man pages, the example
#           backend, copyright and changelog.gz, all root-owned, with their
#           modes; control: Package triaged, the project's version, Section
#           net, Priority optional, a Maintainer, Depends on every runtime
#           library (dpkg-shlibdeps: libdcmtk17, libsqlite3-0, libcurl,
#           libcjson, libinih, libsystemd0, libopenjp2, libcairo2) and on
#           fonts-dejavu-core and systemd; conffiles lists
#           /etc/triaged/triaged.conf (every file under /etc); postinst,
#           prerm and postrm are valid sh, never enable or start the
#           service, never delete /var/lib/triaged. lintian, when
#           installed, reports no error (its warnings are printed).
# Install:  dpkg --root=$T/dpkgroot --force-script-chrootless (the scripts
#           see DPKG_ROOT and act inside it) -i, -r, then --purge.
# Expected: after -i the system user triaged exists (home /var/lib/triaged,
#           nologin), /var/lib/triaged and its spool/ are 0750 and owned by
#           it, the unit is not enabled, postinst says so; after -r the
#           binaries are gone, the edited conf and a spooled file stay;
#           after --purge the conf is gone, /var/lib/triaged and the spooled
#           file are still there, and postrm says it kept them.
. "$(dirname "$0")/../lib.sh"
require_cmd cpack dpkg-deb dpkg-shlibdeps dpkg

BUILD=$TRIAGED_BUILD_DIR
[ -f "$BUILD/CPackConfig.cmake" ] || fail "no $BUILD/CPackConfig.cmake (cmake/install.cmake not included?)"
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
project_version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
[ -n "$version" ] && [ "$version" = "$project_version" ] \
	|| fail "CPack version '$version' is not the project's version '$project_version'"
arch=$(dpkg --print-architecture)

step "cpack -G DEB -B $T/pkg --config $BUILD/CPackConfig.cmake"
t0=$(date +%s%N)
cpack -G DEB -B "$T/pkg" --config "$BUILD/CPackConfig.cmake" > "$T/out/cpack.log" 2>&1 \
	|| { sed 's/^/    | /' "$T/out/cpack.log" >&3; fail "cpack failed"; }
mapfile -t debs < <(find "$T/pkg" -maxdepth 1 -name '*.deb')
[ "${#debs[@]}" = 1 ] || fail "expected one .deb in $T/pkg, found: ${debs[*]:-none}"
DEB=${debs[0]}
[ "$(basename "$DEB")" = "triaged_${version}_${arch}.deb" ] \
	|| fail "package file $(basename "$DEB"), expected triaged_${version}_${arch}.deb"
ok "$(basename "$DEB"), $(stat -c %s "$DEB") bytes, in $(elapsed_since "$t0") s"

step "dpkg-deb -c: contents, owners, modes"
dpkg-deb -c "$DEB" > "$T/out/contents"
# mode, path
while read -r mode path; do
	line=$(awk -v p="./$path" '$6 == p' "$T/out/contents")
	[ -n "$line" ] || fail "not in the package: /$path"
	read -r m owner _ <<< "$line"
	[ "$m" = "$mode" ] || fail "/$path has mode $m, expected $mode"
	[ "$owner" = root/root ] || fail "/$path is owned by $owner"
	log "  $m $owner /$path"
done <<-EOF
	-rwxr-xr-x usr/sbin/triaged
	-rwxr-xr-x usr/sbin/triagectl
	-rw-r--r-- etc/triaged/triaged.conf
	-rw-r--r-- lib/systemd/system/triaged.service
	-rw-r--r-- usr/lib/sysusers.d/triaged.conf
	-rw-r--r-- usr/lib/tmpfiles.d/triaged.conf
	-rw-r--r-- usr/share/man/man8/triaged.8.gz
	-rw-r--r-- usr/share/man/man8/triagectl.8.gz
	-rw-r--r-- usr/share/man/man5/triaged.conf.5.gz
	-rwxr-xr-x usr/lib/triaged/backends/example-backend
	-rw-r--r-- usr/share/doc/triaged/README.md
	-rw-r--r-- usr/share/doc/triaged/copyright
	-rw-r--r-- usr/share/doc/triaged/changelog.gz
EOF
bad=$(awk '$6 !~ /^\.\/(etc\/|lib\/systemd\/system\/|usr\/(sbin|lib|share)\/)/ && $6 != "./" && $6 != "./etc/" && $6 != "./lib/" && $6 != "./lib/systemd/" && $6 != "./usr/" {print $6}' "$T/out/contents")
[ -z "$bad" ] || fail "paths outside the Debian layout: $(echo $bad)"
! grep -q -e '\./usr/local' -e '\./usr/etc' -e '_CPack_Packages' "$T/out/contents" || fail "staging or /usr/local paths in the package"
ok "$(grep -c -v '/$' "$T/out/contents") files, all in place"

step "dpkg-deb -f: control fields"
dpkg-deb -f "$DEB" > "$T/out/control"
sed 's/^/    /' "$T/out/control" >&3
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = triaged ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), expected $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = net ] || fail "Section: $(field Section)"
[ "$(field Priority)" = optional ] || fail "Priority: $(field Priority)"
[[ "$(field Maintainer)" =~ ^[^\<]+\ \<[^@\>]+@[^\>]+\>$ ]] || fail "Maintainer: '$(field Maintainer)' is not 'Name <address>'"
[ -n "$(field Description)" ] || fail "no Description"
depends=$(field Depends)
# each: a package name (regex) that must be one of the Depends items
for want in 'libdcmtk17' 'libsqlite3-0' 'libcurl[0-9a-z-]*' 'libcjson[0-9]+' 'libinih[0-9]+' 'libsystemd0' \
	'libopenjp2-[0-9]+' 'libcairo2' 'fonts-dejavu-core' 'systemd'; do
	tr ',|' '\n\n' <<< "$depends" | sed 's/^ *//; s/ .*//' | grep -E -q -x "$want" \
		|| fail "Depends lacks $want: $depends"
done
ok "Depends: $depends"

step "control archive: conffiles and maintainer scripts"
mkdir -p "$T/control"
dpkg-deb -e "$DEB" "$T/control"
[ -f "$T/control/conffiles" ] || fail "no conffiles"
grep -q -x /etc/triaged/triaged.conf "$T/control/conffiles" || fail "conffiles: $(cat "$T/control/conffiles")"
for f in $(awk '$6 ~ /^\.\/etc\/.*[^\/]$/ {print substr($6, 2)}' "$T/out/contents"); do
	grep -q -x "$f" "$T/control/conffiles" || fail "$f is under /etc but not a conffile"
done
ok "conffiles: $(echo $(cat "$T/control/conffiles"))"
for s in postinst prerm postrm; do
	[ -f "$T/control/$s" ] || fail "no $s"
	[ "$(stat -c %a "$T/control/$s")" = 755 ] || fail "$s has mode $(stat -c %a "$T/control/$s")"
	sh -n "$T/control/$s" || fail "$s is not valid sh"
	# commands only: comments and echo lines may name what an admin types
	grep -v -E '^\s*(#|echo )' "$T/control/$s" > "$T/out/$s.cmds"
	! grep -E -n 'systemctl[^|;]*(enable|start|restart)|deb-systemd-helper +enable|deb-systemd-invoke +(start|restart)' "$T/out/$s.cmds" \
		|| fail "$s enables or starts the service"
	! grep -E -n '\brm\b|find .*-delete|/var/lib/triaged' "$T/out/$s.cmds" | grep -v '\[ -d ' \
		|| fail "$s may delete files"
done
grep -q 'systemd-sysusers .*triaged.conf' "$T/control/postinst" || fail "postinst does not run systemd-sysusers triaged.conf"
grep -q 'systemd-tmpfiles .*--create triaged.conf' "$T/control/postinst" || fail "postinst does not run systemd-tmpfiles --create triaged.conf"
ok "postinst, prerm, postrm: sh, 0755, no enable/start, no deletion"

if command -v lintian >/dev/null 2>&1; then
	step "lintian"
	rc=0
	lintian --no-tag-display-limit -I "$DEB" > "$T/out/lintian.txt" 2> "$T/out/lintian.err" || rc=$?
	sed 's/^/    /' "$T/out/lintian.txt" >&3
	! grep -q '^E: ' "$T/out/lintian.txt" || fail "lintian reports errors"
	[ "$rc" = 0 ] || [ -s "$T/out/lintian.txt" ] || fail "lintian failed ($rc): $(cat "$T/out/lintian.err")"
	ok "lintian: no error ($(grep -c '^W: ' "$T/out/lintian.txt" || true) warning(s), $(grep -c '^I: ' "$T/out/lintian.txt" || true) info)"
else
	note "lintian is not installed: not run"
fi

step "dpkg --root=$T/dpkgroot -i (maintainer scripts with DPKG_ROOT)"
R=$T/dpkgroot
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
: > "$R/var/lib/dpkg/status"
# the dependencies are the host's; the scripts run outside a chroot, in $R
dpkg_root() {
	dpkg --root="$R" --force-script-chrootless --force-depends --force-confdef --force-confold \
		--log=/dev/null "$@" < /dev/null
}
dpkg_root -i "$DEB" > "$T/out/dpkg-i.log" 2>&1 || { sed 's/^/    | /' "$T/out/dpkg-i.log" >&3; fail "dpkg -i failed"; }
grep -v -E '^ |dependency problems|depends on' "$T/out/dpkg-i.log" | sed 's/^/    | /' >&3
[ -x "$R/usr/sbin/triaged" ] || fail "dpkg -i did not install /usr/sbin/triaged"
user=$(grep '^triaged:' "$R/etc/passwd" || true)
[ -n "$user" ] || fail "postinst created no triaged user in $R/etc/passwd"
IFS=: read -r _ _ uid gid _ home shell <<< "$user"
[ "$home" = /var/lib/triaged ] || fail "triaged's home is $home"
[[ "$shell" == */nologin ]] || fail "triaged's shell is $shell"
grep -q "^triaged:x:$gid:" "$R/etc/group" || fail "no group triaged with gid $gid"
for d in var/lib/triaged var/lib/triaged/spool; do
	[ -d "$R/$d" ] || fail "postinst did not create /$d"
	[ "$(stat -c '%a %u %g' "$R/$d")" = "750 $uid $gid" ] \
		|| fail "/$d: mode/owner $(stat -c '%a %u %g' "$R/$d"), expected 750 $uid $gid"
done
ok "user triaged ($uid:$gid, $home, $shell); /var/lib/triaged and spool/ 0750 triaged:triaged"
[ -z "$(find "$R/etc/systemd" -name 'triaged.service' 2>/dev/null)" ] \
	|| fail "the service was enabled: $(find "$R/etc/systemd" -name 'triaged.service')"
grep -q '^triaged: not enabled or started' "$T/out/dpkg-i.log" || fail "postinst does not say the service is not enabled"
ok "the service is not enabled, postinst says why"

step "dpkg -r, then --purge: the spool stays"
echo "; edited by the administrator" >> "$R/etc/triaged/triaged.conf"
mkdir -p "$R/var/lib/triaged/spool/studies/1.2.3"
echo spooled > "$R/var/lib/triaged/spool/studies/1.2.3/4.5.6.dcm"
echo db > "$R/var/lib/triaged/triaged.db"
dpkg_root -r triaged > "$T/out/dpkg-r.log" 2>&1 || { sed 's/^/    | /' "$T/out/dpkg-r.log" >&3; fail "dpkg -r failed"; }
[ ! -e "$R/usr/sbin/triaged" ] || fail "dpkg -r left /usr/sbin/triaged"
grep -q 'edited by the administrator' "$R/etc/triaged/triaged.conf" || fail "dpkg -r removed or replaced the edited conffile"
[ -f "$R/var/lib/triaged/spool/studies/1.2.3/4.5.6.dcm" ] || fail "dpkg -r removed the spool"
ok "removed: binaries gone; conf and spool kept"
dpkg_root --purge triaged > "$T/out/dpkg-purge.log" 2>&1 || { sed 's/^/    | /' "$T/out/dpkg-purge.log" >&3; fail "dpkg --purge failed"; }
sed 's/^/    | /' "$T/out/dpkg-purge.log" >&3
[ ! -e "$R/etc/triaged/triaged.conf" ] || fail "dpkg --purge left the conffile"
[ -f "$R/var/lib/triaged/spool/studies/1.2.3/4.5.6.dcm" ] && [ -f "$R/var/lib/triaged/triaged.db" ] \
	|| fail "dpkg --purge deleted the spool or the database"
grep -q '/var/lib/triaged .*was kept' "$T/out/dpkg-purge.log" || fail "postrm purge does not say /var/lib/triaged was kept"
ok "purged: conffile gone; /var/lib/triaged, the spooled file and the database kept"

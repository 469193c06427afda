# 840-sd-notify: what systemd hears from triaged under Type=notify with a
# watchdog: READY=1 with a STATUS of queue counts, STATUS updates, WATCHDOG=1
# keep-alives well within WatchdogSec, RELOADING=1 then READY=1 on SIGHUP,
# STOPPING=1 on SIGTERM.
#
# Setup:    a python AF_UNIX datagram socket stands in for systemd (the
#           protocol is one datagram per notification, sd_notify(3));
#           triaged runs with NOTIFY_SOCKET pointing at it and
#           WATCHDOG_USEC=4000000 (WatchdogSec=4s), as systemd sets them.
# Modality: storescu sends one CR study while the socket listens.
# Expected: the first datagram has READY=1 and a STATUS naming associations,
#           studies receiving, jobs pending/running/failed and dispatches
#           pending/sending/dead; a later STATUS counts the stored instances;
#           no gap between keep-alives reaches the 4 s watchdog; SIGHUP gives
#           RELOADING=1 then READY=1; SIGTERM gives STOPPING=1 and exit 0.
. "$(dirname "$0")/../lib.sh"
require_binaries

make_studies CR --kind cr-chest --count 1 --size 256x208 --seed 8401
SOCK=$T/notify.sock
"$PY" - "$SOCK" "$T/out/notify.log" <<-'EOF' 3>&- &
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	s.bind(sys.argv[1])
	with open(sys.argv[2], "a", buffering=1) as out:
	    while True:
	        msg = s.recv(65536).decode("utf-8", "replace")
	        for line in msg.split("\n"):
	            if line:
	                out.write("%.3f %s\n" % (time.time(), line))
	EOF
track_pid $!
wait_for 5 "the notify socket" test -S "$SOCK" || fail "the python notify listener did not start"

receive_only
write_config stable_seconds=1
export NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=4000000
start_triaged
unset NOTIFY_SOCKET WATCHDOG_USEC
storescu_send "$T/out/store.log" MODALITY $(find "$CR" -name '*.dcm' | sort) || fail "storescu failed"
N=$(find "$CR" -name '*.dcm' | wc -l)
stored() { grep -q "STATUS=.*stored $N," "$T/out/notify.log"; }
wait_for 15 "a STATUS line counting $N stored instances" stored || fail "no STATUS with 'stored $N'"
sleep 8                                      # keep-alives over a few intervals
kill -HUP "$TRIAGED_PID"
wait_for 10 "READY=1 after the reload" eval '[ "$(grep -c "READY=1" "$T/out/notify.log")" -ge 2 ]' \
	|| fail "no second READY=1 after SIGHUP"
stop_triaged
sleep 0.5
sed 's/^/    /' "$T/out/notify.log" | grep -v WATCHDOG >&3

"$PY" - "$T/out/notify.log" <<-'EOF' >&3 || fail "the notifications are not what systemd expects (above)"
	import sys
	rows = [l.rstrip("\n").split(" ", 1) for l in open(sys.argv[1])]
	msgs = [m for _, m in rows]
	assert msgs[0] == "READY=1", msgs[:2]
	st = msgs[1]
	assert st.startswith("STATUS="), st
	for word in ("associations", "studies receiving", "jobs pending", "running", "failed",
	             "dispatches pending", "sending", "dead"):
	    assert word in st, (word, st)
	wd = [float(t) for t, m in rows if m == "WATCHDOG=1"]
	assert len(wd) >= 4, ("keep-alives", len(wd))
	gaps = [b - a for a, b in zip(wd, wd[1:])]
	print("    %d keep-alives, largest gap %.2f s (WatchdogSec 4 s)" % (len(wd), max(gaps)))
	assert max(gaps) < 4.0, gaps
	i = msgs.index("RELOADING=1")
	assert "READY=1" in msgs[i + 1:], "READY=1 after RELOADING=1"
	assert msgs.count("STOPPING=1") == 1 and msgs.index("STOPPING=1") > i, "STOPPING=1 at SIGTERM"
	EOF
ok "READY with queue counts, STATUS updates, keep-alives within the watchdog, RELOADING/READY, STOPPING"

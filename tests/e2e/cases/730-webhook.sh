# 730-webhook: a route's webhook gets a JSON notice of each positive
# outcome, retried until it is taken; negative outcomes send nothing.
#
# Config:   [route pos] CR -> exec example-backend --threshold 0 (always
#           positive) with webhook = a small HTTP receiver that answers 500
#           to the first POST and 204 afterwards; [route neg] DX ->
#           example-backend --threshold 1 (always negative), same webhook.
# Modality: storescu sends a generated CR chest and a DX wrist.
# Expected: exactly one POST that is taken for the CR job (after one
#           refused), a JSON body naming the job, route, study, accession
#           and outcome "positive", no patient name; nothing for the DX job.
. "$(dirname "$0")/../lib.sh"
require_binaries

make_studies CR --kind cr-chest --count 1 --size 512x416 --seed 7301
make_studies DX --kind dx-wrist --count 1 --size 512x416 --seed 7302
HOOK_PORT=$(free_port)
cat > "$T/out/hook.py" <<'PY'
import http.server, json, sys
port, log = int(sys.argv[1]), sys.argv[2]
seen = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen[0] += 1
        code = 500 if seen[0] == 1 else 204
        with open(log, "a") as f:
            f.write(json.dumps({"n": seen[0], "code": code, "type": self.headers.get("Content-Type"),
                                "body": body.decode()}) + "\n")
        self.send_response(code)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
"$PY" "$T/out/hook.py" "$HOOK_PORT" "$T/out/hook.log" &
track_pid $!
EX=$TRIAGED_SOURCE_DIR/src/backends/example-backend
CONF_EXTRA="[backend always-positive]
type = exec
command = $EX --threshold 0

[backend always-negative]
type = exec
command = $EX --threshold 1

[route pos]
modality = CR
backend = always-positive
webhook = http://127.0.0.1:$HOOK_PORT/hook

[route neg]
modality = DX
backend = always-negative
webhook = http://127.0.0.1:$HOOK_PORT/hook"
write_config stable_seconds=2
start_triaged

mapfile -t FILES < <(find "$CR" "$DX" -name '*.dcm' | sort)
storescu_send "$T/out/send.log" MODALITY1 "${FILES[@]}" || fail "storescu failed"
taken() { [ -f "$T/out/hook.log" ] && grep -q '"code": 204' "$T/out/hook.log"; }
wait_for 60 "the webhook takes a notice" taken || { cat "$T/out/hook.log" 2>/dev/null >&3; fail "no notice taken"; }
sleep 3   # a notice for the negative job would have come by now
ctl_json "$T/out/jobs.json" list --json
cr_study=$(dcm_get "$(find "$CR" -name '*.dcm' | head -1)" StudyInstanceUID)
pos_job=$(json "$T/out/jobs.json" "[j['id'] for j in d['jobs'] if j['route'] == 'pos'][0]")
[ "$(json "$T/out/jobs.json" "[j['outcome'] for j in d['jobs'] if j['route'] == 'neg'][0]")" = negative ] || fail "the DX job is not negative"
"$PY" - "$T/out/hook.log" "$pos_job" "$cr_study" <<'PY' || fail "the notices are wrong (above)"
import json, sys
posts = [json.loads(l) for l in open(sys.argv[1])]
print("    %d POST(s): %s" % (len(posts), [p["code"] for p in posts]))
assert [p["code"] for p in posts] == [500, 204], "one refused, then one taken, nothing else"
assert posts[0]["body"] == posts[1]["body"], "a retry re-sends the same notice"
b = json.loads(posts[1]["body"])
assert posts[1]["type"].startswith("application/json")
assert b["event"] == "triage.positive" and b["outcome"] == "positive", b
assert b["job_id"] == int(sys.argv[2]) and b["route"] == "pos" and b["study_uid"] == sys.argv[3], b
assert b["accession"].startswith("ACC"), b
assert "patient" not in json.dumps(b).lower(), "no patient data in a notice"
PY
ok "positive job $pos_job notified once (after one refusal), negative job not at all"
stop_triaged

# 420-kserve-binary: the kserve backend with Triton's binary tensor
# extension, two models of different shapes, end to end.
#
# Config:   routes told apart by the calling AE; stable_seconds = 1.
#             MG_NHWC -> [backend nhwc]: binary = yes, datatype and size from
#                        the metadata (UINT8 [1,384,320,3]: channels last,
#                        gray replicated to 3 channels), normalize = minmax,
#                        placement = top_left, box_format = xyxy_pixels,
#                        no labels list (the model answers BYTES names).
#             MG_FP32 -> [backend fp32]: design.md's example: binary = yes,
#                        FP32 [1,1,1024,832], box_format = yxyx_normalized,
#                        centered padding, labels = mass, calcification.
# Servers:  two oip_server.py (one per model); their outputs come back as
#           binary tensors (boxes [1,N,4] for nhwc).
# Modality: storescu sends, from MG_NHWC, a study of three images (640x496,
#           496x640, 200x256 — the last one is upscaled), and from MG_FP32 a
#           full-size 3328x2560 mammogram (downsampled by the host, then by
#           the backend); each image has one bright rectangle.
# Expected: both jobs done after one attempt; one finding per image on its
#           SOP Instance UID, its box on the rectangle in source pixels
#           (within 1.5 model pixels), labels from the model ("lesion") or
#           the labels list ("mass"); version from the response ("1") or
#           model_version ("2024.1"); the servers saw binary requests
#           (application/octet-stream, Inference-Header-Content-Length) of the
#           right datatype and shape, three equal channels for nhwc, and
#           answered with binary outputs.
. "$(dirname "$0")/../lib.sh"
require_binaries

OIP=$E2E_DIR/servers/oip_server.py

step "synthetic MG studies with known bright rectangles"
"$PY" "$OIP" make-dicom "$T/nhwc" --seed 4201 --image 640x496:60,420,140,520:R:CC \
	--image 496x640:500,60,580,120:L:CC --image 200x256:150,20,200,60:R:MLO > "$T/out/nhwc.jsonl" \
	|| fail "make-dicom failed"
"$PY" "$OIP" make-dicom "$T/fp32" --seed 4202 --image 3328x2560:1800,600,2000,800:L:MLO > "$T/out/fp32.jsonl" \
	|| fail "make-dicom failed"
uid_of() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["study_uid"])' "$1"; }
s_nhwc=$(uid_of "$T/out/nhwc.jsonl")
s_fp32=$(uid_of "$T/out/fp32.jsonl")

start_server() { # start_server NAME ARGS...: oip_server.py on a free port; sets PORT_<NAME>
	local name=$1 p
	shift
	p=$(free_port)
	"$PY" "$OIP" "$p" --log "$T/out/$name.req.jsonl" "$@" >"$T/out/$name.log" 2>&1 3>&- &
	track_pid $!
	wait_for 15 "oip_server $name to listen" grep -q ready "$T/out/$name.log" \
		|| fail "oip_server $name did not start: $(cat "$T/out/$name.log")"
	printf -v "PORT_$name" '%s' "$p"
	log "oip_server $name on 127.0.0.1:$p ($*)"
}
start_server nhwc --model lesions --input pixels --datatype UINT8 --shape 1,384,320,3 \
	--box-format xyxy_pixels --batch-boxes --labels-dtype BYTES --label-names lesion,scar
start_server fp32 --model mammo_detector --version 2024.1 --input image --datatype FP32 \
	--shape 1,1,1024,832 --box-format yxyx_normalized

CONF_EXTRA="[analysis]
workers = 2
max_attempts = 2
retry_base_s = 1

[route nhwc]
modality = MG
calling_ae = MG_NHWC
backend = nhwc

[route fp32]
modality = MG
calling_ae = MG_FP32
backend = fp32

[backend nhwc]
type = kserve
url = http://127.0.0.1:$PORT_nhwc/
model = lesions
normalize = minmax
placement = top_left
box_format = xyxy_pixels
binary = yes
timeout_s = 60

[backend fp32]
type = kserve
url = http://127.0.0.1:$PORT_fp32
model = mammo_detector
model_version = 2024.1
input = image
input_size = 1024x832
input_datatype = FP32
normalize = 0..1
outputs = boxes, scores, labels
box_format = yxyx_normalized
labels = mass, calcification
score_threshold = 0.5
binary = yes
max_response_kb = 1024
timeout_s = 120"
write_config stable_seconds=1 force_seconds=600
start_triaged

job_of() { # job_of STUDY: "ID STATE" of its job ("" while none)
	ctl_json "$T/out/jobs.json" list --json
	json "$T/out/jobs.json" "' '.join('%s %s' % (j['id'], j['state']) for j in d['jobs'] if j['study_uid'] == '$1')"
}
finished() { case $(job_of "$1") in *" done"|*" failed") return 0 ;; *) return 1 ;; esac; }
show() { # show STUDY OUT
	local id
	id=$(job_of "$1" | cut -d' ' -f1)
	[ -n "$id" ] || fail "no job for study $1"
	ctl_json "$2" show --json "$id"
}

step "storescu sends the NHWC study from MG_NHWC and the mammogram from MG_FP32"
mapfile -t F_NHWC < <(find "$T/nhwc" -name '*.dcm' | sort)
storescu_send "$T/out/store1.log" MG_NHWC "${F_NHWC[@]}" || fail "storescu failed: $(tail -n 5 "$T/out/store1.log")"
storescu_send "$T/out/store2.log" MG_FP32 "$T/fp32/1.dcm" || fail "storescu failed: $(tail -n 5 "$T/out/store2.log")"
for s in "$s_nhwc" "$s_fp32"; do
	wait_for 90 "the job of study $s to finish" finished "$s" \
		|| { cat "$T/out/jobs.json" >&3; fail "the kserve job of $s did not finish within 90 s"; }
done
show "$s_nhwc" "$T/out/job-nhwc.json"
show "$s_fp32" "$T/out/job-fp32.json"

# check_job JOB.json MANIFEST REQLOG IN_ROWS IN_COLS NAME VERSION LABEL CODE DTYPE SHAPE CHANNELS
check_job() {
	"$PY" - "$@" <<-'EOF' >&3
	import json, sys
	job, manifest, reqlog, in_rows, in_cols, name, version, label, code, dtype, shape, channels = sys.argv[1:]
	d = json.load(open(job))
	man = [json.loads(l) for l in open(manifest)]
	reqs = [json.loads(l) for l in open(reqlog)]
	j, r = d["job"], d["result"]
	assert j["state"] == "done" and j["attempts"] == 1, "state %s attempts %s error %r" % (j["state"], j["attempts"], j.get("error"))
	alg = r["algorithm"]
	assert (alg["name"], alg["version"], alg["vendor"]) == (name, version, "KServe model"), alg
	assert r["study"]["outcome"] == "positive", r["study"]
	by_sop = {f["sop_instance_uid"]: f for f in r["findings"]}
	assert len(r["findings"]) == len(man) and set(by_sop) == {m["sop_uid"] for m in man}, r["findings"]
	for m in man:
	    f = by_sop[m["sop_uid"]]
	    per = max(m["rows"] / int(in_rows), m["cols"] / int(in_cols))   # source pixels per model pixel
	    tol = 1.5 * per + 0.5
	    err = max(abs(a - b) for a, b in zip(f["box"], m["box"]))
	    print("    %dx%d: box %s, rectangle %s, off by %.2f px (tolerance %.1f), %s %.3f"
	          % (m["rows"], m["cols"], [round(v, 1) for v in f["box"]], m["box"], err, tol, f["label"], f["score"]))
	    assert err <= tol, "box %s is not the rectangle %s" % (f["box"], m["box"])
	    assert f["label"] == label and f["code"]["value"] == code and f["frame"] == 1, f
	assert len(reqs) == len(man), "%d requests for %d images" % (len(reqs), len(man))
	for q in reqs:
	    assert q["mode"] == "binary" and q["content_type"] == "application/octet-stream", q
	    assert q["datatype"] == dtype and q["shape"] == json.loads(shape), q
	    assert q["channels"] == int(channels) and q["channels_equal"], q
	    assert sorted(q["binary_outputs"]) == ["boxes", "labels", "scores"], q
	print("    %d binary request(s) %s %s, binary outputs" % (len(reqs), dtype, shape))
	EOF
}

check "NHWC UINT8 model: rectangles found through top-left padding, upscaling and 3 channels"
check_job "$T/out/job-nhwc.json" "$T/out/nhwc.jsonl" "$T/out/nhwc.req.jsonl" 384 320 lesions 1 lesion LESION \
	UINT8 '[1,384,320,3]' 3 || fail "the nhwc job is wrong (above)"
ok "nhwc: binary UINT8 [1,384,320,3], boxes in pixels of the model input mapped back"

check "FP32 [1,1,1024,832] model: the 3328x2560 mammogram's rectangle, yxyx boxes"
check_job "$T/out/job-fp32.json" "$T/out/fp32.jsonl" "$T/out/fp32.req.jsonl" 1024 832 mammo_detector 2024.1 mass MASS \
	FP32 '[1,1,1024,832]' 1 || fail "the fp32 job is wrong (above)"
ok "fp32: 3.4 MB binary tensor per image, box mapped through two downsamplings"

assert_alive "after the binary kserve jobs"
stop_triaged

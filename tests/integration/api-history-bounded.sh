#!/usr/bin/env bash
# /heatmap and /history answer in pages of at most ?limit= items with a link
# to the next page, so a response is bounded whatever the VM's size and the
# configured history. A VM dirties one page in each of 262,144 2 MiB regions
# (a 512 GiB slot, one bit every 512 pages of its bitmap): the heatmap used
# to answer all of them in one body (about 25 MB, and a json-c tree ten times
# that). Now the default page holds 4,096 regions; following next with
# limit=100000 walks every region exactly once, in order, each with its one
# page; limit=100001 is a 400 naming the bound. /history?limit=2 links to the
# next two epochs, and walking it gives every epoch once.
source "$(dirname "$0")/../lib/common.sh"

start_daemon --epoch 100ms
PYTHONUNBUFFERED=1 PYTHONPATH="$(dirname "$0")/../lib" API_SOCK="$API_SOCK" ATTACH_SOCK="$ATTACH_SOCK" \
	DAEMON_PID="$DAEMON_PID" python3 - <<'PY'
import json, mmap, os, subprocess, time
from dtpeer import *

PAGES = 1 << 27
REGIONS = PAGES // 512

def get(path):
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "--unix-socket",
                          os.environ["API_SOCK"], "http://localhost" + path],
                         capture_output=True, check=True)
    body, code = out.stdout.rsplit(b"\n", 1)
    return int(code), body

def api(path):
    code, body = get(path)
    assert code == 200, f"{path}: {code} {body[:300]}"
    return json.loads(body), len(body)

p = Peer(os.environ["ATTACH_SOCK"])
vm = p.attach("big", vcpus=1, mode=2)
assert p.request(T["ADD_SLOT"], add_slot(0, 0, PAGES))[0] == T["ACK"]
fd = memfd(PAGES // 8)
m = mmap.mmap(fd, PAGES // 8)
m.write(b"\1" + b"\0" * 63)  # one page per region: bit 0 of every 8th word
for i in range(1, REGIONS):
    m[i * 64] = 1
r = p.request(T["ADD_BITMAP"], add_bitmap(0), [fd])
assert r[0] == T["ACK"], r
deadline = time.time() + 20
while time.time() < deadline:
    p.pump(0.3)
    c = api(f"/v1/vms/{vm}")[0]["counters"]
    if c["bitmap_pages"] >= REGIONS:
        break
assert c["bitmap_pages"] == REGIONS, c
p.pump(0.3)

def status(key):
    with open(f"/proc/{os.environ['DAEMON_PID']}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))

hwm0, t0 = status("VmHWM"), time.time()
h, size = api(f"/v1/vms/{vm}/heatmap?window=60s")
print(f"heatmap, default limit: {len(h['regions'])} regions in {size} bytes, "
      f"{time.time() - t0:.3f} s; daemon VmHWM {hwm0} -> {status('VmHWM')} kB")
assert h["limit"] == 4096 and len(h["regions"]) == 4096, (h["limit"], len(h["regions"]))
assert size < 1 << 20, f"a default heatmap page of {size} bytes"
assert h["next_cursor"] == 4096 and h["next"].startswith(f"/v1/vms/{vm}/heatmap?cursor=4096&limit=4096"), h["next"]
print("ok: the default heatmap page holds 4096 regions and links to the next")

seen, path, pages = [], f"/v1/vms/{vm}/heatmap?limit=100000&window=60s", 0
while path:
    h, size = api(path)
    assert len(h["regions"]) <= 100000
    seen += [(x["region"], x["pages"]) for x in h["regions"]]
    path, pages = h["next"], pages + 1
assert pages == 3, f"{pages} pages for {REGIONS} regions at 100000 a page"
assert [r for r, _ in seen] == list(range(REGIONS)), "regions missing, repeated or out of order"
assert all(n == 1 for _, n in seen), "a region with other than its one page"
print(f"ok: {REGIONS} regions walked exactly in {pages} pages of at most 100000")

code, body = get(f"/v1/vms/{vm}/heatmap?limit=100001")
assert code == 400 and b"100000" in body, (code, body)
print("ok: limit=100001 is a 400 naming the bound:", json.loads(body)["detail"])

hist, _ = api(f"/v1/vms/{vm}/history?limit=2")
assert len(hist["epochs"]) == 2 and hist["next_since"] == hist["epochs"][1]["epoch"] + 1, hist
want = api(f"/v1/vms/{vm}/history?limit=100000")[0]["epochs"][-1]["epoch"]
got, path = [], f"/v1/vms/{vm}/history?limit=7"
while path:
    hist, _ = api(path)
    got += [e["epoch"] for e in hist["epochs"]]
    path = hist["next"]
assert got[:want + 1] == list(range(want + 1)), "history pages skip or repeat epochs"
print(f"ok: /history in pages of 7 gives epochs 0..{len(got) - 1} once each")
PY
[ $? -eq 0 ] || fail "bounded heatmap and history"
daemon_alive || fail "daemon died"

#!/usr/bin/env bash
# A hostile or broken VMM: every malformed message gets an error reply or a
# closed connection, bad shared memory is refused with a reason, invalid ring
# entries are counted and dropped, and another VM keeps being harvested.
source "$(dirname "$0")/../lib/common.sh"
start_daemon --epoch 100ms

# A well-behaved VM alongside, to show the daemon keeps serving it.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name good --memory 64M --vcpus 2 --mode ring \
	--pattern uniform --rate 20000 --wss 4096 --duration 30 --seed 1 --truth "$TMP/good.json" \
	>"$TMP/good.log" 2>&1 &
BG_PIDS+=($!)
wait_until 20 api /v1/vms/good || fail "good VM did not attach"

PYTHONUNBUFFERED=1 PYTHONPATH="$(dirname "$0")/../lib" API_SOCK="$API_SOCK" ATTACH_SOCK="$ATTACH_SOCK" \
	python3 - <<'PY'
import json, os, socket, struct, subprocess, time
from dtpeer import *

A = os.environ["ATTACH_SOCK"]
def api(path):
    out = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                          "http://localhost" + path], capture_output=True, check=True)
    return json.loads(out.stdout)

def expect_error_then_close(p, what, close=True):
    r = p.recv()
    assert r is not None and r[0] == T["ERROR"], f"{what}: expected ERROR, got {r}"
    if close:
        assert p.closed(), f"{what}: connection not closed"
    print(f"ok: {what}: ERROR {error_of(r)}")
    return r

# Framing errors: ERROR and close.
p = Peer(A); p.send(T["HELLO"], hello("x"), magic=0x12345678); expect_error_then_close(p, "bad magic")
p = Peer(A); p.send(T["HELLO"], hello("x"), version=9); expect_error_then_close(p, "bad version")
p = Peer(A); p.send(T["HELLO"], hello("x")[:-1]); expect_error_then_close(p, "short payload")
p = Peer(A); p.send(T["HELLO"], hello("x") + b"\0"); expect_error_then_close(p, "long payload")
p = Peer(A); p.send(T["HELLO"], hello("x"), length=200); expect_error_then_close(p, "length field larger than the datagram")
p = Peer(A); p.send_raw(b"\x44\x54\x52\x4b\x01"); expect_error_then_close(p, "truncated header")
p = Peer(A); p.send(T["HELLO"], hello("x"), flags=1); expect_error_then_close(p, "nonzero flags")
p = Peer(A); p.send(T["HELLO"], hello("x"), nfds=1); expect_error_then_close(p, "fd count in header without fd")
fd = memfd(4096)
p = Peer(A); p.send(T["HELLO"], hello("x"), fds=[fd]); expect_error_then_close(p, "fd on a message that carries none")
p = Peer(A); p.send(T["ADD_SLOT"], add_slot(0, 0, 16)); expect_error_then_close(p, "first message not HELLO")
bad_name = struct.pack("<HHIIIII16s32s64s", 1, 1, 4096, 1, 1, 0, 0, b"\0"*16, b"v", b"\x01bad")
p = Peer(A); p.send(T["HELLO"], bad_name); expect_error_then_close(p, "unprintable name")

# Refusals: REFUSE with a reason.
for what, kw in [("page size", dict(page_size=3000)), ("vcpus", dict(vcpus=0)),
                 ("mode", dict(mode=7)), ("version range", dict(minv=2, maxv=3))]:
    p = Peer(A); r = p.request(T["HELLO"], hello("x", **kw))
    assert r and r[0] in (T["REFUSE"], T["ERROR"]), f"{what}: {r}"
    assert p.closed(), what
    print(f"ok: refused bad {what}: {error_of(r)}")

# Unknown type: ERROR, connection kept.
p = Peer(A); p.send(99, b""); expect_error_then_close(p, "unknown type", close=False)
vm = p.attach("peer", vcpus=2, mode=3)
print("ok: attach after an unknown type, vm", vm)

def req_err(payload_type, payload, fds=(), what=""):
    r = p.request(payload_type, payload, fds)
    assert r and r[0] == T["ERROR"], f"{what}: expected ERROR, got {r}"
    e, reason = error_of(r)
    print(f"ok: {what}: errno {e}: {reason}")
    return e, reason

def req_ok(payload_type, payload, fds=(), what=""):
    r = p.request(payload_type, payload, fds)
    assert r and r[0] == T["ACK"], f"{what}: expected ACK, got {r} {error_of(r) if r and r[0]==4 else ''}"

req_ok(T["ADD_SLOT"], add_slot(0, 0, 1024), what="slot 0")
req_ok(T["ADD_SLOT"], add_slot(1, 1 << 32, 512), what="slot 1 above 4 GiB")
req_err(T["ADD_SLOT"], add_slot(2, 4096 * 100, 16), what="overlapping slot")
req_err(T["ADD_SLOT"], add_slot(0, 1 << 40, 16), what="duplicate slot id")
req_err(T["ADD_SLOT"], add_slot(3, 123, 16), what="unaligned gpa")
req_err(T["ADD_SLOT"], add_slot(4, 1 << 44, 0), what="zero pages")
req_err(T["ADD_SLOT"], add_slot(5, 0xfffffffffffff000, 16), what="gpa overflow")
req_err(T["ADD_SLOT"], add_slot(6, 1 << 45, 1 << 40), what="more memory than allowed")
req_err(T["REMOVE_SLOT"], struct.pack("<II", 77, 0), what="remove unknown slot")
unsealed = memfd(4096, seals=0)
e, reason = req_err(T["ADD_RING"], add_ring(0, 256), [unsealed], what="unsealed ring memfd")
assert "seal" in reason, reason
e, reason = req_err(T["ADD_BITMAP"], add_bitmap(0), [memfd(4096, seals=F_SEAL_SHRINK)], what="bitmap memfd without grow seal")
assert "grow" in reason.lower(), reason
req_err(T["ADD_BITMAP"], add_bitmap(0), [memfd(64, seals=F_SEAL_SHRINK | F_SEAL_GROW)], what="bitmap memfd too small")
req_err(T["ADD_BITMAP"], add_bitmap(9), [memfd(4096)], what="bitmap for unknown slot")
req_err(T["ADD_RING"], add_ring(2, 256), [memfd(4096)], what="ring for vcpu out of range")
req_err(T["ADD_RING"], add_ring(0, 100), [memfd(4096)], what="ring entries not a power of two")
req_err(T["ADD_RING"], add_ring(0, 256), [memfd(1024)], what="ring memfd too small")
req_err(T["ADD_RING"], add_ring(0, 256, offset=100), [memfd(8192)], what="unaligned ring offset")
with open("/dev/null", "rb") as f:
    req_err(T["ADD_RING"], add_ring(0, 256), [f.fileno()], what="ring fd that is not a memfd")

# A real ring with valid and invalid entries, across the wrap point.
ring = Ring(256)
req_ok(T["ADD_RING"], add_ring(0, 256, fetch=200), [ring.fd], what="ring")
ring.index = 200
valid = set()
for i in range(40):  # entries 200..239
    ring.push(0, i)
    valid.add(i)
ring.push(0, 5000)        # offset out of range for slot 0 (1024 pages)
ring.push(9, 1)           # unknown slot
ring.push(1, 511)         # last page of slot 1: valid
ring.push(1, 512)         # one past: invalid
for i in range(300, 300 + 212):  # fill to exactly a full ring (256 un-reset entries), wrapping
    ring.push(0, i % 1024)
bitmap = memfd(4096)
req_ok(T["ADD_BITMAP"], add_bitmap(1), [bitmap], what="bitmap")
bm = mmap.mmap(bitmap, 4096)
struct.pack_into("<Q", bm, 0, 0b1011)      # pages 0,1,3 of slot 1
struct.pack_into("<Q", bm, 56, 1 << 63)     # word 7, the last of 512 pages: page 511
struct.pack_into("<Q", bm, 64, 0xffff)      # word 8, beyond the slot: never read
deadline = time.time() + 5
while time.time() < deadline:
    p.pump(0.2)
    c = api(f"/v1/vms/{vm}")["counters"]
    if c["invalid_entries"] >= 3 and c["ring_entries"] >= 253 and c["bitmap_pages"] >= 4:
        break
c = api(f"/v1/vms/{vm}")["counters"]
assert c["invalid_entries"] == 3, c
assert c["ring_entries"] == 253, c
assert c["bitmap_pages"] == 4, c
assert all(ring.flags(i) == 2 for i in range(200, 200 + 256)), "entries not marked RESET"
assert struct.unpack_from("<Q", bm, 0)[0] == 0, "bitmap word not consumed"
print("ok: ring harvested exactly across wrap, full ring, invalid entries counted:", c)
# The shared memory is reset by the VMM (us) and reused.
assert ring.reset(ring.index) == 256
ring.push(0, 7)
p.pump(0.5)
c2 = api(f"/v1/vms/{vm}")["counters"]
assert c2["ring_entries"] == 254, c2
# Detach cleanly.
r = p.request(T["DETACH"], struct.pack("<II", 0, 0))
assert r and r[0] == T["ACK"], r
assert api(f"/v1/vms/{vm}")["state"] == "detached"
print("ok: detach")
PY
[ $? -eq 0 ] || fail "protocol checks"

daemon_alive || fail "daemon died"
e1=$(vm_field good .epochs_harvested)
sleep 0.5
e2=$(vm_field good .epochs_harvested)
[ "$e2" -gt "$e1" ] || fail "good VM no longer harvested ($e1 -> $e2)"
[ "$(vm_field good .state)" = attached ] || fail "good VM detached"
echo "ok: the good VM kept being harvested ($e1 -> $e2 epochs)"

#!/usr/bin/env bash
# A sparse bitmap or ring memfd costs the daemon only what the VMM spent. A VMM
# declares a 2^31-page slot (8 TiB) and passes a 256 MiB bitmap memfd that is
# only ftruncated (no page allocated) with three bits set, in three pages. The
# daemon used to read every word of it each epoch: its reads faulted in (and
# kept mapped) every hole page, 256 MiB of RSS and ~20 % CPU. Now it reads only
# the pages that hold data, so its RSS stays within 16 MiB of what it was
# before the attach, and the three pages, then three more, are counted
# exactly. A second VM passes a fallocated bitmap (allocated, never written:
# holes to the kernel's SEEK_DATA) and then writes a dense run of 262,144 bits
# and one bit beyond: all counted exactly. A bitmap page the VMM punches
# out after writing costs nothing and loses nothing it had harvested. A third
# VM passes 64 rings of 65,536 entries (1 MiB each) in ftruncated memfds: the
# daemon used to read every page of each at ADD_RING (a probe meant for vCPU
# fds), 64 MiB; its RSS now stays within 16 MiB and two entries are counted.
# So after a RING_FULL on every ring (a look through the whole ring).
source "$(dirname "$0")/../lib/common.sh"

start_daemon --epoch 100ms
PYTHONUNBUFFERED=1 PYTHONPATH="$(dirname "$0")/../lib" API_SOCK="$API_SOCK" ATTACH_SOCK="$ATTACH_SOCK" \
	DAEMON_PID="$DAEMON_PID" python3 - <<'PY'
import json, mmap, os, struct, subprocess, time
from dtpeer import *

PID = os.environ["DAEMON_PID"]
PAGES = 1 << 31
BYTES = PAGES // 8
MiB = 1 << 20
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2

def api(path):
    out = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                          "http://localhost" + path], capture_output=True, check=True)
    return json.loads(out.stdout)

def rss():
    with open(f"/proc/{PID}/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))

def cpu():
    with open(f"/proc/{PID}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

def setbit(m, page):
    off = (page // 64) * 8
    w = struct.unpack_from("<Q", m, off)[0]
    struct.pack_into("<Q", m, off, w | (1 << (page % 64)))

def wait_pages(p, vm, want, what):
    deadline = time.time() + 10
    while time.time() < deadline:
        p.pump(0.2)
        c = api(f"/v1/vms/{vm}")["counters"]
        if c["bitmap_pages"] >= want:
            break
    assert c["bitmap_pages"] == want, f"{what}: {c['bitmap_pages']} pages counted, {want} set"
    return c

# A: 2^31 pages, a 256 MiB bitmap memfd that is only ftruncated.
a = Peer(os.environ["ATTACH_SOCK"])
va = a.attach("sparse", vcpus=1, mode=2)
assert a.request(T["ADD_SLOT"], add_slot(0, 0, PAGES))[0] == T["ACK"]
fd = memfd(BYTES)
m = mmap.mmap(fd, BYTES)
for page in (5, 1 << 30, PAGES - 1):
    setbit(m, page)
a.pump(0.5)
rss0, cpu0 = rss(), cpu()
r = a.request(T["ADD_BITMAP"], add_bitmap(0), [fd])
assert r[0] == T["ACK"], f"sparse bitmap refused: {error_of(r) if r[0] == T['ERROR'] else r}"
wait_pages(a, va, 3, "sparse bitmap")
for page in (6, (1 << 30) + 4096 * 8, 12345678 * 64):
    setbit(m, page)
wait_pages(a, va, 6, "sparse bitmap, second round")
a.pump(3.0)  # 30 epochs
rss1, cpu1 = rss(), cpu()
c = api(f"/v1/vms/{va}")["counters"]
assert c["bitmap_pages"] == 6, c
print(f"sparse: daemon RSS {rss0 // 1024} KiB before the bitmap, {rss1 // 1024} KiB after "
      f"~35 epochs; CPU {cpu1 - cpu0:.2f} s")
assert rss1 - rss0 < 16 * MiB, \
    f"a sparse 256 MiB bitmap grew the daemon's RSS by {(rss1 - rss0) // MiB} MiB"
print("ok: a sparse 256 MiB bitmap: 6 pages exact, RSS within 16 MiB")

# B: a fallocated bitmap (holes to SEEK_DATA until written), then a dense run.
b = Peer(os.environ["ATTACH_SOCK"])
vb = b.attach("fallocated", vcpus=1, mode=2)
BP = 1 << 26
assert b.request(T["ADD_SLOT"], add_slot(0, 0, BP))[0] == T["ACK"]
bfd = memfd(BP // 8)
os.posix_fallocate(bfd, 0, BP // 8)
bm = mmap.mmap(bfd, BP // 8)
r = b.request(T["ADD_BITMAP"], add_bitmap(0), [bfd])
assert r[0] == T["ACK"], f"fallocated bitmap refused: {r}"
b.pump(0.5)
bm[MiB:MiB + 32768] = b"\xff" * 32768  # 262,144 pages, 8 bitmap pages
setbit(bm, BP - 1)
wait_pages(b, vb, 262145, "fallocated bitmap")
print("ok: a fallocated bitmap: 262,145 pages exact")
# The VMM punches out the written pages: they were taken, nothing is lost.
bm[MiB:MiB + 8] = b"\x01" + b"\0" * 7
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
b.pump(0.5)
assert libc.fallocate(bfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, 65536) == 0
setbit(bm, 7)
wait_pages(b, vb, 262147, "after a punched hole")
print("ok: a punched-out page costs nothing, later bits counted")
c = api(f"/v1/vms/{va}")["counters"]
assert c["bitmap_pages"] == 6, f"the other VM's figures moved: {c}"

# C: 64 sparse rings of 1 MiB.
cp = Peer(os.environ["ATTACH_SOCK"])
vc = cp.attach("rings", vcpus=64, mode=1)
assert cp.request(T["ADD_SLOT"], add_slot(0, 0, 1 << 20))[0] == T["ACK"]
rings = [Ring(65536) for _ in range(64)]
cp.pump(0.3)
rss0 = rss()
for v, ring in enumerate(rings):
    r = cp.request(T["ADD_RING"], add_ring(v, 65536), [ring.fd])
    assert r[0] == T["ACK"], f"sparse ring {v} refused: {r}"
rings[0].push(0, 17)
rings[63].push(0, 99)
deadline = time.time() + 10
while time.time() < deadline:
    cp.pump(0.2)
    c = api(f"/v1/vms/{vc}")["counters"]
    if c["ring_entries"] >= 2:
        break
assert c["ring_entries"] == 2, c
cp.pump(1.0)
rss1 = rss()
print(f"rings: daemon RSS {rss0 // 1024} KiB before 64 sparse 1 MiB rings, {rss1 // 1024} KiB after")
assert rss1 - rss0 < 16 * MiB, f"64 sparse 1 MiB rings grew the daemon's RSS by {(rss1 - rss0) // MiB} MiB"
print("ok: 64 sparse 1 MiB rings: 2 entries exact, RSS within 16 MiB")
# A RING_FULL makes the daemon look through the whole ring for entries it
# missed: it skips the pages that hold none.
for v in range(64):
    cp.send(T["RING_FULL"], struct.pack("<II", v, 0))
cp.pump(1.0)
rings[5].push(0, 5)
cp.send(T["RING_FULL"], struct.pack("<II", 5, 0))
cp.pump(1.0)
rss2 = rss()
c = api(f"/v1/vms/{vc}")["counters"]
print(f"rings: daemon RSS {rss2 // 1024} KiB after a RING_FULL on every ring; {c}")
assert c["ring_entries"] == 3 and c["ring_full"] == 65, c
assert rss2 - rss0 < 16 * MiB, \
    f"RING_FULL on 64 sparse rings grew the daemon's RSS by {(rss2 - rss0) // MiB} MiB"
print("ok: a RING_FULL on every sparse ring: RSS within 16 MiB, entries exact")
PY
[ $? -eq 0 ] || fail "sparse bitmap checks"
daemon_alive || fail "daemon died"

#!/usr/bin/env bash
# Rings and bitmaps in hugetlb memfds (MFD_HUGETLB, 2 MiB pages) are mapped,
# harvested, and unmapped at detach: the kernel rounds such a mapping up to
# the huge page, and munmap() of the shorter length the VMM asked for fails,
# which leaked every mapping (and its huge page) per attach. After the
# detach no mapping of the memfds is left in the daemon and the huge pages
# are free again. An offset that is not huge-page aligned is refused with a
# reason. Needs free huge pages: when none are free and we are root,
# reserve 4 for the test and give them back afterwards.
source "$(dirname "$0")/../lib/common.sh"
HP_SYSCTL=/proc/sys/vm/nr_hugepages
HP_OLD=""
restore_hugepages() {
	[ -n "$HP_OLD" ] && echo "$HP_OLD" >"$HP_SYSCTL" 2>/dev/null || true
}
trap 'rc=$?; restore_hugepages; (exit $rc); cleanup' EXIT
[ "$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)" = 2048 ] || skip "huge pages are not 2 MiB here"
need=4
free() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }
if [ "$(free)" -lt $need ] && [ -w "$HP_SYSCTL" ]; then
	HP_OLD=$(cat "$HP_SYSCTL")
	echo $((HP_OLD + need)) >"$HP_SYSCTL" || true
fi
[ "$(free)" -ge $need ] || skip "fewer than $need free 2 MiB huge pages and none can be reserved"

start_daemon --epoch 100ms
FREE0=$(free)
PYTHONUNBUFFERED=1 PYTHONPATH="$(dirname "$0")/../lib" API_SOCK="$API_SOCK" ATTACH_SOCK="$ATTACH_SOCK" \
	DAEMON_PID="$DAEMON_PID" python3 - <<'PY'
import fcntl, json, mmap, os, struct, subprocess, time
from dtpeer import *
HUGE = 2 << 20

def api(path):
    out = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                          "http://localhost" + path], capture_output=True, check=True)
    return json.loads(out.stdout)

def huge_memfd():
    fd = os.memfd_create("dtpeer-huge", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | os.MFD_HUGETLB)
    os.ftruncate(fd, HUGE)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
    return fd, mmap.mmap(fd, HUGE)

def maps():
    with open(f"/proc/{os.environ['DAEMON_PID']}/maps") as f:
        return [l for l in f if "dtpeer-huge" in l]

p = Peer(os.environ["ATTACH_SOCK"])
vm = p.attach("huge", vcpus=1, mode=3)
def req(t, payload, fds=()):
    r = p.request(t, payload, fds)
    return r[0], (error_of(r) if r[0] == T["ERROR"] else None)
assert req(T["ADD_SLOT"], add_slot(0, 0, 512))[0] == T["ACK"]
rfd, rmap = huge_memfd()
bfd, bmap = huge_memfd()
t, err = req(T["ADD_RING"], add_ring(0, 256, offset=4096), [rfd])
assert t == T["ERROR"] and "2097152" in err[1], f"unaligned offset in a hugetlb memfd: {t} {err}"
print("ok: an offset inside a huge page is refused:", err[1])
assert req(T["ADD_RING"], add_ring(0, 256), [rfd]) == (T["ACK"], None)
assert req(T["ADD_BITMAP"], add_bitmap(0), [bfd]) == (T["ACK"], None)
m = maps()
assert len(m) == 2, f"expected the ring and the bitmap mapped: {m}"
for l in m:
    lo, hi = (int(x, 16) for x in l.split()[0].split("-"))
    assert hi - lo == HUGE and lo % HUGE == 0, f"mapping not one whole huge page: {l}"
# One ring entry (page 3) and one bitmap bit (page 9) are harvested.
struct.pack_into("<IQ", rmap, 4, 0, 3)
struct.pack_into("<I", rmap, 0, 1)
struct.pack_into("<Q", bmap, 0, 1 << 9)
deadline = time.time() + 5
while time.time() < deadline:
    p.pump(0.2)
    c = api(f"/v1/vms/{vm}")["counters"]
    if c["ring_entries"] >= 1 and c["bitmap_pages"] >= 1:
        break
assert c["ring_entries"] == 1 and c["bitmap_pages"] == 1, c
print("ok: ring and bitmap in hugetlb memfds harvested:", c)
r = p.request(T["DETACH"], struct.pack("<II", 0, 0))
assert r[0] == T["ACK"], r
time.sleep(0.3)
m = maps()
assert not m, f"hugetlb mappings left in the daemon after the detach: {m}"
print("ok: no hugetlb mapping left after the detach")
rmap.close(); bmap.close(); os.close(rfd); os.close(bfd)
PY
[ $? -eq 0 ] || fail "hugetlb checks"
sleep 0.2
FREE1=$(free)
[ "$FREE1" -eq "$FREE0" ] || fail "huge pages not given back: $FREE0 free before, $FREE1 after"
echo "ok: huge pages free again ($FREE1)"
daemon_alive || fail "daemon died"

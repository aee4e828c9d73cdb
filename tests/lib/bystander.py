"""A bystander VM for hostile-peer tests: python3 bystander.py ATTACH_SOCK NAME
SECONDS. Attaches in bitmap mode, sets 16 new bits (distinct pages) every
50 ms, answers the daemon's requests, DETACHes and prints the number of
pages it dirtied: after the ACK the daemon's counters.bitmap_pages and
counters.dirtied_pages must equal it exactly."""
import mmap
import struct
import sys
import time

from dtpeer import Peer, T, add_bitmap, add_slot, memfd

PAGES = 1 << 16
sock, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
p = Peer(sock)
p.attach(name, mode=2, vcpus=1)
assert p.request(T["ADD_SLOT"], add_slot(0, 0, PAGES))[0] == T["ACK"]
size = PAGES // 8
fd = memfd(size)
assert p.request(T["ADD_BITMAP"], add_bitmap(0), [fd])[0] == T["ACK"]
bm = mmap.mmap(fd, size)
dirtied, w, end = 0, 0, time.time() + seconds
while time.time() < end and w < PAGES // 64:
    # A fresh word each time: no atomic OR in Python, and a word nobody
    # set before cannot race with the daemon's exchange.
    struct.pack_into("<Q", bm, 8 * w, 0xffff)
    w += 1
    dirtied += 16
    p.pump(0.05)
r = p.request(T["DETACH"], struct.pack("<II", 0, 0))
assert r and r[0] == T["ACK"], r
print(dirtied, flush=True)

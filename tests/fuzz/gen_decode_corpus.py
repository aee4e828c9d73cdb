#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes seed inputs for fuzz_decode into tests/fuzz/corpus/decode/: one valid
# datagram per message type (and a few near misses), each prefixed by the
# harness's selector byte (nfds = byte % 3). Layouts follow docs/protocol.md.
import os
import struct
import sys

MAGIC = 0x4B525444
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus", "decode")
os.makedirs(out, exist_ok=True)


def s(text, size):
    b = text.encode()
    return b + b"\0" * (size - len(b))


def msg(mtype, payload, seq=1, nfds=0, version=1):
    hdr = struct.pack("<IHHIIIHH", MAGIC, version, mtype, 0, len(payload), seq, nfds, 0)
    return hdr + payload


def error(err, ref_type, ref_seq, reason):
    return struct.pack("<iHHII", err, ref_type, 0, ref_seq, 0) + s(reason, 112)


seeds = {
    "hello": (0, msg(1, struct.pack("<HHIIIII", 1, 1, 4096, 4, 3, 0x21, 0)
                     + bytes(range(16)) + s("dtsim", 32) + s("guest-1", 64))),
    "welcome": (0, msg(2, struct.pack("<HHIQIIII", 1, 0, 7, 1000000, 512, 65536, 512, 0))),
    "refuse": (0, msg(3, error(71, 1, 1, "unsupported protocol version"))),
    "error": (0, msg(4, error(17, 6, 5, "slot 2 overlaps slot 1"))),
    "ack": (0, msg(5, struct.pack("<IHH", 5, 6, 0))),
    "add_slot": (0, msg(6, struct.pack("<IIQQ", 0x10002, 0, 0x100000000, 262144))),
    "remove_slot": (0, msg(7, struct.pack("<II", 2, 0))),
    "add_ring": (1, msg(8, struct.pack("<IIQII", 0, 4096, 64 * 4096, 0, 0), nfds=1)),
    "add_bitmap": (1, msg(9, struct.pack("<IIQ", 2, 0, 0), nfds=1)),
    "reset_rings": (0, msg(10, struct.pack("<Q", 42))),
    "reset_done": (0, msg(11, struct.pack("<IiQ", 9, 0, 128))),
    "sync_bitmap": (0, msg(12, struct.pack("<Q", 43))),
    "sync_done": (0, msg(13, struct.pack("<IiQ", 10, -5, 0))),
    "ring_full": (0, msg(14, struct.pack("<II", 3, 0))),
    "detach": (0, msg(15, struct.pack("<II", 1, 0))),
    "ping": (0, msg(16, struct.pack("<Q", 0xFEEDFACE))),
    "pong": (0, msg(17, struct.pack("<Q", 0xFEEDFACE))),
    # near misses: each should fail with its own errno
    "unknown_type": (0, msg(99, struct.pack("<Q", 0))),
    "version2": (0, msg(16, struct.pack("<Q", 0), version=2)),
    "add_ring_no_fd": (0, msg(8, struct.pack("<IIQII", 0, 4096, 0, 0, 0), nfds=1)),
    "short": (0, struct.pack("<IHH", MAGIC, 1, 16)),
}

for name, (nfds, data) in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([nfds]) + data)

#!/usr/bin/env bash
# MEMORY_SAMPLE from a raw protocol peer (no QEMU needed): a consistent
# sample is kept (REST zero_pages) and planned with; the plan's correction
# for the pages first dirtied since the sample is exact against the formula
# (docs/protocol.md, the OpenAPI's zero_pages_dirtied_since_sample): the
# peer dirties known pages through its shared bitmap before and after the
# sample. Inconsistent samples (zero > sampled, none sampled, too many,
# beyond [attach] max_memory) get ERROR naming what is wrong, keep the
# connection, and change nothing; a reserved field set is a protocol error
# (EPROTO, closed); another VM's figures are untouched.
source "$(dirname "$0")/../lib/common.sh"

start_daemon --epoch 100ms
PYTHONUNBUFFERED=1 PYTHONPATH="$(dirname "$0")/../lib" API_SOCK="$API_SOCK" ATTACH_SOCK="$ATTACH_SOCK" \
	python3 - <<'PY'
import errno, json, mmap, os, struct, subprocess, time
from dtpeer import *

M = 65536  # pages of the slot


def api(path):
    out = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                          "http://localhost" + path], capture_output=True, check=True)
    return json.loads(out.stdout)


def sample(sampled, zero, pages, reserved=0):
    return struct.pack("<QQQQ", sampled, zero, pages, reserved)


def peer(name):
    p = Peer(os.environ["ATTACH_SOCK"])
    vm = p.attach(name, vcpus=1, mode=2)
    assert p.request(T["ADD_SLOT"], add_slot(0, 0, M))[0] == T["ACK"]
    fd = memfd(M // 8)
    m = mmap.mmap(fd, M // 8)
    assert p.request(T["ADD_BITMAP"], add_bitmap(0), [fd])[0] == T["ACK"]
    return p, vm, m


def dirty(p, vm, m, first, n):
    """Set bits first .. first + n (whole words), and pump until the daemon counted them."""
    want = api(f"/v1/vms/{vm}")["counters"]["bitmap_pages"] + n
    for w in range(first // 64, (first + n) // 64):
        m[w * 8:(w + 1) * 8] = b"\xff" * 8
    deadline = time.time() + 20
    while time.time() < deadline:
        p.pump(0.3)
        q.pump(0.05)  # the bystander answers its syncs too
        if api(f"/v1/vms/{vm}")["counters"]["bitmap_pages"] >= want:
            p.pump(0.3)  # the epoch holding them is closed
            return
    raise AssertionError(f"the daemon did not count the {n} pages")


p, vm, m = peer("sampled")
q, other, _ = peer("bystander")
dirty(p, vm, m, 0, 4096)  # dirtied before the sample: 4096 distinct pages
r = p.request(T["MEMORY_SAMPLE"], sample(4096, 3072, M))
assert r[0] == T["ACK"], r
z = api(f"/v1/vms/{vm}")["zero_pages"]
assert z["fraction"] == 0.75 and z["sampled_pages"] == 4096 and z["zero_pages"] == 3072 \
    and z["tracked_pages"] == M, z
print("ok: a consistent sample is kept:", z)

bad = [(sample(4096, 4097, M), errno.EINVAL, "zero 4097 is more than sampled 4096"),
       (sample(0, 0, M), errno.EINVAL, "sampled 0 is not 1 to 1048576 pages"),
       (sample((1 << 20) + 1, 0, M), errno.EINVAL, "sampled 1048577 is not 1 to 1048576"),
       (sample(4096, 0, 0), errno.EINVAL, "pages 0 is not 1 to"),
       (sample(4096, 0, 1 << 63), errno.EINVAL, "([attach] max_memory)")]
for payload, want, words in bad:
    r = p.request(T["MEMORY_SAMPLE"], payload)
    assert r[0] == T["ERROR"], r
    e, reason = error_of(r)
    assert e == want and words in reason, (e, reason, words)
    print(f"ok: refused: {os.strerror(e)}: {reason}")
assert api(f"/v1/vms/{vm}")["zero_pages"] == z, "a refused sample changed the kept one"
assert api(f"/v1/vms/{other}")["zero_pages"] is None, "another VM got a sample"
print("ok: refused samples change nothing and keep the connection; the other VM has none")

# 8192 pages first dirtied after the sample: the plan takes them off the zero pages, each as
# zero as the pages not dirtied before it: zu = min(1, 0.75 M / (M - 4096)).
dirty(p, vm, m, 8192, 8192)
dirty(p, vm, m, 0, 4096)  # dirtied again: not fresh, no change
i = api(f"/v1/vms/{vm}/plan?bandwidth=1Gbit&downtime=300ms")["inputs"]
zu = min(1.0, 0.75 * M / (M - 4096))
want = (0.75 * M - 8192 * zu) / M
print(f"plan: zero_fraction {i['zero_fraction']:.6f} (formula {want:.6f}), "
      f"{i['zero_pages_dirtied_since_sample']} pages dirtied since the sample")
assert i["zero_fraction_source"] == "measured" and i["zero_sampled_pages"] == 4096, i
assert i["zero_pages_dirtied_since_sample"] == 8192, i
assert abs(i["zero_fraction"] - want) < 1e-9, (i["zero_fraction"], want)
i = api(f"/v1/vms/{vm}/plan?bandwidth=1Gbit&downtime=300ms&zero_fraction=0.1")["inputs"]
assert i["zero_fraction"] == 0.1 and i["zero_fraction_source"] == "stated", i
i = api(f"/v1/vms/{other}/plan?bandwidth=1Gbit&downtime=300ms")["inputs"]
assert i["zero_fraction"] == 0 and i["zero_fraction_source"] == "none", i
print("ok: the plan's correction is exact; a stated share wins; no sample, none assumed")

# a reserved field set is a protocol error, as in every message: ERROR, then the daemon closes
# (None: our answer to a SYNC_BITMAP queued just before met the closed socket, and the reset
# took the queued ERROR with it)
r = p.request(T["MEMORY_SAMPLE"], sample(4096, 0, M, reserved=1))
assert r is None or (r[0] == T["ERROR"] and error_of(r)[0] == errno.EPROTO), r
assert r is None or p.closed(), "the connection stayed open after a malformed message"
assert api(f"/v1/vms/{vm}")["zero_pages"] == z, "the malformed sample changed the kept one"
print("ok: a reserved field set: EPROTO and the connection closed, the kept sample unchanged")
PY

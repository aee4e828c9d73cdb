#!/usr/bin/env bash
# The share of zero pages is measured, not asked (issue 14): libdtqemu.so
# samples a stock QEMU's guest RAM and reports MEMORY_SAMPLE, and a plan
# asked without ?zero_fraction= plans with it. Checked against the guest's
# truth (its RAM scanned page by page by the test), twice: fresh, and after
# the guest wrote half its test pages (the measurement must follow the
# content, not the epoch); and a plan asked after further writes, before
# the next sample, takes the pages dirtied since off the sample's zero pages. Negative control: a QEMU with
# DIRTYTRACK_ZERO_SAMPLE=0 has no sample, and its plan says none was assumed.
source "$(dirname "$0")/../lib/common.sh"
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
require_qemu_guest

start_daemon --epoch 100ms
export LIB BUILD TMP API_SOCK ATTACH_SOCK
python3 - <<'PY'
import math, os, sys, time
sys.path.insert(0, os.environ["LIB"])
import dtguest, qemuplan

b = qemuplan.Bench.from_test_env()
fail = b.fail
SAMPLE = 4096  # the library's default pages per sample


def sample_of(uuid):
    return b.api.get(f"/v1/vms/{uuid}").get("zero_pages")


def within(measured, truth, what):
    # binomial error of SAMPLE draws, 5 sigma, and 0.5 % for pages that change meanwhile
    tol = 5 * math.sqrt(max(truth * (1 - truth), 0.01) / SAMPLE) + 0.005
    print(f"{what}: measured {measured:.4f}, truth {truth:.4f} (tolerance {tol:.4f})")
    if abs(measured - truth) > tol:
        fail(f"{what}: the measured zero share {measured:.4f} is not the guest's {truth:.4f}")


try:
    q = b.start_guest("zs", "256M")
    off = b.start_guest("zs-off", "256M", env={"DIRTYTRACK_ZERO_SAMPLE": "0"})
    g = q.guest()
    b.wait("the first sample", lambda: sample_of(q.uuid), timeout=20)
    s = sample_of(q.uuid)
    if s["sampled_pages"] < SAMPLE * 0.9 or s["tracked_pages"] < (256 << 20) // 4096 * 0.9:
        fail(f"the sample covers too little: {s}")
    within(s["fraction"], qemuplan.zero_fraction(g), "fresh guest")

    # half the test pages written once: the share must drop to the new truth
    g.write(g.test_pages() // 2, pattern="sequential", timeout=60)
    g.idle()
    e0 = b.api.get(f"/v1/vms/{q.uuid}")["epochs_harvested"] + 1  # the writes are done by then
    b.wait("a sample after the writes", lambda: (x := sample_of(q.uuid)) and x["epoch"] > e0,
           timeout=25)
    s = sample_of(q.uuid)
    truth = qemuplan.zero_fraction(g)
    within(s["fraction"], truth, "after writing half the test pages")
    if truth > 0.8:
        fail(f"the writes did not change the guest's content (truth {truth:.3f})")

    # the plan takes it when no zero_fraction is stated, and a stated one wins
    p = b.api.get(f"/v1/vms/{q.uuid}/plan?bandwidth={64 << 20}&downtime=300ms")
    i = p["inputs"]
    if i["zero_fraction_source"] != "measured" or i["zero_sampled_pages"] != s["sampled_pages"]:
        fail(f"the plan did not take the measured share: {i}")
    within(i["zero_fraction"], truth, "the plan's zero_fraction")
    p0 = b.api.get(f"/v1/vms/{q.uuid}/plan?bandwidth={64 << 20}&downtime=300ms&zero_fraction=0")
    if p0["inputs"]["zero_fraction_source"] != "stated" or p0["inputs"]["zero_fraction"] != 0:
        fail(f"a stated zero_fraction was not the one planned with: {p0['inputs']}")
    if not p0["total_time_seconds"] > p["total_time_seconds"]:
        fail(f"no zero pages must take longer: {p0['total_time_seconds']} vs "
             f"{p['total_time_seconds']} s")

    # pages written after the sample: the plan takes them off the sample's zero pages (the
    # daemon counts them exactly), where the sample itself still reads the old share
    for attempt in range(5):
        b.wait("a fresh sample", lambda: sample_of(q.uuid)["epoch"] > s["epoch"], timeout=40)
        s = sample_of(q.uuid)
        g.write(g.test_pages() // 4, pattern="sequential", base=g.test_pages() // 2, timeout=60)
        g.idle()
        e1 = b.api.get(f"/v1/vms/{q.uuid}")["epochs_harvested"] + 2
        b.wait("the writes harvested", lambda: b.api.get(f"/v1/vms/{q.uuid}")["epochs_harvested"] > e1)
        p = b.api.get(f"/v1/vms/{q.uuid}/plan?bandwidth={64 << 20}&downtime=300ms")
        if sample_of(q.uuid)["epoch"] == s["epoch"]:
            break  # no newer sample meanwhile: the plan corrected the old one
    else:
        fail("a new sample came in every time before the plan could be asked")
    truth = qemuplan.zero_fraction(g)
    i = p["inputs"]
    print(f"written since the sample: {i['zero_pages_dirtied_since_sample']} pages; the sample "
          f"says {s['fraction']:.4f}, the truth is {truth:.4f}")
    if i["zero_pages_dirtied_since_sample"] < g.test_pages() // 4 * 0.9:
        fail(f"the pages written since the sample were not counted: {i}")
    if abs(s["fraction"] - truth) < 0.1:
        fail(f"the writes did not move the truth away from the sample ({truth:.3f})")
    within(i["zero_fraction"], truth, "the plan's zero_fraction, corrected for later writes")

    # /metrics: the same share per VM, no series without a sample
    import re, subprocess
    ids = {x: b.api.get(f"/v1/vms/{x.uuid}")["id"] for x in (q, off)}
    before = sample_of(q.uuid)["fraction"]  # a sample may come in between: either one
    text = subprocess.run(["curl", "-sf", "--unix-socket", os.environ["API_SOCK"],
                           "http://localhost/metrics"], capture_output=True, text=True,
                          check=True).stdout
    after = sample_of(q.uuid)["fraction"]
    got = re.findall(r'^dirtytrackd_vm_zero_page_ratio\{vm="(\d+)"\} (\S+)$', text, re.M)
    vals = {int(k): float(v) for k, v in got}
    if ids[off] in vals or min(abs(vals.get(ids[q], -1) - x) for x in (before, after)) > 1e-5:
        fail(f"dirtytrackd_vm_zero_page_ratio: {got}, REST {before} then {after}")
    print(f"ok: /metrics: dirtytrackd_vm_zero_page_ratio {vals[ids[q]]:.4f} equals REST's")

    # negative control: no sampling, no measured share
    if sample_of(off.uuid) is not None:
        fail(f"DIRTYTRACK_ZERO_SAMPLE=0 still reported a sample: {sample_of(off.uuid)}")
    pn = b.api.get(f"/v1/vms/{off.uuid}/plan?bandwidth={64 << 20}&downtime=300ms")
    if pn["inputs"]["zero_fraction_source"] != "none" or pn["inputs"]["zero_fraction"] != 0:
        fail(f"without a sample the plan must assume none: {pn['inputs']}")
    print("ok: the zero share of a stock QEMU's RAM is measured within the sampling error, "
          "follows the content, and the plan takes it unless one is stated")
finally:
    b.stop_all()
PY

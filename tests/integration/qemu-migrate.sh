#!/usr/bin/env bash
# Live migration of a stock QEMU tracked through libdtqemu.so stays correct:
# the guest writes 10k pages/s over its whole test region while QEMU
# migrates it to a second, plain local QEMU; the daemon harvests every
# 100 ms throughout, taking KVM's dirty log from under QEMU's migration.
# The destination guest's own VERIFY (every page it ever wrote holds the
# stamp its ledger says) must find nothing missing.
# Negative control, same run: the library deliberately keeps the pages its
# harvests take from QEMU (DIRTYTRACK_TEST_HIDE_FROM_QEMU=1); the
# destination's VERIFY must then find pages missing, or this test could not
# fail.
source "$(dirname "$0")/../lib/common.sh"
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
require_qemu_guest

start_daemon --epoch 100ms
export LIB BUILD TMP API_SOCK ATTACH_SOCK
python3 - <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["LIB"])
import dtguest
from dtapi import Api

TMP, BUILD = os.environ["TMP"], os.environ["BUILD"]
api = Api(os.environ["API_SOCK"])
G = f"{TMP}/g"
qemus = []

def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    for q in qemus:
        print(f"--- {q.name}:\n{q.log_tail()}", file=sys.stderr)
    sys.exit(1)

def wait(what, cond, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail(f"timed out: {what}")

def migrate_once(name, hide):
    env = {"DIRTYTRACK_SOCKET": os.environ["ATTACH_SOCK"]}
    if hide:
        env["DIRTYTRACK_TEST_HIDE_FROM_QEMU"] = "1"
    src = dtguest.Qemu(G, name=f"{name}-src", memory="256M", preload=f"{BUILD}/libdtqemu.so",
                       env=env)
    qemus.append(src)
    src.start()
    wait(f"{name}: attached", lambda: (v := api.try_vm(src.uuid)) and v["state"] == "attached")
    g = src.guest()
    # every test page written once first: QEMU sends zero pages as a header,
    # so without this the bulk round is ~40 MB and over in 0.3 s
    g.write(g.test_pages(), pattern="sequential", timeout=60)
    # writes everywhere, so the bulk round sends pages that are dirtied again
    g.run(rate=10000, pattern="random", seed=9)
    time.sleep(0.5)
    dst = dtguest.Qemu(G, name=f"{name}-dst", memory="256M", uuid=src.uuid,
                       incoming=f"unix:{G}/{name}.mig")
    qemus.append(dst)
    dst.start(wait=False)
    e_before = api.last_epoch(src.uuid)
    # 128 MiB/s: about 1.5 s of bulk copy (~190 MiB), 15 of the daemon's harvests in it
    r = dtguest.migrate(src.qmp, dst.qmp, f"unix:{G}/{name}.mig", max_bandwidth=128 << 20,
                        downtime_limit=300)
    harvests = api.last_epoch(src.uuid) - e_before
    g = dst.guest()
    g.idle()
    v = g.verify()
    src.stop()
    dst.stop()
    return r, v, harvests

r, v, h = migrate_once("tracked", hide=False)
print(f"ok: migrated in {r['wall_seconds']:.2f} s by the host clock (QEMU: total {r['total_time_ms']} ms, downtime {r['downtime_ms']} ms, "
      f"{r['dirty_sync_count']} dirty syncs, {r['ram_transferred']} bytes), "
      f"{h} daemon harvests during it")
if h < 5:
    fail(f"only {h} harvests during the migration: the test proves nothing")
if r["dirty_sync_count"] < 2:
    fail(f"a one-round migration proves nothing: {r}")
if v["bad"] != 0 or v["checked"] < 10000:
    fail(f"destination VERIFY: {v}")
print(f"ok: destination VERIFY: {v['checked']} pages checked, none missing")

r, v, h = migrate_once("control", hide=True)
if v["bad"] == 0:
    fail(f"negative control: hiding harvested pages from QEMU went unnoticed: {v}, {r}")
print(f"ok: negative control: with the harvest hidden from QEMU the destination misses "
      f"{v['bad']} of {v['checked']} pages")
PY

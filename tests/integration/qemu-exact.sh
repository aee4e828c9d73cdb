#!/usr/bin/env bash
# Stock QEMU (Debian's qemu-system-x86_64, -accel kvm) under libdtqemu.so,
# against the guest's own record (dtguest stamps every page it writes):
#  - it attaches under QEMU's -name and -uuid, bitmap mode, fidelity
#    exact-vcpu-writes, with nothing on QEMU's stdout/stderr;
#  - WRITE phases separated by idle epochs: the union of the epochs since
#    the last idle point equals the pages the guest stamped in that phase,
#    page for page; a continuous RUN at 20k pages/s too, and every epoch's
#    set lies within the stamps of its time;
#  - the daemon stopped (state saved) while the guest writes, and started
#    again: the library reattaches under the same uuid, the history goes on,
#    and the pages written meanwhile are in the first epochs after, exactly;
#  - the daemon absent when a second QEMU starts: it boots and runs, and
#    attaches once the daemon is back;
#  - the daemon killed (SIGKILL): QEMU unharmed, reattaches after a restart;
#  - a QEMU killed: its VM detached, the other VM's figures go on;
#  - a QEMU with a dirty ring: the library stands down, QEMU runs.
source "$(dirname "$0")/../lib/common.sh"
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
require_qemu_guest
# The library must never be a sanitizer build: it goes into a plain QEMU.
nm -D "$BUILD/libdtqemu.so" | grep -q __asan && fail "libdtqemu.so links ASan"

cat >"$TMP/d.conf" <<CONF
[stats]
recent_epochs = 4000
CONF
start_daemon --config "$TMP/d.conf" --epoch 200ms
export LIB BUILD TMP API_SOCK ATTACH_SOCK DAEMON_PID
echo "$DAEMON_PID" >"$TMP/daemon.pid"
FIRST_DAEMON=$DAEMON_PID
DAEMON_PID="" # the python side stops and restarts it, and stops the last one

python3 - <<'PY'
import json, os, signal, subprocess, sys, time
sys.path.insert(0, os.environ["LIB"])
import dtguest
from dtapi import Api

TMP, BUILD = os.environ["TMP"], os.environ["BUILD"]
SOCK, ATTACH = os.environ["API_SOCK"], os.environ["ATTACH_SOCK"]
api = Api(SOCK)
LIBSO = f"{BUILD}/libdtqemu.so"
G = f"{TMP}/g"
os.makedirs(G, exist_ok=True)
qemus = []

def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    for q in qemus:
        print(f"--- {q.name} log:\n{q.log_tail()}", file=sys.stderr)
        q.stop()
    sys.exit(1)

def ok(msg):
    print("ok:", msg, flush=True)

def wait(what, cond, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    fail(f"timed out: {what}")

def qemu(name, uuid, env=None, extra=(), wait_boot=True):
    e = {"DIRTYTRACK_SOCKET": ATTACH}
    e.update(env or {})
    q = dtguest.Qemu(G, name=name, memory="256M", uuid=uuid, preload=LIBSO, env=e,
                     extra_args=list(extra))
    qemus.append(q)
    q.start(wait=wait_boot)
    return q

daemons = []

def daemon_start():
    p = subprocess.Popen([f"{BUILD}/dirtytrackd", "--config", f"{TMP}/d.conf", "--runtime-dir",
                            f"{TMP}/run", "--state-dir", f"{TMP}/state", "--listen-tcp", "off",
                            "--dbus", "off", "--epoch", "200ms"],
                           stdout=open(f"{TMP}/daemon.log", "a"), stderr=subprocess.STDOUT)
    daemons.append(p)
    wait("daemon up", _health)
    with open(f"{TMP}/daemon.pid", "w") as f:
        f.write(str(p.pid))
    return p

def _health():
    try:
        api.get("/v1/health")
        return True
    except Exception:
        return False

def daemon_pid():
    return int(open(f"{TMP}/daemon.pid").read())

TEST_GFN = dtguest.TEST // dtguest.PAGE
UUID = "2d1c7f30-5c0e-4b7a-9e61-0b8a6c4d2e11"
qa = qemu("qa", UUID, env={"DIRTYTRACK_LOG": f"{G}/qa.dtq"})
g = qa.guest()
N = g.test_pages()
HI = TEST_GFN + N
vm = wait("qa attached", lambda: (v := api.try_vm(UUID)) and v["state"] == "attached" and v)
qemu_version = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                              text=True).stdout.split()[3]  # "QEMU emulator version 7.2.22 (...)"
if (vm["name"], vm["vmm"], vm["mode"], vm["fidelity"]) != ("qa", f"qemu-{qemu_version}", "bitmap",
                                                           "exact-vcpu-writes"):
    fail(f"attached as {vm} (want vmm qemu-{qemu_version}: QEMU's version in HELLO)")
ok(f"QEMU attached as {vm['name']} (vm {vm['id']}), {vm['mode']} mode, fidelity {vm['fidelity']}, "
   f"{vm['memory_bytes'] >> 20} MiB")
out = open(qa.log).read().splitlines()
if [l for l in out if not l.startswith("+ ")]:
    fail(f"QEMU printed something: {out}")
ok("nothing on QEMU's stdout/stderr")
VM = vm["id"]

def idle_point():
    """The guest is idle: after two more closed epochs every write is harvested."""
    g.idle()
    return api.wait_epochs_after(VM, api.last_epoch(VM), 2)

def check_phase(name, e_from, e_to, s_from, s_to):
    got = api.pages(VM, e_from, e_to, TEST_GFN, HI)
    want = set(g.truth(s_from, s_to, gfn=True))
    if got != want:
        fail(f"{name}: daemon {len(got)} pages, guest {len(want)}: missing "
             f"{sorted(want - got)[:10]}, extra {sorted(got - want)[:10]}")
    ok(f"{name}: epochs {e_from}..{e_to} hold exactly the {len(want)} pages the guest stamped")
    return want

e0 = idle_point()
s0 = g.status()["seq"]
seen = set(g.truth(0, s0, gfn=True))
for i, (pat, pages, wss) in enumerate([("random", 3000, 10000), ("sequential", 5000, 0),
                                       ("hotcold", 8000, 800)]):
    ph = g.write(pages, pattern=pat, seed=11 + i, wss=wss)
    e1 = idle_point()
    seen |= check_phase(f"WRITE {pages} {pat}", e0 + 1, e1, ph["seq_from"], ph["seq_to"])
    e0 = e1

# Continuous: at 20k pages/s for 3 s, then each epoch against the writes of
# its own time. The host samples the guest's sequence number every 20 ms
# (each sample between the two clock reads around it); the run's writes in
# order are the pattern recomputed from its seed. An epoch's set is what
# QEMU fetched at some time F between the daemon's SYNC_BITMAP and its
# close (end_us): F <= end_us, later by the time SYNC_DONE takes to reach
# the daemon (SYNC_LAG, which a loaded host stretches). So an epoch must
# hold every page written between the previous close and SYNC_LAG before
# its own close, and nothing written before SYNC_LAG ahead of the previous
# close or after its own.
SYNC_LAG_US = 80000
s_run = g.status()["seq"]
marks = []
g.run(rate=20000, pattern="random", seed=5)
t_end = time.monotonic() + 3
while time.monotonic() < t_end:
    t0 = time.monotonic_ns() // 1000
    seq = g.status()["seq"]
    marks.append((t0, time.monotonic_ns() // 1000, seq))
    time.sleep(0.02)
e1 = idle_point()
s_end = g.status()["seq"]
seen |= check_phase("RUN 20k pages/s for 3 s", e0 + 1, e1, s_run, s_end)
order = dtguest.expected_pages(N, s_end - s_run, "random", 5)

def writes(a, b):  # pages of the run's writes with seq in (a, b]
    a, b = max(a, s_run), min(b, s_end)
    return {TEST_GFN + order[i - s_run - 1] for i in range(a + 1, b + 1)}

def seq_before(t):  # every write up to it was made before t
    return max([s for _, t1, s in marks if t1 <= t], default=s_run)

def seq_after(t):  # every write after it was made after t
    return min([s for t0, _, s in marks if t0 >= t], default=s_end)

recs = {r["epoch"]: r for r in api.history(VM)}
checked = 0
for e in range(e0 + 2, e1 + 1):
    if e not in recs or e - 1 not in recs:
        fail(f"epoch {e} missing from the history")
    start, end = recs[e - 1]["end_us"], recs[e]["end_us"]
    pages = api.pages(VM, e, e, TEST_GFN, HI)
    must = writes(seq_after(start), seq_before(end - SYNC_LAG_US))
    may = writes(seq_before(start - SYNC_LAG_US), seq_after(end))
    if not must <= pages:
        fail(f"epoch {e} misses pages written inside it: {sorted(must - pages)[:5]}")
    if not pages <= may:
        fail(f"epoch {e} holds pages not written in its time: {sorted(pages - may)[:5]}")
    checked += bool(must)
if checked < 5:
    fail(f"only {checked} epochs had writes well inside them")
ok(f"each of {checked} epochs of the run holds the writes of its own time (sync lag {SYNC_LAG_US // 1000} ms)")
e0 = e1

# Distinct pages over the whole run: the 1 h window's D(T), restricted to the test
# region, is every page the guest ever stamped (the history holds all of it).
all_pages = api.pages(VM, 0, e0, TEST_GFN, HI)
if all_pages != seen:
    fail(f"whole run: {len(all_pages)} vs {len(seen)} pages")
ok(f"distinct pages over the run: {len(seen)}, the guest's count exactly")

# The daemon stopped cleanly while the guest writes; started again.
hist_before = api.last_epoch(VM)
os.kill(daemon_pid(), signal.SIGTERM)
wait("daemon stopped", lambda: subprocess.run(["kill", "-0", str(daemon_pid())],
                                                capture_output=True).returncode != 0)
ph = g.write(4000, pattern="random", seed=21, wss=30000)
# a second QEMU starts while the daemon is away: it boots and runs untracked
UUID_B = "7a4b1e2c-9d3f-4e5a-8b6c-1d2e3f4a5b6c"
qb = qemu("qb", UUID_B)
qb.guest().run(rate=5000, pattern="random", seed=2)
sb = qb.guest().status()["seq"]
time.sleep(0.5)
if qb.guest().status()["seq"] <= sb:
    fail("QEMU without a daemon: the guest does not run")
ok("a QEMU started without a daemon boots and runs its guest")
daemon_start()
vm = wait("qa reattached", lambda: (v := api.try_vm(UUID)) and v["state"] == "attached" and v, 10)
if vm["id"] != VM and api.last_epoch(vm["id"]) < hist_before:
    fail(f"history lost over the restart: {vm}")
VM = vm["id"]
e_re = api.last_epoch(VM)
if e_re < hist_before:
    fail(f"epochs went back: {hist_before} -> {e_re}")
e1 = idle_point()
check_phase("written while the daemon was down", hist_before + 1, e1, ph["seq_from"], ph["seq_to"])
ok(f"daemon restart: reattached under the same uuid, history continues from epoch {hist_before}")
wait("qb attached", lambda: (v := api.try_vm(UUID_B)) and v["state"] == "attached", 10)
ok("the second QEMU attached once the daemon was back")

# SIGKILL: QEMU goes on, and reattaches to the next daemon.
os.kill(daemon_pid(), signal.SIGKILL)
g.run(rate=5000, pattern="random", seed=3)
s1 = g.status()["seq"]
time.sleep(0.5)
if not qa.alive() or g.status()["seq"] <= s1:
    fail("QEMU harmed by the daemon's death")
daemon_start()
wait("qa reattached after SIGKILL", lambda: (v := api.try_vm(UUID)) and v["state"] == "attached", 10)
ok("daemon killed: QEMU ran on and reattached to the restarted daemon")

# A QEMU killed: its VM detached, the other's epochs go on.
qb.proc.kill()
qb.proc.wait()
v = wait("qb detached", lambda: (v := api.try_vm(UUID_B)) and v["state"] == "detached" and v)
e_a = api.last_epoch(UUID)
api.wait_epochs_after(UUID, e_a, 3)
if api.vm(UUID)["state"] != "attached":
    fail("the other VM was affected")
ok(f"QEMU killed: detached ({v.get('detach_reason')}); the other VM goes on")

# Dirty ring: no bitmap to harvest; the library stands down, QEMU runs.
qr = dtguest.Qemu(G, name="qr", memory="128M", preload=LIBSO, accel="kvm,dirty-ring-size=4096",
                  env={"DIRTYTRACK_SOCKET": ATTACH, "DIRTYTRACK_LOG": f"{G}/qr.dtq"})
qemus.append(qr)
qr.start(wait=False)
time.sleep(1.5)
if not qr.alive() or qr.qmp.query_status().get("status") is None:
    fail("QEMU with a dirty ring did not run")
if api.try_vm(qr.uuid) is not None:
    fail("the library attached a dirty-ring QEMU")
if "dirty ring" not in open(f"{G}/qr.dtq").read():
    fail("no stand-down message in DIRTYTRACK_LOG")
ok("QEMU with a dirty ring: the library stood down, QEMU runs")
for q in qemus:
    q.stop()  # also one killed on purpose (qb): its RAM file in /dev/shm goes too
d = daemons[-1]
d.terminate()
if d.wait(20) != 0:
    fail(f"the restarted daemon exited with {d.returncode}")
PY
rc=$?
wait "$FIRST_DAEMON" || [ $rc -ne 0 ] || fail "the first daemon did not stop cleanly"
for p in $(pgrep -f "runtime-dir $TMP/run" || true); do kill -9 "$p" 2>/dev/null || true; done
exit $rc

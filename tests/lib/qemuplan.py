#!/usr/bin/env python3
"""Real QEMU live migrations against the daemon's plan for the same guest.

One case: a dtguest QEMU tracked through libdtqemu.so runs a workload; the
daemon measures it; just before `migrate` the daemon's REST plan is asked
(bandwidth = max-bandwidth, downtime = downtime-limit, for every engine
asked), then QEMU migrates it to a second local QEMU. query-migrate's
figures (total-time, downtime, ram transferred, dirty-sync-count, the last
expected-downtime seen while it ran) are set beside the plans' and beside a
one-rate baseline (the dirty rate of one second, pre-copy with a constant
rate). A migration still running at the cap is cancelled: it did not
converge within the target (the plans are asked with target = the cap).

Used by bench/qemu-plan-grid.sh (the grid) and by tests/integration/
qemu-plan*.sh (a few cases with assertions). Python 3 standard library.
"""
import json
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dtguest  # noqa: E402
from dtapi import Api, ApiError  # noqa: E402

MiB = 1 << 20
ZERO = bytes(dtguest.PAGE)


def zero_fraction(guest):
    """The share of the guest's RAM that is zero pages now (what round 0 sends as a
    header only): the test pages without a stamp are zero (fresh RAM), the first
    64 MiB (kernel, mailbox, ledger) are scanned."""
    m, P = guest.m, dtguest.PAGE
    nonzero = 0
    for i in range(dtguest.TEST // P):
        if m[i * P:(i + 1) * P] != ZERO:
            nonzero += 1
    nonzero += len(guest.truth())
    return 1 - nonzero / (guest.size // P)


def one_rate(rate, memory_pages, zero, bw_pages, downtime_s, cap_s, max_rounds=1000):
    """The one-rate baseline: round 0 sends the non-zero pages, every later round the
    pages a constant `rate` dirties in the round before; stop when they fit the
    downtime. Returns (converges within cap, rounds, total s, downtime s, bytes)."""
    r = memory_pages * (1 - zero)
    t = 0.0
    sent = 0.0
    for i in range(max_rounds):
        d = r / bw_pages
        t += d
        sent += r
        r = rate * d
        if r <= bw_pages * downtime_s:
            down = r / bw_pages
            t += down
            sent += r
            return (t <= cap_s, i + 1, t, down, sent * dtguest.PAGE)
        if t > cap_s:
            break
    return (False, i + 1, t, r / bw_pages, sent * dtguest.PAGE)


def host_speeds(r):
    """What this host achieved in the migration of row r, from query-migrate's trace:
    the throughput of normal pages after the bulk round (bytes over the time pre-copy
    ran after it, if at least 0.3 s), the CPU time of a zero page in the bulk round (its
    length less the normal pages at that throughput or max-bandwidth, over the zero
    pages) and the
    stop-and-copy's speed (downtime-bytes over the downtime, if at least 4 MiB: below,
    the fixed costs dominate). None where the trace cannot tell."""
    q, p = r["qemu"], next(iter(r["plans"].values()))
    tr = q.get("trace") or []
    mem = p["inputs"]["memory_pages"]
    zero = r["zero_fraction"]
    ram = q.get("ram") or {}
    i = next((i for i, t in enumerate(tr) if (t[3] or 0) >= 2), None)
    bulk = tr[i] if i is not None else None
    # the bulk round ended between the samples before and at its sync
    t_bulk = (tr[i - 1][0] + bulk[0]) / 2 if i else bulk[0] if bulk else None
    end = (q["total_time_ms"] / 1000 - q["downtime_ms"] / 1000 if q["completed"] else
           tr[-1][0] if tr else 0)
    thr = None
    if bulk and end > bulk[0] + 0.3:  # shorter: a window or two, too noisy
        sent = (ram.get("precopy-bytes") or q["ram_transferred"]) - bulk[1]
        thr = sent / (end - bulk[0]) if sent > 0 else None
    zus = None
    if bulk and zero > 0:
        bw = min(thr or r["case"]["bandwidth"], r["case"]["bandwidth"])
        normal = mem * (1 - zero) * (dtguest.PAGE + 8) / bw
        zus = max(0.0, (t_bulk - normal) / (mem * zero) * 1e6)
    fin = None
    if q["completed"] and (ram.get("downtime-bytes") or 0) >= 4 * MiB and q["downtime_ms"]:
        fin = ram["downtime-bytes"] / max(q["downtime_ms"] / 1000 - 0.002, 0.001)
    return {"throughput": thr, "zero_page_us": zus, "final_bandwidth": fin}


class Bench:
    """A daemon (its REST socket and attach socket) and a scratch directory."""

    @classmethod
    def from_test_env(cls):
        """The Bench of an integration test (tests/lib/common.sh's start_daemon, with LIB,
        BUILD, TMP, API_SOCK and ATTACH_SOCK exported): guests under $TMP/g."""
        g = os.path.join(os.environ["TMP"], "g")
        os.makedirs(g, exist_ok=True)
        return cls(os.environ["API_SOCK"], os.environ["ATTACH_SOCK"], os.environ["BUILD"], g)

    def fail(self, msg):
        """A test's failure: the message, each QEMU's log tail, every QEMU stopped, exit 1."""
        print("FAIL:", msg, file=sys.stderr)
        for q in self.qemus:
            print(f"--- {q.name}:\n{q.log_tail()}", file=sys.stderr)
        self.stop_all()
        sys.exit(1)

    def __init__(self, api_sock, attach_sock, build, workdir):
        self.api = Api(api_sock)
        self.attach = attach_sock
        self.build = build
        self.workdir = workdir
        self.qemus = []

    def wait(self, what, cond, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise dtguest.DtgError(f"timed out: {what}")

    def start_guest(self, name, memory, env=None):
        q = dtguest.Qemu(self.workdir, name=name, memory=memory,
                         preload=f"{self.build}/libdtqemu.so",
                         env={"DIRTYTRACK_SOCKET": self.attach, **(env or {})})
        self.qemus.append(q)
        q.start()
        self.wait(f"{name} attached",
                  lambda: (v := self.api.try_vm(q.uuid)) and v["state"] == "attached")
        return q

    def start_dest(self, name, src, memory, mig=None):
        """src's destination QEMU, waiting on unix:WORKDIR/MIG.mig (MIG: default NAME)."""
        d = dtguest.Qemu(self.workdir, name=name, memory=memory, uuid=src.uuid,
                         incoming=f"unix:{self.workdir}/{mig or name}.mig")
        self.qemus.append(d)
        d.start(wait=False)
        return d

    def plan(self, uuid, engine, bandwidth, downtime_ms, zero, cap_s, extra=None):
        """zero None: the daemon's measured share (libdtqemu's MEMORY_SAMPLE)."""
        qs = {"bandwidth": str(int(bandwidth)), "downtime": f"{int(downtime_ms)}ms",
              "target": f"{cap_s:g}s", "max_rounds": "100"}
        if zero is not None:
            qs["zero_fraction"] = f"{zero:.6f}"
        if engine:
            qs["engine"] = engine
        qs.update(extra or {})
        return self.api.get(f"/v1/vms/{uuid}/plan?" + urllib.parse.urlencode(qs))

    def migrate(self, src, dst, uri, bandwidth, downtime_ms, cap_s, parameters=None,
                capabilities=None, poll=0.05):
        """migrate, polling query-migrate; cancelled at cap_s. Returns the figures."""
        s = src.qmp
        params = {"max-bandwidth": int(bandwidth), "downtime-limit": int(downtime_ms)}
        params.update(parameters or {})
        s.raw("migrate-set-parameters", params)
        if capabilities:
            s.migrate_set_capabilities(**capabilities)
        t0 = time.monotonic()
        s.migrate(uri)
        expected = None
        syncs = 0
        throttle = 0
        # (s since migrate, transferred, remaining, dirty-sync-count, mbps, cpu throttle %)
        trace = []
        while True:
            q = s.query_migrate()
            st = q.get("status")
            r = q.get("ram")
            if r:
                trace.append((round(time.monotonic() - t0, 4), r.get("transferred"),
                              r.get("remaining"), r.get("dirty-sync-count"), r.get("mbps"),
                              q.get("cpu-throttle-percentage", 0) or 0))
            if st == "completed":
                break
            if st in ("failed", "cancelled"):
                raise dtguest.DtgError(f"migration {st}: {q.get('error-desc', q)}")
            if q.get("expected-downtime") is not None and st == "active":
                expected = q["expected-downtime"]
            syncs = q.get("ram", {}).get("dirty-sync-count", syncs)
            throttle = max(throttle, q.get("cpu-throttle-percentage", 0) or 0)
            if time.monotonic() - t0 > cap_s:
                ram = q.get("ram", {})
                s.cmd("migrate_cancel")
                self.wait("cancelled", lambda: s.query_migrate().get("status") in
                          ("cancelled", "failed"), 30)
                return {"completed": False, "total_time_ms": None, "downtime_ms": None,
                        "ram_transferred": ram.get("transferred"),
                        "dirty_sync_count": ram.get("dirty-sync-count"),
                        "expected_downtime_ms": expected, "throttle": throttle,
                        "wall_s": time.monotonic() - t0, "ram": ram, "trace": trace}
            time.sleep(poll)
        self.wait("destination running",
                  lambda: dst.qmp.query_status().get("status") == "running", 30)
        ram = q.get("ram", {})
        return {"completed": True, "total_time_ms": q.get("total-time"),
                "downtime_ms": q.get("downtime"), "setup_time_ms": q.get("setup-time"),
                "ram_transferred": ram.get("transferred"),
                "ram_duplicate_pages": ram.get("duplicate"),
                "ram_normal_pages": ram.get("normal"),
                "dirty_sync_count": ram.get("dirty-sync-count"),
                "expected_downtime_ms": expected, "throttle": throttle,
                "wall_s": time.monotonic() - t0, "ram": ram, "trace": trace}

    def run_case(self, c, engines=("ideal",), warmup=4.0, plan_extra=None, migrate_params=None,
                 capabilities=None, measured_zero=False):
        """c: name memory pattern wss rate bandwidth downtime_ms cap_s [hot seed].
        Returns a row: the case, the guest's measured rate, QEMU's figures, each
        engine's plan and the one-rate baseline."""
        name = c["name"]
        src = self.start_guest(f"{name}-src", c["memory"])
        dst = None
        try:
            g = src.guest()
            g.run(rate=c["rate"], pattern=c["pattern"], wss=c["wss"], seed=c.get("seed", 1),
                  hot=c.get("hot", 90))
            t_run = time.monotonic()
            time.sleep(max(0.0, warmup - 1.0))
            measured = g.measure_rate(1.0)
            zero = zero_fraction(g)
            dst = self.start_dest(f"{name}-dst", src, c["memory"], mig=name)
            plans = {}
            for e in engines:
                plans[e] = self.plan(src.uuid, None if e == "default" else e, c["bandwidth"],
                                     c["downtime_ms"], None if measured_zero else zero,
                                     c["cap_s"], plan_extra)
            warm = time.monotonic() - t_run
            q = self.migrate(src, dst, f"unix:{self.workdir}/{name}.mig", c["bandwidth"],
                             c["downtime_ms"], c["cap_s"], migrate_params, capabilities)
            after = None
            if q["completed"]:
                dg = dst.guest()
                dg.idle()
                v = dg.verify()
                if v["bad"]:
                    raise dtguest.DtgError(f"{name}: destination lost pages: {v}")
        finally:
            for x in (src, dst):
                if x is not None:
                    x.stop()
                    if x in self.qemus:
                        self.qemus.remove(x)
        p0 = next(iter(plans.values()))
        mem_pages = p0["inputs"]["memory_pages"]
        rate1 = next((pt["pages"] / pt["window_seconds"] for pt in p0["curve"]
                      if pt["window_seconds"] >= 1.0), p0["curve"][-1]["pages"] /
                     p0["curve"][-1]["window_seconds"])
        base = one_rate(rate1, mem_pages, zero, c["bandwidth"] / dtguest.PAGE,
                        c["downtime_ms"] / 1000, c["cap_s"])
        return {"case": c, "guest_rate": measured["host_rate"], "zero_fraction": zero,
                "warmup_s": warm, "qemu": q, "plans": plans, "after": after,
                "one_rate": {"rate": rate1, "converges": base[0], "rounds": base[1],
                             "total_s": base[2], "downtime_s": base[3], "bytes": base[4]}}

    def stop_all(self):
        for q in list(self.qemus):
            try:
                q.stop()
            except Exception:
                pass
        self.qemus.clear()


def plan_summary(p):
    """The figures of a plan response compared with QEMU's."""
    return {"converges": bool(p["meets_target"]), "rounds": len(p["rounds"]),
            "total_s": p["total_time_seconds"], "downtime_s": p["downtime_seconds"],
            "bytes": p["bytes_sent"], "syncs": p.get("engine", {}).get("dirty_syncs")}


if __name__ == "__main__":
    # one case from the command line, for exploring:
    # qemuplan.py API_SOCK ATTACH_SOCK BUILD WORKDIR '{"name":..., ...}' [engines]
    b = Bench(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
    case = json.loads(sys.argv[5])
    engines = sys.argv[6].split(",") if len(sys.argv) > 6 else ["default"]
    try:
        row = b.run_case(case, engines=engines)
        for p in row["plans"].values():
            p.pop("curve", None)
        json.dump(row, sys.stdout, indent=1, default=str)
        print()
    finally:
        b.stop_all()

#!/usr/bin/env python3
"""The planner against real QEMU migrations: run the grid, write the table.

    qemu_plan_grid.py run API_SOCK ATTACH_SOCK BUILD WORKDIR OUT.jsonl ENGINES [CASES]
    qemu_plan_grid.py report OUT.jsonl OUT.md [HEADER-TEXT-FILE]

ENGINES: comma-separated plan engines to ask (`default`: no engine= given,
the daemon's default). CASES: comma-separated case names (default: all).
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import qemuplan  # noqa: E402

MiB = 1 << 20
CAP = 10.0  # s: a migration still running then does not converge within the target


def case(name, memory, pattern, wss, rate, bw_mib, down_ms, hot=90):
    return {"name": name, "memory": memory, "pattern": pattern, "wss": wss, "rate": rate,
            "bandwidth": bw_mib * MiB, "downtime_ms": down_ms, "cap_s": CAP, "hot": hot}


# name memory pattern working-set rate(0 = the guest's limit) MiB/s downtime-ms
CASES = [
    case("r2k-1k", "256M", "random", 2000, 1000, 32, 300),
    case("r5k-5k", "256M", "random", 5000, 5000, 64, 100),
    case("r5k-20k", "512M", "random", 5000, 20000, 128, 50),
    case("r20k-5k", "512M", "random", 20000, 5000, 64, 300),
    case("r20k-10k", "512M", "random", 20000, 10000, 128, 100),
    case("r20k-20k-256", "512M", "random", 20000, 20000, 256, 300),
    case("r50k-10k", "1G", "random", 50000, 10000, 128, 300),
    case("r50k-40k", "1G", "random", 50000, 40000, 256, 100),
    case("r100k-20k", "1G", "random", 100000, 20000, 256, 300),
    case("r20k-20k-64", "512M", "random", 20000, 20000, 64, 100),
    case("r50k-30k", "512M", "random", 50000, 30000, 64, 300),
    case("r100k-max", "1G", "random", 100000, 0, 128, 100),
    case("h2k-10k", "256M", "hotcold", 2000, 10000, 32, 300),
    case("h5k-20k", "512M", "hotcold", 5000, 20000, 64, 100),
    case("h5k-40k", "512M", "hotcold", 5000, 40000, 128, 50),
    case("h20k-20k", "1G", "hotcold", 20000, 20000, 128, 300),
    case("h20k-max", "512M", "hotcold", 20000, 0, 256, 100),
    case("h1k-max", "256M", "hotcold", 1000, 0, 32, 50),
    case("s5k-5k", "256M", "sequential", 5000, 5000, 64, 100),
    case("s20k-10k", "512M", "sequential", 20000, 10000, 128, 300),
    case("s50k-20k", "1G", "sequential", 50000, 20000, 256, 100),
    case("s20k-20k", "512M", "sequential", 20000, 20000, 64, 300),
    case("s2k-20k", "256M", "sequential", 2000, 20000, 32, 50),
    case("r2k-40k", "256M", "random", 2000, 40000, 128, 50),
    case("r10k-10k", "256M", "random", 10000, 10000, 32, 300),
    case("r10k-5k-256", "256M", "random", 10000, 5000, 256, 50),
    case("h10k-10k", "1G", "hotcold", 10000, 10000, 64, 300),
    case("r30k-30k", "512M", "random", 30000, 30000, 256, 50),
    case("s10k-40k", "512M", "sequential", 10000, 40000, 256, 300),
    case("r8k-8k", "512M", "random", 8000, 8000, 32, 100),
    case("h50k-max", "1G", "hotcold", 50000, 0, 256, 300),
    case("r3k-max", "256M", "random", 3000, 0, 64, 200),
]


def run(argv):
    api, attach, build, workdir, out, engines = argv[:6]
    names = set(argv[6].split(",")) if len(argv) > 6 and argv[6] else None
    b = qemuplan.Bench(api, attach, build, workdir)
    with open(out, "a") as f:
        for c in CASES:
            if names and c["name"] not in names:
                continue
            t0 = time.monotonic()
            try:
                row = b.run_case(c, engines=engines.split(","),
                                 measured_zero=os.environ.get("GRID_ZERO") == "measured")
            except Exception as e:  # one bad case does not lose the others
                print(f"{c['name']}: {e}", file=sys.stderr, flush=True)
                b.stop_all()
                continue
            row["load"] = open("/proc/loadavg").read().split()[:3]
            row["host"] = qemuplan.host_speeds(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
            q = row["qemu"]
            print(f"{c['name']}: qemu {'conv' if q['completed'] else 'NOT'} "
                  f"{q['total_time_ms']} ms down {q['downtime_ms']} syncs "
                  f"{q['dirty_sync_count']} | " + " | ".join(
                      f"{e} {'conv' if p['meets_target'] else 'NOT'} "
                      f"{p['total_time_seconds']:.2f}s" for e, p in row["plans"].items()) +
                  f" ({time.monotonic() - t0:.0f} s)", flush=True)
    b.stop_all()


def speeds(argv):
    """speeds IN.jsonl OUT.jsonl: rows with qemuplan.host_speeds() set as "host"."""
    with open(argv[1], "w") as out:
        for l in open(argv[0]):
            if l.strip():
                r = json.loads(l)
                r["host"] = qemuplan.host_speeds(r)
                out.write(json.dumps(r) + "\n")


def err(pred, real):
    if pred is None or real is None or real == 0:
        return None
    return abs(pred - real) / real


def pct(v):
    return "-" if v is None else f"{100 * v:.1f} %"


def predictors(rows):
    names = []
    for r in rows:
        for e in r["plans"]:
            if e not in names:
                names.append(e)
    return names


def pred_of(r, e):
    """(converges, total s, downtime s, bytes, syncs) of predictor e for row r."""
    if e == "one-rate":
        o = r["one_rate"]
        return o["converges"], o["total_s"], o["downtime_s"], o["bytes"], None
    if e == "qemu-expected-downtime":
        x = r["qemu"]["expected_downtime_ms"]
        return None, None, None if x is None else x / 1000, None, None
    p = r["plans"][e]
    eng = p.get("engine") or {}
    return (p["meets_target"], p["total_time_seconds"], p["downtime_seconds"], p["bytes_sent"],
            eng.get("dirty_syncs"))


def headline(rows, e):
    agree = n = 0
    et, ed, eb = [], [], []
    for r in rows:
        q = r["qemu"]
        conv, tot, down, byt, _ = pred_of(r, e)
        if conv is not None:
            n += 1
            agree += conv == q["completed"]
        if not q["completed"] or conv is False:
            continue
        for lst, pv, rv in ((et, tot, q["total_time_ms"] / 1000),
                            (ed, down, q["downtime_ms"] / 1000),
                            (eb, byt, q["ram_transferred"])):
            v = err(pv, rv)
            if v is not None:
                lst.append(v)

    def mw(lst):
        return (f"{pct(statistics.median(lst))} / {pct(max(lst))}" if lst else "-")
    return (f"| {e} | {agree}/{n} | {mw(et)} | {mw(ed)} | {mw(eb)} |" if n else
            f"| {e} | - | {mw(et)} | {mw(ed)} | {mw(eb)} |")


def report(argv):
    rows = [json.loads(l) for l in open(argv[0]) if l.strip()]
    out = open(argv[1], "w")
    if len(argv) > 2:
        out.write(open(argv[2]).read())
    engines = predictors(rows)
    out.write(f"\n{len(rows)} cases, {sum(r['qemu']['completed'] for r in rows)} converged "
              f"in QEMU within {CAP:g} s.\n\n")
    out.write("| predictor | verdicts agree | total time: median / worst error | "
              "downtime: median / worst error | bytes: median / worst error |\n"
              "|---|---:|---:|---:|---:|\n")
    for e in engines + ["one-rate", "qemu-expected-downtime"]:
        out.write(headline(rows, e) + "\n")
    out.write("\nErrors are |predicted - QEMU| / QEMU over the cases QEMU and the predictor "
              "both say converge; a verdict is \"completes within the cap\" (plans asked "
              "with target = the cap). qemu-expected-downtime: the last expected-downtime "
              "query-migrate reported while the migration ran.\n\n## Every case\n\n")
    cols = ["case", "MiB", "pattern", "wss", "rate", "guest pages/s", "zero", "MiB/s",
            "limit ms", "load", "QEMU conv", "QEMU total s", "QEMU down ms", "QEMU MiB",
            "QEMU syncs", "QEMU expected ms"]
    for e in engines + ["one-rate"]:
        cols += [f"{e} conv", f"{e} total s", f"{e} down ms", f"{e} MiB", f"{e} rounds"]
    out.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
    for r in rows:
        c, q = r["case"], r["qemu"]
        v = [c["name"], str(qemuplan.dtguest.parse_size(c["memory"]) >> 20), c["pattern"],
             str(c["wss"]), str(c["rate"] or "max"), f"{r['guest_rate']:.0f}",
             f"{r['zero_fraction']:.3f}", str(c["bandwidth"] >> 20), str(c["downtime_ms"]),
             r.get("load", ["?"])[0],
             "1" if q["completed"] else "0",
             f"{q['total_time_ms'] / 1000:.2f}" if q["completed"] else f">{CAP:g}",
             str(q["downtime_ms"]) if q["completed"] else "-",
             f"{q['ram_transferred'] / MiB:.0f}", str(q["dirty_sync_count"]),
             str(q["expected_downtime_ms"])]
        for e in engines + ["one-rate"]:
            conv, tot, down, byt, syncs = pred_of(r, e)
            rounds = r["one_rate"]["rounds"] if e == "one-rate" else len(r["plans"][e]["rounds"])
            v += ["1" if conv else "0", f"{tot:.2f}", f"{1000 * down:.0f}", f"{byt / MiB:.0f}",
                  f"{rounds}" + (f" ({syncs} syncs)" if syncs else "")]
        out.write("| " + " | ".join(v) + " |\n")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2:])
    elif sys.argv[1] == "speeds":
        speeds(sys.argv[2:])
    else:
        report(sys.argv[2:])

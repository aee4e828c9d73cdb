#!/usr/bin/env bash
# Auto-converge's throttle schedule, QEMU 7.2 against the QEMU engine (issue
# 14): dtguest under Debian's QEMU (-accel kvm, libdtqemu.so, 100 ms epochs)
# writes at full speed over 40,000 pages; the daemon's plan with
# auto-converge (engine qemu, default speeds) is asked, then the guest is
# migrated with the same settings and query-migrate's trace gives the dirty
# sync after which each throttle step came. Prints both schedules, the
# totals and the host's real send speed (the ratio to max-bandwidth: the
# engine assumes 1 unless throughput is stated). About 40 s.
#
#   bench/qemu-throttle-schedule.sh [BUILD] [INITIAL] [INCREMENT]
set -euo pipefail
BUILD=${1:-build}
INIT=${2:-20}
INC=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
case $BUILD in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
for b in dirtytrackd libdtqemu.so dtguest.elf; do
	[ -e "$BUILD/$b" ] || { echo "qemu-throttle-schedule: $BUILD/$b missing" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no qemu-system-x86_64" >&2; exit 77; }
[ -w /dev/kvm ] || { echo "SKIP: /dev/kvm is not usable" >&2; exit 77; }
source "$here/lib.sh"
bench_init qemu-throttle
mkdir -p "$TMP/run" "$TMP/g"
"$BUILD/dirtytrackd" --config /dev/null --runtime-dir "$TMP/run" --listen-tcp off --dbus off \
	--epoch 100ms --state-dir "" >"$TMP/daemon.log" 2>&1 &
PIDS+=($!)
wait_attach_socket
[ -S "$TMP/run/attach.sock" ] || { echo "qemu-throttle-schedule: daemon did not start" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); auto-converge $INIT/$INC"
python3 - "$here/../tests/lib" "$TMP/run/api.sock" "$TMP/run/attach.sock" "$BUILD" "$TMP/g" \
	"$INIT" "$INC" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
import dtguest, qemuplan

api, attach, build, work = sys.argv[2:6]
init, inc = int(sys.argv[6]), int(sys.argv[7])
MiB, DOWN_MS, CAP = 1 << 20, 100, 60.0
b = qemuplan.Bench(api, attach, build, work)


def steps(pairs):
    """[(sync, throttle)] -> {throttle: first sync after which it held}"""
    out = {}
    for sync, thr in pairs:
        if thr and thr not in out:
            out[thr] = sync
    return out


try:
    src = b.start_guest("thr-src", "256M")
    g = src.guest()
    g.run(rate=0, pattern="random", wss=40000, seed=5)
    time.sleep(3.0)
    rate = g.measure_rate(1.0)["host_rate"]
    bw = min(64, int(rate * dtguest.PAGE * 0.6) >> 20) * MiB
    zero = qemuplan.zero_fraction(g)
    p = b.plan(src.uuid, "qemu", bw, DOWN_MS, zero, CAP,
               {"cpu_throttle_initial": str(init), "cpu_throttle_increment": str(inc)})
    dst = b.start_dest("thr-dst", src, "256M")
    q = b.migrate(src, dst, f"unix:{work}/thr-dst.mig", bw, DOWN_MS, CAP,
                  parameters={"cpu-throttle-initial": init, "cpu-throttle-increment": inc},
                  capabilities={"auto_converge": True})
    # round k of the plan runs after sync k + 1 (sync 1 is the setup's)
    plan = steps((r["index"] + 1, r["throttle_percent"]) for r in p["rounds"])
    real = steps((t[3], t[5]) for t in q["trace"] if t[3] is not None)
    row = {"qemu": q, "plans": {"qemu": p}, "zero_fraction": zero, "case": {"bandwidth": bw}}
    thr = qemuplan.host_speeds(row)["throughput"] if q["completed"] else None
    print(f"guest {rate:.0f} pages/s, max-bandwidth {bw >> 20} MiB/s, downtime-limit {DOWN_MS} ms")
    print("| throttle | " + " | ".join(f"{t} %" for t in sorted(set(plan) | set(real))) +
          " | completed |")
    print("|---" * (len(set(plan) | set(real)) + 2) + "|")
    for name, s, total in (("QEMU 7.2, after dirty sync", real,
                            f"{q['total_time_ms'] / 1000:.1f} s" if q["completed"] else
                            f"not in {CAP:.0f} s"),
                           ("plan (engine qemu), after sync", plan,
                            f"{p['total_time_seconds']:.1f} s" if p["converges"] else "no")):
        print(f"| {name} | " + " | ".join(str(s.get(t, "-")) for t in
                                        sorted(set(plan) | set(real))) + f" | {total} |")
    print(f"QEMU's send speed after the bulk round: "
          f"{thr / bw:.2f} x max-bandwidth" if thr else "QEMU's send speed: unknown")
finally:
    b.stop_all()
PY

#!/usr/bin/env bash
# dtguest under stock QEMU (-accel kvm): guest write throughput with RUN at
# an unlimited rate (uniform random over the whole test region of a 256 MiB
# guest), DURATION seconds (default 10) after a 1 s warm-up, measured by the
# host clock from the guest's own counters. Plain QEMU first; then, when
# DTQ_PRELOAD=path names an existing library (build/libdtqemu.so by default
# if present), the same run with LD_PRELOAD=$DTQ_PRELOAD and DIRTYTRACK_SOCKET at a
# dirtytrackd started here (unless DIRTYTRACK_SOCKET is already set), and the ratio.
# Usage: bench/bench-qemu.sh [BUILD]   (REPS=n: median of n runs each)
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
export BUILD
DURATION=${DURATION:-10}
REPS=${REPS:-1}
MEMORY=${MEMORY:-256M}
PRELOAD=${DTQ_PRELOAD:-}
if [ -z "$PRELOAD" ] && [ -f "$BUILD/libdtqemu.so" ]; then PRELOAD="$BUILD/libdtqemu.so"; fi
here=$(cd "$(dirname "$0")" && pwd)
dtg() { python3 "$here/../tests/lib/dtguest.py" "$@"; }

for c in qemu-system-x86_64 python3 jq; do
	command -v "$c" >/dev/null || { echo "bench-qemu: SKIPPED: $c is missing"; exit 0; }
done
python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null ||
	{ echo "bench-qemu: SKIPPED: /dev/kvm is not usable"; exit 0; }
[ -f "$BUILD/dtguest.elf" ] || { echo "bench-qemu: SKIPPED: no $BUILD/dtguest.elf (gcc -m32?)"; exit 0; }
if [ -n "$PRELOAD" ] && [ ! -f "$PRELOAD" ]; then echo "bench-qemu: DTQ_PRELOAD=$PRELOAD does not exist"; exit 1; fi

TMP=$(mktemp -d /tmp/bench-qemu.XXXXXX)
RAM=/dev/shm/bench-qemu-$$.ram
DPID=""
cleanup() {
	if [ -f "$TMP/g.pid" ]; then kill -9 "$(cat "$TMP/g.pid")" 2>/dev/null || true; fi
	if [ -n "$DPID" ]; then
		kill "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	rm -f "$RAM"
	rm -rf "$TMP"
}
trap cleanup EXIT

# rate [start args...]: pages/s, median of REPS runs
rate() {
	local r
	for _ in $(seq "$REPS"); do
		dtg start --workdir "$TMP" --name g --memory "$MEMORY" --mem-file "$RAM" \
			--pidfile "$TMP/g.pid" "$@" >"$TMP/start.json" 2>"$TMP/start.err" ||
			{ echo "bench-qemu: QEMU did not start: $(tail -3 "$TMP/start.err")" >&2; return 1; }
		dtg cmd --mem "$RAM" run --rate 0 --pattern random --seed 1 >/dev/null
		sleep 1
		r=$(dtg cmd --mem "$RAM" rate --seconds "$DURATION" | jq '.host_rate | floor')
		dtg stop --qmp "$TMP/g.qmp" --pidfile "$TMP/g.pid" --mem-file "$RAM"
		rm -f "$TMP/g.pid"
		echo "$r"
	done | sort -n | awk '{ a[NR] = $1 } END { printf "%d", a[int((NR + 1) / 2)] }'
}

pages=$((($(python3 -c "import sys; sys.path.insert(0, '$here/../tests/lib'); import dtguest; print(dtguest.parse_size('$MEMORY'))") - (64 << 20)) / 4096))
echo "bench-qemu: RUN unlimited, random over $pages test pages of a $MEMORY guest, ${DURATION}s, 1 vCPU"
plain=$(rate)
printf '%-44s %10s pages/s\n' "plain QEMU (no dirty logging)" "$plain"
if [ -z "$PRELOAD" ]; then
	echo "bench-qemu: preload half skipped (set DTQ_PRELOAD=path; $BUILD/libdtqemu.so absent)"
	exit 0
fi
ENVARGS=()
if [ -z "${DIRTYTRACK_SOCKET:-}" ]; then
	[ -x "$BUILD/dirtytrackd" ] || { echo "bench-qemu: no $BUILD/dirtytrackd for DIRTYTRACK_SOCKET"; exit 1; }
	"$BUILD/dirtytrackd" --config /dev/null --state-dir "" --dbus off --runtime-dir "$TMP/run" \
		--listen-tcp off >"$TMP/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
	ENVARGS=(--env "DIRTYTRACK_SOCKET=$TMP/run/attach.sock")
fi
pre=$(rate --preload "$PRELOAD" "${ENVARGS[@]}")
printf '%-44s %10s pages/s\n' "with LD_PRELOAD=$(basename "$PRELOAD")" "$pre"
awk -v a="$pre" -v b="$plain" 'BEGIN { printf "ratio preload/plain: %.3f\n", b ? a / b : 0 }'

# The library's harvest cost and the latency from a guest write to REST, at
# 1 s and 100 ms epochs: a fresh daemon each, the guest idle but for single
# page WRITEs; latency = host time from the guest's ack of the write to the
# first moment REST counts it in a closed epoch (polled every 2 ms).
# The harvest cost is the library's own timing of the daemon's SYNC_BITMAPs
# (DIRTYTRACK_LOG, logged when the connection ends).
for EPOCH in 1s 100ms; do
	rm -rf "$TMP/run2" && mkdir -p "$TMP/run2"
	"$BUILD/dirtytrackd" --config /dev/null --state-dir "" --dbus off --runtime-dir "$TMP/run2" \
		--listen-tcp off --epoch "$EPOCH" >"$TMP/daemon2.log" 2>&1 &
	D2=$!
	for _ in $(seq 100); do [ -S "$TMP/run2/api.sock" ] && break; sleep 0.05; done
	rm -f "$TMP/lat.dtq"
	EPOCH=$EPOCH TMP=$TMP LIBDIR="$here/../tests/lib" PRELOAD="$PRELOAD" MEMORY=$MEMORY python3 - <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["LIBDIR"])
import dtguest
from dtapi import Api
tmp = os.environ["TMP"]
api = Api(f"{tmp}/run2/api.sock")
q = dtguest.Qemu(f"{tmp}/lat", name="lat", memory=os.environ["MEMORY"], preload=os.environ["PRELOAD"],
                 env={"DIRTYTRACK_SOCKET": f"{tmp}/run2/attach.sock", "DIRTYTRACK_LOG": f"{tmp}/lat.dtq"})
q.start()
g = q.guest()
while not ((v := api.try_vm(q.uuid)) and v["state"] == "attached"):
    time.sleep(0.05)
t = dtguest.TEST // dtguest.PAGE
lat = []
for i in range(10 if os.environ["EPOCH"] == "1s" else 30):
    ph = g.write(1, pattern="random", seed=100 + i)
    t0 = time.monotonic()
    # the guest is idle otherwise: the first closed epoch that counts new pages has it
    n0 = api.vm(q.uuid)["counters"]["dirtied_pages"]
    while api.vm(q.uuid)["counters"]["dirtied_pages"] == n0:
        time.sleep(0.002)
    lat.append(time.monotonic() - t0)
lat.sort()
print(f"write-to-REST latency, {os.environ['EPOCH']} epochs: median {lat[len(lat)//2]*1e3:.0f} ms, "
      f"max {lat[-1]*1e3:.0f} ms over {len(lat)} writes")
with open(f"{tmp}/lat.uuid", "w") as f:
    f.write(q.uuid)
PY
	kill "$D2"
	wait "$D2" 2>/dev/null || true
	sleep 0.3
	grep -o 'harvest: .*' "$TMP/lat.dtq" | sed "s/^/library $EPOCH epochs: /" || echo "library $EPOCH epochs: no harvest line"
	pkill -f "dtguest-$$-lat\|name lat " 2>/dev/null || true
	pkill -f "$TMP/lat/lat.qmp" 2>/dev/null || true
done

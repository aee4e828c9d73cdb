#!/usr/bin/env bash
# dtguest under stock QEMU (-accel kvm): guest write throughput with RUN at
# an unlimited rate (uniform random over the whole test region of a 256 MiB
# guest), DURATION seconds (default 10) after a 1 s warm-up, measured by the
# host clock from the guest's own counters. Plain QEMU first; then, when
# DTQ_PRELOAD=path names an existing library (build/libdtqemu.so by default
# if present), the same run with LD_PRELOAD=$DTQ_PRELOAD and DTQ_SOCKET at a
# dirtytrackd started here (unless DTQ_SOCKET is already set), and the ratio.
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
if [ -z "${DTQ_SOCKET:-}" ]; then
	[ -x "$BUILD/dirtytrackd" ] || { echo "bench-qemu: no $BUILD/dirtytrackd for DTQ_SOCKET"; exit 1; }
	"$BUILD/dirtytrackd" --config /dev/null --state-dir "" --dbus off --runtime-dir "$TMP/run" \
		--listen-tcp off >"$TMP/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
	ENVARGS=(--env "DTQ_SOCKET=$TMP/run/attach.sock")
fi
pre=$(rate --preload "$PRELOAD" "${ENVARGS[@]}")
printf '%-44s %10s pages/s\n' "with LD_PRELOAD=$(basename "$PRELOAD")" "$pre"
awk -v a="$pre" -v b="$plain" 'BEGIN { printf "ratio preload/plain: %.3f\n", b ? a / b : 0 }'

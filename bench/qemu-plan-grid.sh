#!/usr/bin/env bash
# The planner against real local QEMU live migrations (issue 14): each case
# boots the project's bare-metal guest (dtguest) under Debian's QEMU with
# -accel kvm, tracked through libdtqemu.so by a real daemon (100 ms epochs),
# runs a writer, asks the daemon's REST plan for that running guest just
# before `migrate` (bandwidth = max-bandwidth, downtime = downtime-limit,
# target = the cap), then migrates it to a second local QEMU and sets
# query-migrate's figures beside the plan's (bench/qemu_plan_grid.py).
#
#   bench/qemu-plan-grid.sh [BUILD] [OUT.md] [ENGINES] [CASES]
#     ENGINES: plan engines asked, comma-separated (default: default,ideal,qemu;
#              "default" is the daemon's own choice); CASES: case names.
# Environment: KEEP=FILE keeps the raw rows (JSON lines); GRID_ZERO=measured asks
# the plans without ?zero_fraction= (the daemon plans with its measured share).
set -euo pipefail
BUILD=${1:-build}
OUT=${2:-bench/qemu-plan-grid.md}
ENGINES=${3:-ideal,qemu}
CASES=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
case $BUILD in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
for b in dirtytrackd libdtqemu.so dtguest.elf; do
	[ -e "$BUILD/$b" ] || { echo "qemu-plan-grid: $BUILD/$b missing (make BUILD=... all)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "qemu-plan-grid: no qemu-system-x86_64" >&2; exit 77; }
TMP=$(mktemp -d /tmp/dt-qemu-grid.XXXXXX)
DAEMON=""
cleanup() {
	[ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
	[ -n "${KEEP:-}" ] && [ -f "$TMP/rows.jsonl" ] && cp "$TMP/rows.jsonl" "$KEEP"
	rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/run" "$TMP/g"
"$BUILD/dirtytrackd" --config /dev/null --runtime-dir "$TMP/run" --listen-tcp off --dbus off \
	--epoch 100ms --state-dir "" >"$TMP/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
[ -S "$TMP/run/attach.sock" ] || { echo "qemu-plan-grid: daemon did not start" >&2; exit 1; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$here/qemu_plan_grid.py" run "$TMP/run/api.sock" "$TMP/run/attach.sock" "$BUILD" \
	"$TMP/g" "$TMP/rows.jsonl" "$ENGINES" "$CASES"
cat >"$TMP/head.md" <<EOF
# Migration planner vs real QEMU live migrations

Generated $(date -Iseconds) on $(uname -r), $(nproc) CPUs, commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo none),
$(qemu-system-x86_64 --version | head -n1), by:

\`\`\`
bench/qemu-plan-grid.sh ${1:-build} ${2:-bench/qemu-plan-grid.md} $ENGINES $CASES
\`\`\`

Load average at the start: $load0 (the host is shared; the daemon measures the guest's
real rate, and each row gives the load at its migration).
Each case: dtguest under \`qemu-system-x86_64 -accel kvm\` with libdtqemu.so, 100 ms epochs,
about 4 s of the writer before the plan is asked; max-bandwidth and downtime-limit as in
the row; the destination a second local QEMU (unix socket); cancelled after the cap.
zero: the share of zero pages in the guest's RAM when the plan is asked (given to every
predictor as zero_fraction). one-rate: pre-copy with the dirty rate of the plan's 1 s
window, constant.
EOF
python3 "$here/qemu_plan_grid.py" report "$TMP/rows.jsonl" "$OUT" "$TMP/head.md"
# the QEMU engine replayed on the same rows with the host's speeds stated
# (bench_qemu_replay: own = this migration's, previous = the grid's last one's)
if [ -x "$BUILD/bench/bench_qemu_replay" ] && grep -q '"qemu"' "$TMP/rows.jsonl"; then
	{
		echo
		echo "## The QEMU engine with the host's speeds stated"
		echo
		echo "The engine model (this commit) replayed on every row's curve and inputs with"
		echo "throughput, zero-page cost and stop-and-copy speed measured from query-migrate's"
		echo "trace (tests/lib/qemuplan.py host_speeds): own those of the same migration"
		echo "(judges the rules alone; total time is partly fitted by the zero-page cost,"
		echo "bytes and syncs are not), previous those of the grid's previous migration"
		echo "(what an operator knows from the host's last migration), none the defaults."
		for sp in none own previous; do
			echo
			echo "speeds=$sp:"
			echo '```'
			"$BUILD/bench/bench_qemu_replay" "$TMP/rows.jsonl" speeds=$sp
			echo '```'
		done
	} >>"$OUT"
fi
echo "qemu-plan-grid: wrote $OUT"

#!/usr/bin/env bash
# Run every benchmark against one build tree: bench/run.sh BUILD
# (make bench calls it). A header line names the date, CPU and kernel, so
# figures pasted elsewhere keep their context.
set -uo pipefail
BUILD=${1:-${BUILD:-build}}
here=$(cd "$(dirname "$0")" && pwd)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# dirtytrackd bench: $(date -Iseconds) | CPU: ${cpu:-unknown} x $(nproc) |" \
	"kernel: $(uname -r) | load: $(cut -d' ' -f1-3 /proc/loadavg) |" \
	"commit: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo none)"

rc=0
run() {
	echo "## $*"
	"$@" || { echo "## FAILED ($?): $*"; rc=1; }
}
run "$BUILD/bench/bench_harvest"
run "$BUILD/bench/bench_stats"
run "$here/bench-kvm.sh" "$BUILD"
run "$here/bench-qemu.sh" "$BUILD"
run "$here/bench-loop.sh" "$BUILD"
run "$here/bench-churn.sh" "$BUILD"
exit $rc

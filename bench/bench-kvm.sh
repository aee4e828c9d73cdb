#!/usr/bin/env bash
# Real-KVM guest write throughput per collection mode, side by side:
#   off      dirty logging off (dtvm --no-tracking)
#   self     dtvm harvests its own rings/bitmap (--self-harvest): KVM's cost
#   daemon   attached to dirtytrackd harvesting at the same interval
# for harvest intervals of 1 s and 100 ms, one vCPU writing as fast as it
# can (uniform over 64k pages of 512 MiB). Also the daemon's CPU time per
# harvested ring entry / bitmap page. Usage: bench/bench-kvm.sh [BUILD]
# (REPS=n repeats each run and keeps the median; DURATION=seconds.)
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
DURATION=${DURATION:-3}
REPS=${REPS:-1}
TMP=$(mktemp -d /tmp/bench-kvm.XXXXXX)
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

rc=0
"$BUILD/dtvm" --self-harvest 10ms --duration 200ms --memory 4M >"$TMP/pre.log" 2>&1 || rc=$?
if [ $rc -eq 77 ]; then
	echo "bench-kvm: SKIPPED: $(cat "$TMP/pre.log")"
	exit 0
fi
[ $rc -eq 0 ] || { cat "$TMP/pre.log"; exit 1; }

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# rate MODE ARGS...: guest writes per second (median of REPS runs)
rate() {
	local mode=$1
	shift
	for _ in $(seq "$REPS"); do
		"$BUILD/dtvm" --mode "$mode" --memory 512M --wss 65536 --vcpus 1 --rate max \
			--duration "$DURATION" --truth "$TMP/t.json" "$@" >/dev/null 2>&1
		jq .guest_writes_per_second "$TMP/t.json"
	done | sort -n | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] }'
}

printf '%-12s %-6s %10s %10s %10s %8s %8s %14s\n' mode epoch off/s self/s daemon/s \
	self% daemon% "daemon ns/page"
for mode in ring bitmap ring+bitmap; do
	off=$(rate "$mode" --no-tracking)
	for epoch in 1s 100ms; do
		self=$(rate "$mode" --self-harvest "$epoch")
		"$BUILD/dirtytrackd" --runtime-dir "$TMP/run" --listen-tcp off --epoch "$epoch" \
			>"$TMP/daemon.log" 2>&1 &
		DPID=$!
		for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
		c0=$(cpu_ticks $DPID)
		att=$(rate "$mode" --connect "$TMP/run/attach.sock" --name "bench")
		c1=$(cpu_ticks $DPID)
		pages=$(curl -sf --unix-socket "$TMP/run/api.sock" http://localhost/v1/vms |
			jq '[.vms[].counters | .ring_entries + .bitmap_pages] | add // 0' 2>/dev/null || echo 0)
		[ "$pages" = 0 ] && pages=$(curl -sf --unix-socket "$TMP/run/api.sock" \
			http://localhost/v1/vms/bench | jq '.counters.ring_entries + .counters.bitmap_pages')
		kill $DPID
		wait $DPID 2>/dev/null || true
		DPID=""
		rm -rf "$TMP/run"
		awk -v m="$mode" -v e="$epoch" -v o="$off" -v s="$self" -v a="$att" \
			-v c=$((c1 - c0)) -v t="$ticks" -v p="$pages" 'BEGIN {
			printf "%-12s %-6s %10d %10d %10d %7.1f%% %7.1f%% %14.0f\n", m, e, o, s, a,
				100 * (s - o) / o, 100 * (a - s) / s, p ? c / t * 1e9 / p : 0 }'
	done
done
echo "self%: self-harvest vs tracking off (KVM's dirty-logging cost);" \
	"daemon%: attached vs self-harvest (what the daemon adds). Noise on this host: about +-10%."

#!/usr/bin/env bash
# The planner's dirty-limit recommendation works: a VM whose busiest vCPU
# dirties memory faster than the link can carry does not converge in the
# pre-copy replay; the planner, given the daemon's per-vCPU curves, names
# that vCPU and a limit; the same workload re-run with dtsim --dirty-limit
# at that limit converges in the replay (and the planner agrees).
source "$(dirname "$0")/../lib/common.sh"
[ -x "$BUILD/bench/bench_plan" ] || skip "$BUILD/bench/bench_plan not built (make BUILD=$BUILD $BUILD/bench/bench_plan)"
start_daemon --epoch 100ms

BW=1Gbit
DOWNTIME=300ms
TARGET=120s
run_sim() { # name duration [extra dtsim args...]
	local name=$1 duration=$2
	shift 2
	"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name "$name" --memory 256M --vcpus 4 \
		--vcpu-rates 6,1,1,1 --pattern uniform --rate 40000 --duration "$duration" --seed 7 \
		--trace "$TMP/$name.trace" "$@" >"$TMP/$name.log" 2>&1
}
plan() { # trace [extra bench_plan args...]
	local trace=$1
	shift
	"$BUILD/bench/bench_plan" --trace "$trace" --memory 256M --bandwidth "$BW" \
		--downtime "$DOWNTIME" --target "$TARGET" --plan "$@"
}

# 1. the hot VM, its per-vCPU curves read from the daemon while it runs
run_sim hot 15 &
SIM=$!
BG_PIDS+=($SIM)
wait_until 5 api /v1/vms/hot || fail "dtsim did not attach"
sleep 12
api /v1/vms/hot >"$TMP/hot.json" || fail "GET /v1/vms/hot"
wait $SIM || fail "dtsim failed: $(cat "$TMP/hot.log")"
[ "$(jq '.vcpus_detail | length' "$TMP/hot.json")" = 4 ] || fail "no per-vCPU curves"

plan "$TMP/hot.trace" --vcpu-json "$TMP/hot.json" >"$TMP/hot.plan" || fail "bench_plan failed"
grep -v "^  round" "$TMP/hot.plan"
jq -c "[.vcpus_detail[] | [.wss[] | .pages]]" "$TMP/hot.json"
grep -q '^replay: does not converge' "$TMP/hot.plan" || fail "the hot VM converges without a throttle: no test"
grep -q '^plan: does not converge' "$TMP/hot.plan" || fail "the planner says the hot VM converges"
grep -q '^recommendation: throttle' "$TMP/hot.plan" || fail "no throttle recommended"
read -r _ limit _ vcpus < <(grep '^limit ' "$TMP/hot.plan")
echo "ok: recommended dirty limit $limit pages/s for vCPU(s) $vcpus"
[ "$vcpus" = 0 ] || fail "expected only vCPU 0 (the busiest) to be throttled, got '$vcpus'"

# 2. the same workload with the limit applied (dtsim paces vCPUs above it)
run_sim throttled 15 --dirty-limit "$limit" || fail "throttled dtsim failed: $(cat "$TMP/throttled.log")"
plan "$TMP/throttled.trace" >"$TMP/throttled.plan" || fail "bench_plan failed"
grep -v '^  round' "$TMP/throttled.plan"
grep -q '^replay: converges' "$TMP/throttled.plan" || fail "with the limit the replay does not converge"
grep -q '^plan: converges' "$TMP/throttled.plan" || fail "with the limit the planner says it does not converge"
total=$(awk '/^replay:/ { for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' "$TMP/throttled.plan")
awk -v t="$total" 'BEGIN { exit !(t <= 120) }' || fail "converges in $total s, beyond the 120 s target"
echo "ok: with --dirty-limit $limit the replayed migration converges in $total s"

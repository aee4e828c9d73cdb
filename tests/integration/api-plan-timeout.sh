#!/usr/bin/env bash
# A REST plan or evacuation parked for the planner thread waits at most
# [api] plan_timeout: a planner starved of CPU (the sanitizer build's
# DT_PLANT=plan-slow makes every plan take 3 s more) answers 503 with
# Retry-After, naming the key, at the timeout; nothing else waits on it
# (health and the VM answer at once meanwhile), and a plan that finishes in
# time is still served (the negative control: plan_timeout above the delay).
# On the old code a parked plan had no deadline: the client waited the 3 s.
# Skipped where the build has no plants (not SAN=1).
source "$(dirname "$0")/../lib/common.sh"
printf '[api]\nplan_timeout = 500ms\n' >"$TMP/short.conf"
DT_PLANT=plan-slow start_daemon --config "$TMP/short.conf" --epoch 100ms
grep -q "planted bug 'plan-slow' is on" "$TMP/daemon.log" ||
	skip "$BUILD/dirtytrackd has no planted faults (build it with SAN=1)"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name p --memory 64M --vcpus 2 --rate 5000 --wss 4000 \
	--duration 60 --seed 1 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 vm_state_is p attached || fail "the VM did not attach: $(cat "$TMP/sim.log")"
sleep 1

# timed GET: prints "status seconds", the headers in $TMP/h, the body in $TMP/b
timed() {
	curl -s -o "$TMP/b" -D "$TMP/h" -w '%{http_code} %{time_total}\n' --max-time 20 \
		--unix-socket "$API_SOCK" "http://localhost$1"
}
read -r code secs < <(timed "/v1/vms/p/plan?bandwidth=1Gbit&downtime=300ms")
echo "plan with a 3 s planner and plan_timeout 500ms: $code in $secs s"
[ "$code" = 503 ] || fail "a plan past plan_timeout got $code: $(cat "$TMP/b")"
awk -v s="$secs" 'BEGIN { exit !(s >= 0.45 && s < 2.5) }' ||
	fail "the 503 came after $secs s, not at the 500 ms timeout"
grep -qi '^retry-after:' "$TMP/h" || fail "the 503 has no Retry-After"
grep -q 'plan_timeout' "$TMP/b" || fail "the 503 does not name [api] plan_timeout: $(cat "$TMP/b")"
echo "ok: a plan past plan_timeout is a 503 at the timeout, with Retry-After, naming the key"

# Meanwhile the loop serves everything else at once.
timed "/v1/vms/p/plan?bandwidth=1Gbit&downtime=301ms" >/dev/null &
PLAN=$!
sleep 0.1
read -r code secs < <(timed "/v1/health")
[ "$code" = 200 ] || fail "health during a parked plan: $code"
awk -v s="$secs" 'BEGIN { exit !(s < 0.4) }' || fail "health took $secs s while a plan was parked"
wait $PLAN || true
echo "ok: health answered in $secs s while a plan was parked"

read -r code secs < <(timed "/v1/evacuation?bandwidth=1Gbit&downtime=300ms")
echo "evacuation: $code in $secs s"
# the planner is still busy with the dropped plans: a 503 either way, never a wait past the timeout
[ "$code" = 503 ] || fail "an evacuation past plan_timeout got $code: $(cat "$TMP/b")"
awk -v s="$secs" 'BEGIN { exit !(s < 2.5) }' || fail "the evacuation's 503 came after $secs s"
echo "ok: an evacuation past plan_timeout is a 503 too"
stop_daemon

# Negative control: with room for the delay, the same plan is served.
printf '[api]\nplan_timeout = 20s\n' >"$TMP/long.conf"
DT_PLANT=plan-slow start_daemon --config "$TMP/long.conf" --epoch 100ms
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name p --memory 64M --vcpus 2 --rate 5000 --wss 4000 \
	--duration 60 --seed 1 >"$TMP/sim2.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 vm_state_is p attached || fail "the VM did not attach: $(cat "$TMP/sim2.log")"
sleep 1
read -r code secs < <(timed "/v1/vms/p/plan?bandwidth=1Gbit&downtime=300ms")
echo "plan with a 3 s planner and plan_timeout 20s: $code in $secs s"
[ "$code" = 200 ] || fail "a plan within plan_timeout got $code: $(cat "$TMP/b")"
awk -v s="$secs" 'BEGIN { exit !(s >= 2.9) }' || fail "the planted delay did not apply ($secs s)"
echo "ok: negative control: within plan_timeout the slow plan is served (200 after $secs s)"
daemon_alive || fail "daemon died"

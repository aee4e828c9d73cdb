#!/usr/bin/env bash
# A D-Bus Plan, PlanWith or Evacuate waits for the planner thread at most [api]
# plan_timeout, as REST does (api-plan-timeout): with the sanitizer build's
# DT_PLANT=plan-slow (every plan 3 s slower) and plan_timeout 500ms the call
# fails with org.freedesktop.DBus.Error.Timeout at the timeout, naming the
# key, and the daemon lives on when the dropped plan completes later (ASan
# would catch its reply to a freed call). Negative control: with room for
# the delay the same call returns the plan. On the old code the caller
# waited the 3 s (or its own bus timeout with a stuck planner).
# Skipped where the build has no plants (not SAN=1).
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/dbus-lib.inc"

start_bus
run_case() { # PLAN_TIMEOUT
	printf '[api]\nplan_timeout = %s\n' "$1" >"$TMP/dt-$1.conf"
	DT_PLANT=plan-slow start_daemon --config "$TMP/dt-$1.conf" --dbus system --epoch 100ms
	grep -q "planted bug 'plan-slow' is on" "$TMP/daemon.log" ||
		skip "$BUILD/dirtytrackd has no planted faults (build it with SAN=1)"
	wait_name
	sim p 60 --memory 64M --rate 5000 --wss 4000 --seed 1
	wait_until 10 vm_state_is p attached || fail "the VM did not attach"
	sleep 1
	P=$(vm_path p)
}
# timed_plan: prints "rc seconds"; the reply or error in $TMP/plan.out
timed_plan() {
	local t0 t1 rc=0
	t0=$(date +%s%N)
	busctl --system --timeout=20 call "$DBUS_NAME" "$P" "$DBUS_VM" Plan tt 125000000 300000 \
		>"$TMP/plan.out" 2>&1 || rc=$?
	t1=$(date +%s%N)
	echo "$rc $(((t1 - t0) / 1000000))"
}

run_case 500ms
read -r rc ms < <(timed_plan)
echo "Plan with a 3 s planner and plan_timeout 500ms: exit $rc after $ms ms: $(head -c 300 "$TMP/plan.out")"
[ "$rc" != 0 ] || fail "a plan past plan_timeout was answered: $(cat "$TMP/plan.out")"
[ "$ms" -ge 450 ] && [ "$ms" -lt 2500 ] || fail "the error came after $ms ms, not at the 500 ms timeout"
grep -q 'plan_timeout' "$TMP/plan.out" || fail "the error does not name [api] plan_timeout"
# PlanWith takes the same path
busctl --system --timeout=20 call "$DBUS_NAME" "$P" "$DBUS_VM" PlanWith tta{sv} 125000000 300000 \
	1 engine s ideal >"$TMP/planwith.out" 2>&1 && fail "PlanWith past plan_timeout was answered"
grep -q 'plan_timeout' "$TMP/planwith.out" || fail "PlanWith: $(cat "$TMP/planwith.out")"
# and Manager.Evacuate (the planner is still busy with the dropped plans)
t0=$(date +%s%N)
busctl --system --timeout=20 call "$DBUS_NAME" "$DBUS_PATH" "$DBUS_MGR" Evacuate ttu 125000000 \
	300000 1 >"$TMP/evac.out" 2>&1 && fail "Evacuate past plan_timeout was answered: $(cat "$TMP/evac.out")"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q 'plan_timeout' "$TMP/evac.out" || fail "Evacuate: $(cat "$TMP/evac.out")"
[ "$ms" -lt 2500 ] || fail "Evacuate's error came after $ms ms"
echo "ok: Plan, PlanWith and Evacuate past plan_timeout fail at the timeout, naming the key"
sleep 7 # the dropped plans complete on the planner thread meanwhile
daemon_alive || fail "the daemon died when a dropped plan completed"
busctl --system get-property "$DBUS_NAME" "$P" "$DBUS_VM" State >/dev/null ||
	fail "the VM object no longer answers after the dropped plans"
echo "ok: the daemon lives on after the dropped plans completed"
stop_daemon

run_case 20s
read -r rc ms < <(timed_plan)
echo "Plan with a 3 s planner and plan_timeout 20s: exit $rc after $ms ms"
[ "$rc" = 0 ] || fail "a plan within plan_timeout failed: $(cat "$TMP/plan.out")"
[ "$ms" -ge 2900 ] || fail "the planted delay did not apply ($ms ms)"
echo "ok: negative control: within plan_timeout the slow plan is answered"

#!/usr/bin/env bash
# The configuration key table, from the outside: a bad value names file,
# line, section, key, value and range; --cat-config ends with every key's
# value, which read back gives the same values; limits that were constants
# are keys that take effect: [api] pages_limit (the default ?limit= of epoch
# pages; a reload applies it, and the log says so with the new value),
# [api] max_plan_rounds (the largest ?max_rounds=) and
# [api] max_pending_plans (a restart key: a reload keeps the running value
# and says so; at 1, concurrent plans get a 503 that names the limit).
# On the old code the keys are unknown: --test-config refuses them.
source "$(dirname "$0")/../lib/common.sh"
command -v jq >/dev/null || skip "jq is missing"

# --- a bad value: FILE:LINE: [section] key = value: what, with the range
printf '[daemon]\nepoch = 2s\n\n[api]\npages_limit = 0\n' >"$TMP/bad.conf"
! "$BUILD/dirtytrackd" --config "$TMP/bad.conf" --test-config 2>"$TMP/bad.err" || fail "pages_limit = 0 accepted"
grep -qF "$TMP/bad.conf:5: [api] pages_limit = 0: must be a number from 1 to 100000" "$TMP/bad.err" ||
	fail "the error does not name file, line, key, value and range: $(cat "$TMP/bad.err")"
printf '[daemon]\nstate_queue_size = 1T\n' >"$TMP/bad2.conf"
! "$BUILD/dirtytrackd" --config "$TMP/bad2.conf" --test-config 2>"$TMP/bad2.err" || fail "state_queue_size = 1T accepted"
grep -qF "$TMP/bad2.conf:2: [daemon] state_queue_size = 1T: must be a size from 1M to 64G" "$TMP/bad2.err" ||
	fail "state_queue_size: $(cat "$TMP/bad2.err")"
echo "ok: a bad value names file, line, section, key, value and range ($(cat "$TMP/bad.err"))"

# --- --cat-config: every key's value, which reads back as the same
cat >"$TMP/dt.conf" <<'EOF'
[daemon]
epoch = 1.5s
state_queue = 64
state_queue_size = 3M
state_drain_timeout = 2min
[attach]
max_memory = 1536M
[api]
pages_limit = 3
max_pending_plans = 1
max_plan_rounds = 150
max_wait = 90
[metrics]
wss_windows = 2s 1min
EOF
"$BUILD/dirtytrackd" --config "$TMP/dt.conf" --cat-config >"$TMP/cat1" || fail "--cat-config: $(cat "$TMP/cat1")"
sed -n '/^# every key.s value/,$p' "$TMP/cat1" | tail -n +2 >"$TMP/effective.conf"
n=$(grep -c '^[a-z_]* =' "$TMP/effective.conf")
[ "$n" = "$("$BUILD/dirtytrackd" --dump-config-keys | wc -l)" ] || fail "--cat-config shows $n keys, the table has more"
for kv in 'epoch = 1500ms' 'state_queue = 64' 'state_drain_timeout = 2min' 'max_memory = 1536M' \
	'pages_limit = 3' 'max_wait = 90s' 'wss_windows = 2s, 60s' 'socket_mode = 0660'; do
	grep -qxF "$kv" "$TMP/effective.conf" || fail "--cat-config lacks '$kv'"
done
"$BUILD/dirtytrackd" --config "$TMP/effective.conf" --cat-config >"$TMP/cat2" || fail "--cat-config of its own output"
sed -n '/^# every key.s value/,$p' "$TMP/cat2" | tail -n +2 | cmp -s - "$TMP/effective.conf" ||
	fail "--cat-config's values read back differ: $(sed -n '/^# every key.s value/,$p' "$TMP/cat2" | diff - "$TMP/effective.conf")"
echo "ok: --cat-config shows all $n keys' values; read back they are the same"

# --- pages_limit: the default page size, applied by a reload
start_daemon --config "$TMP/dt.conf" --epoch 200ms
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name spread --memory 256M --mode bitmap --rate 20000 \
	--duration 120 --seed 5 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 api /v1/vms/spread || fail "spread did not attach"
wait_until 15 sh -c "[ \"\$(curl -sf --unix-socket '$API_SOCK' http://l/v1/vms/spread/history | jq '.epochs[-1].pages')\" -gt 100 ]" ||
	fail "no epoch with more than 100 pages"
E=$(api /v1/vms/spread/history | jq '.epochs[-1].epoch')
api "/v1/vms/spread/epochs/$E/pages" >"$TMP/p1" || fail "pages"
jq -e '.limit == 3 and (.ranges | length) == 3 and (.next | type == "string")' "$TMP/p1" >/dev/null ||
	fail "pages_limit = 3 not the default page: $(jq -c '{limit, n: (.ranges | length), next}' "$TMP/p1")"
api "/v1/vms/spread/epochs/$E/pages?limit=7" | jq -e '.limit == 7 and (.ranges | length) == 7' >/dev/null ||
	fail "?limit=7 is not served over pages_limit"
echo "ok: pages_limit = 3 is the default page ($(jq -r .next "$TMP/p1") next), ?limit= still wins"

# --- state_queue_size reaches the state writer: /metrics shows its bound
api /metrics | grep -qx 'dirtytrackd_state_queue_limit_bytes 3145728' ||
	fail "state_queue_size = 3M: $(api /metrics | grep state_queue_limit)"
echo "ok: state_queue_size = 3M is the state writer's bound in /metrics"

# --- max_plan_rounds = 150: ?max_rounds= up to it, and a 400 naming it above
code=$(curl -s -o "$TMP/r150" -w '%{http_code}' --unix-socket "$API_SOCK" "http://l/v1/vms/spread/plan?bandwidth=1Gbit&downtime=300ms&max_rounds=150")
[ "$code" = 200 ] && jq -e '.inputs.max_rounds == 150' "$TMP/r150" >/dev/null || fail "max_rounds=150 under max_plan_rounds = 150: $code $(head -c 300 "$TMP/r150")"
code=$(curl -s -o "$TMP/r151" -w '%{http_code}' --unix-socket "$API_SOCK" "http://l/v1/vms/spread/plan?bandwidth=1Gbit&downtime=300ms&max_rounds=151")
[ "$code" = 400 ] && jq -e '.parameter == "max_rounds" and (.detail | test("from 1 to 150"))' "$TMP/r151" >/dev/null ||
	fail "max_rounds=151 over max_plan_rounds = 150: $code $(cat "$TMP/r151")"
echo "ok: max_plan_rounds = 150: ?max_rounds=150 planned, 151 refused naming the bound"

# --- max_pending_plans = 1: concurrent plans beyond it get a 503 that says so
python3 "$(dirname "$0")/../lib/plan_burst.py" "$API_SOCK" 1 >"$TMP/plans.out" 2>&1 ||
	fail "concurrent plans: $(cat "$TMP/plans.out")"
echo "ok: max_pending_plans = 1: $(cat "$TMP/plans.out"), the 503 names the limit"

# --- a reload: pages_limit applied at once, max_pending_plans kept until a restart
sed -i 's/^pages_limit = 3/pages_limit = 5/; s/^max_pending_plans = 1/max_pending_plans = 2/' "$TMP/dt.conf"
kill -HUP "$DAEMON_PID"
wait_until 5 grep -q 'reload: configuration re-read' "$TMP/daemon.log" || fail "no reload logged"
grep -q 'reload: api.pages_limit changed: applied (now "5")' "$TMP/daemon.log" ||
	fail "the applied key is not logged: $(grep reload: "$TMP/daemon.log")"
grep -q 'reload: api.max_pending_plans changed: it takes effect when dirtytrackd restarts (new value "2"' "$TMP/daemon.log" ||
	fail "the restart key is not logged: $(grep reload: "$TMP/daemon.log")"
api "/v1/vms/spread/epochs/$E/pages" | jq -e '.limit == 5 and (.ranges | length) == 5' >/dev/null ||
	fail "the reloaded pages_limit is not applied"
echo "ok: a reload applies pages_limit at once and logs max_pending_plans as kept until a restart"
daemon_alive || fail "daemon died"
stop_daemon

# --- the control: at the default (16), the same 12 concurrent plans are all computed
# (plan_timeout out of the way: 12 plans of 100 rounds in a row on a loaded host, under
# ASan, can take longer than its default 10 s, and its 503 is not the one counted here)
sed -i '/^max_pending_plans = /d' "$TMP/dt.conf"
printf '[api]\nplan_timeout = 10min\n' >>"$TMP/dt.conf"
start_daemon --config "$TMP/dt.conf" --epoch 200ms
wait_until 10 api /v1/vms/spread || fail "spread did not reattach"
python3 "$(dirname "$0")/../lib/plan_burst.py" "$API_SOCK" 16 >"$TMP/plans16.out" 2>&1 ||
	fail "concurrent plans at the default: $(cat "$TMP/plans16.out")"
echo "ok: at the default max_pending_plans (16): $(cat "$TMP/plans16.out")"
stop_daemon

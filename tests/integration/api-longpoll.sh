#!/usr/bin/env bash
# Long-poll: ?index=N&wait=T wakes on the next harvest (well before T), times
# out after T when nothing changes, is capped by [api] max_wait, and does not
# stall other requests or the harvest. dirtytrackctl watch redraws per change.
source "$(dirname "$0")/../lib/common.sh"
cat >"$TMP/dt.conf" <<CONF
[api]
max_wait = 2s
CONF
start_daemon --epoch 500ms -c "$TMP/dt.conf"

now_ms() { date +%s%3N; }
timed() { # URL -> prints "MS STATUS", body in $TMP/lp
	local t0 code
	t0=$(now_ms)
	code=$(curl -s -o "$TMP/lp" -w '%{http_code}' --max-time 30 --unix-socket "$API_SOCK" "http://localhost$1")
	echo "$(($(now_ms) - t0)) $code"
}

# No VM: the list's generation does not move; the wait times out at the cap (2 s, not 20 s).
gen=$(curl -s -D - -o /dev/null --unix-socket "$API_SOCK" http://localhost/v1/vms | tr -d '\r' | awk -F': ' 'tolower($1)=="x-dirtytrack-index"{print $2}')
[ -n "$gen" ] || fail "no X-Dirtytrack-Index on /v1/vms"
read -r ms code < <(timed "/v1/vms?index=$gen&wait=20s")
[ "$code" = 200 ] || fail "timed-out long-poll answered $code"
[ "$ms" -ge 1900 ] && [ "$ms" -le 3500 ] || fail "long-poll with nothing new took $ms ms, want about 2000 (cap)"
echo "ok: long-poll without change times out at the 2 s cap ($ms ms)"
read -r ms code < <(timed "/v1/vms?index=$gen&wait=500ms")
[ "$ms" -ge 450 ] && [ "$ms" -le 1500 ] || fail "wait=500ms took $ms ms"
echo "ok: wait=500ms times out after $ms ms"
# A stale index answers at once.
read -r ms code < <(timed "/v1/vms?index=$((gen + 1000))&wait=20s")
[ "$ms" -le 300 ] || fail "a stale index waited $ms ms"
echo "ok: a stale index answers at once ($ms ms)"

# A VM harvesting every 500 ms: the long-poll wakes on the next epoch.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name lp --memory 64M --rate 5000 --duration 60 >"$TMP/sim.log" 2>&1 &
SIM=$!
BG_PIDS+=($SIM)
wait_until 5 api /v1/vms/lp || fail "lp did not attach"
# Several waiters at once, on the VM and on the list; each wakes.
g=$(vm_field lp .generation)
for i in 1 2 3 4; do
	curl -s -o "$TMP/w$i" -w '%{http_code}' --max-time 10 --unix-socket "$API_SOCK" \
		"http://localhost/v1/vms/lp?index=$g&wait=20s" >"$TMP/c$i" &
	BG_PIDS+=($!)
done
read -r ms code < <(timed "/v1/vms/lp?index=$g&wait=20s")
[ "$code" = 200 ] || fail "long-poll answered $code"
[ "$ms" -le 900 ] || fail "long-poll woke after $ms ms, want within one 500 ms epoch"
ng=$(jq .generation "$TMP/lp")
[ "$ng" -gt "$g" ] || fail "woken long-poll has generation $ng, not past $g"
wait_until 3 test -s "$TMP/c4" || fail "parallel waiters did not all answer"
for i in 1 2 3 4; do [ "$(cat "$TMP/c$i")" = 200 ] || fail "waiter $i: $(cat "$TMP/c$i")"; done
echo "ok: long-poll woke after $ms ms on a harvest (generation $g -> $ng); 4 parallel waiters woke"

# Other requests are served while waiters are parked.
curl -s -o /dev/null --max-time 10 --unix-socket "$API_SOCK" "http://localhost/v1/vms?index=999999&wait=2s" &
read -r ms code < <(timed /v1/health)
[ "$code" = 200 ] && [ "$ms" -le 300 ] || fail "health took $ms ms with a waiter parked"
echo "ok: health answered in $ms ms with a waiter parked"

# The VM goes away while waited for: the waiter wakes with the detach.
g=$(vm_field lp .generation)
curl -s -o "$TMP/det" --max-time 10 --unix-socket "$API_SOCK" "http://localhost/v1/vms/lp?index=$g&wait=2s" &
LP=$!
sleep 0.1
kill -9 $SIM
wait $LP || true
[ -s "$TMP/det" ] || fail "no answer after detach"

# dirtytrackctl watch: two redraws, driven by the long-poll.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name w2 --memory 64M --rate 5000 --duration 60 >"$TMP/sim2.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/w2 || fail "w2 did not attach"
timeout 10 "$BUILD/dirtytrackctl" --socket "$API_SOCK" watch --count 3 w2 >"$TMP/watch" || fail "ctl watch failed"
[ "$(grep -c '^VM .*w2' "$TMP/watch")" = 3 ] || fail "ctl watch: $(cat "$TMP/watch")"
grep -q '#' "$TMP/watch" || fail "ctl watch: no bar chart"
gens=$(grep -o 'generation [0-9]*' "$TMP/watch" | awk '{print $2}' | sort -un | wc -l)
[ "$gens" = 3 ] || fail "ctl watch did not show 3 distinct generations"
timeout 10 "$BUILD/dirtytrackctl" --socket "$API_SOCK" --json watch --count 2 w2 | jq -e .generation >/dev/null || fail "watch --json"
set +e
timeout 10 "$BUILD/dirtytrackctl" --socket "$API_SOCK" watch nosuchvm 2>/dev/null
rc=$?
set -e
[ $rc = 4 ] || fail "watch of an unknown VM: exit $rc"
echo "ok: dirtytrackctl watch redraws per harvest"
daemon_alive || fail "daemon died"

#!/usr/bin/env bash
# HTTP abuse against a real daemon: tests/fuzz/http-abuse.sh SECONDS
#
# For SECONDS, in rounds of about 4 s: a VM "victim" attaches (dtsim), four
# threads hammer all its routes, its VMM is killed and retention (1 s)
# removes it while the hammering goes on; at the same time slowloris on the
# Unix socket and on TCP, a flood of parked long-polls that hang up, huge
# headers and huge URLs. Throughout, a normal client (another uid on the
# Unix socket) must be served within PROBE_MAX seconds, and a bystander VM
# must keep its epochs' pace. Each round checks that the removed VM is gone
# (404, not listed; the next victim under the same name is a new VM) and
# that every answer was a status the API documents. At the end the daemon's
# RSS must be back within RSS_SLACK_KB of its baseline (taken after a first
# warm-up round), and it must stop cleanly (ASan/LSan builds report errors
# and leaks at exit). Prints the figures; exit 0 on success.
#
# BUILD picks the build (build/asan under make check). A bounded run is
# tests/integration/api-abuse.sh; a long one: tests/fuzz/http-abuse.sh 600.
source "$(dirname "$0")/../lib/common.sh"
DURATION=${1:?usage: http-abuse.sh SECONDS}
PROBE_MAX=${PROBE_MAX:-3}
RSS_SLACK_KB=${RSS_SLACK_KB:-16384}
command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
command -v jq >/dev/null || skip "jq is missing"
getent passwd nobody >/dev/null || skip "no user nobody"
getent passwd daemon >/dev/null || skip "no user daemon"
chmod 755 "$TMP"
# copied where other uids can read it (the checkout may be 0700)
cp "$(dirname "$0")/../lib/httpabuse.py" "$TMP/httpabuse.py"
ABUSE="$TMP/httpabuse.py"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/abuse.conf" <<CONF
[daemon]
retention = 1s
[api]
socket_mode = 0666
# Below the hammer's 5 s client timeout: plans queued behind the flood are
# answered 503 (allowed) at 2 s instead of not at all.
plan_timeout = 2s
CONF
# A small quarantine: freed memory is reused, so RSS says what is held.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=8:malloc_context_size=10}
start_daemon -c "$TMP/abuse.conf" --epoch 200ms --listen-tcp "127.0.0.1:$PORT"
TCP="127.0.0.1:$PORT"

# Every request of this script has a deadline: a stuck daemon is a failure, not a hang.
api() { curl -sf --max-time 10 --unix-socket "$API_SOCK" "http://localhost$1"; }
api_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$API_SOCK" "http://localhost$1"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
probe() { # one normal request as nobody: prints the time, fails when not served
	local out
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups curl -s -o /dev/null \
		-w '%{http_code} %{time_total}' --max-time 10 --unix-socket "$API_SOCK" http://l/v1/health) || true
	[ "${out%% *}" = 200 ] || { echo "probe: status ${out%% *}"; return 1; }
	echo "${out#* }"
}

"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name bystander --memory 64M --rate 20000 --seed 5 \
	>"$TMP/bystander.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 api /v1/vms/bystander || fail "the bystander did not attach"

ROUTES=(/v1/vms/victim /v1/vms/victim/wss /v1/vms/victim/vcpus /v1/vms/victim/slots
	/v1/vms/victim/history /v1/vms/victim/heatmap /v1/vms/victim/heatmap.svg
	/v1/vms/victim/wss.svg /v1/vms/victim/epochs/1/pages "/v1/vms/victim/epochs/2/pages?limit=3"
	"/v1/vms/victim/plan?bandwidth=1Gbit&downtime=300ms" "/v1/vms/victim/history?since=1&limit=2"
	/v1/vms /metrics /v1/health)
round=0 worst=0 probes=0 requests=0 last_id=0
declare -A seen
end=$((SECONDS + DURATION))
one_round() {
	local pids=() p vm_id t
	"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name victim --memory 256M --vcpus 2 --slots 2 \
		--rate 50000 --seed $((round + 11)) >"$TMP/victim.log" 2>&1 &
	local sim=$!
	BG_PIDS+=($sim)
	python3 "$ABUSE" "$API_SOCK" hammer 3.5 "${ROUTES[@]}" >"$TMP/hammer" &
	pids+=($!)
	# slowloris from uid daemon (Unix) and 127.0.0.1 (TCP): other clients than the hammer (root)
	setpriv --reuid=daemon --regid=daemon --clear-groups /usr/bin/python3 "$ABUSE" "$API_SOCK" slowloris 64 3 >/dev/null &
	pids+=($!)
	python3 "$ABUSE" "$TCP" slowloris 24 3 >/dev/null &
	pids+=($!)
	idx=$(curl -s -D - -o /dev/null --max-time 10 --unix-socket "$API_SOCK" http://l/v1/vms | tr -d '\r' | awk 'tolower($1) == "x-dirtytrack-index:" {print $2}')
	python3 "$ABUSE" "$TCP@127.0.0.3" longpolls 40 "/v1/vms?index=${idx:-0}&wait=30s" >/dev/null &
	pids+=($!)
	wait_until 5 api /v1/vms/victim || fail "round $round: the victim did not attach"
	vm_id=$(vm_field victim .id)
	[ "$vm_id" != "$last_id" ] || fail "round $round: the victim kept the removed VM's id $vm_id (stale)"
	[ -z "${seen[$vm_id]:-}" ] || fail "round $round: id $vm_id reused"
	seen[$vm_id]=1
	[ "$(vm_field victim .state)" = attached ] || fail "round $round: a new victim is $(vm_field victim .state)"
	# over [api] memory_limit (64K): refused or hung up on; under it: served or 414
	for what in "bigheader 200000:0 431" "bigurl 100000:0 414 431" "bigheader 60000:200 431" "bigurl 3000:414"; do
		# shellcheck disable=SC2086
		code=$(python3 "$ABUSE" "$API_SOCK" ${what%%:*} | jq .status)
		[[ " ${what#*:} " == *" $code "* ]] || fail "round $round: ${what%%:*} answered $code, want one of ${what#*:}"
	done
	for _ in 1 2 3; do
		t=$(probe) || fail "round $round: a normal client was not served: $t"
		worst=$(python3 -c "print(max($worst, $t))")
		probes=$((probes + 1))
		sleep 0.3
	done
	kill -9 "$sim" 2>/dev/null || true # the VMM dies mid-hammering
	wait "$sim" 2>/dev/null || true
	for _ in 1 2 3; do
		t=$(probe) || fail "round $round: a normal client was not served after the kill: $t"
		worst=$(python3 -c "print(max($worst, $t))")
		probes=$((probes + 1))
		sleep 0.3
	done
	for p in "${pids[@]}"; do wait "$p" || fail "round $round: an abuse client broke"; done
	# Every answer is one the API documents for these routes.
	jq -e '.statuses | keys | all(. as $k | ["200", "304", "404", "409", "503"] | index($k))' "$TMP/hammer" >/dev/null ||
		fail "round $round: unexpected statuses $(cat "$TMP/hammer")"
	requests=$((requests + $(jq '[.statuses[]] | add' "$TMP/hammer")))
	# Retention removed it: gone from every route and the list.
	wait_until 5 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket '$API_SOCK' http://l/v1/vms/$vm_id)\" = 404 ]" ||
		fail "round $round: VM $vm_id was not removed"
	for r in wss history heatmap epochs/1/pages "plan?bandwidth=1Gbit&downtime=1s"; do
		[ "$(api_status "/v1/vms/$vm_id/$r")" = 404 ] || fail "round $round: /v1/vms/$vm_id/$r still served after removal"
	done
	api /v1/vms | jq -e --argjson id "$vm_id" 'all(.vms[]; .id != $id)' >/dev/null ||
		fail "round $round: VM $vm_id still listed"
	last_id=$vm_id
	daemon_alive || fail "round $round: the daemon died"
	round=$((round + 1))
}

one_round # warm-up: allocator arenas, caches
sleep 1
base=$(rss)
while [ $SECONDS -lt $end ]; do one_round; done
sleep 2 # parked long-polls time out, connections close
after=$(rss)
# the bystander kept its pace: epoch end times 200 ms apart
spacing=$(api "/v1/vms/bystander/history?since=0&limit=100000" |
	jq -r '[.epochs[].end_us] | [range(1; length) as $i | .[$i] - .[$i - 1]] | "\(min) \(max) \(length)"')
read -r smin smax sn <<<"$spacing"
echo "http-abuse: $round rounds in ${DURATION}s, $requests hammer requests, $probes probes (slowest ${worst}s)"
echo "http-abuse: bystander epochs: $sn intervals, $((smin / 1000))..$((smax / 1000)) ms (epoch 200 ms)"
echo "http-abuse: RSS baseline ${base} kB, after ${after} kB"
python3 -c "import sys; sys.exit(0 if $worst <= $PROBE_MAX else 1)" ||
	fail "a normal client waited ${worst}s (more than ${PROBE_MAX}s)"
[ "$smax" -le 1000000 ] || fail "an epoch of the bystander took $((smax / 1000)) ms (epoch 200 ms): the loop stalled"
[ "$after" -le $((base + RSS_SLACK_KB)) ] || fail "RSS grew from ${base} kB to ${after} kB"
api /v1/health >/dev/null || fail "not served at the end"
echo "ok: http abuse: no crash, no stale VM, normal client served within ${PROBE_MAX}s, RSS back to baseline"

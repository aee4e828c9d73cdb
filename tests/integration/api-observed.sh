#!/usr/bin/env bash
# Windows longer than the VM's history: every window of the working-set
# curve says how much of it was observed, a rate is never divided by time
# nobody watched, and a window not yet covered is not exported as a plain
# gauge. A fresh VM (seconds of history) against the 1 h window, in REST,
# /metrics (promtool) and dirtytrackctl; D-Bus carries the same tuple
# (dbus-objects compares it with REST).
source "$(dirname "$0")/../lib/common.sh"
start_daemon --epoch 200ms
CTL=("$BUILD/dirtytrackctl" --socket "$API_SOCK")
RATE=10000 # writes per second, uniform over 128 Ki pages: D(T)/T stays near RATE for T of seconds

harvested() { [ "$(vm_field "$1" .epochs_harvested 2>/dev/null || echo 0)" -ge "$2" ]; }

"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name young --memory 512M --rate $RATE --duration 60 \
	--seed 3 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/young || fail "young did not attach"
wait_until 10 harvested young 10 || fail "no 10 harvests"

# One snapshot: epochs_harvested and the curve of the same generation.
api /v1/vms/young >"$TMP/vm.json"
E=$(jq .epochs_harvested "$TMP/vm.json")
echo "young: $E epochs of 0.2 s harvested"
# The arithmetic, at every window of the VM, its vCPU and its slot.
jq -e '.epochs_harvested as $e | .epoch_seconds as $s |
	[.wss[], .vcpus_detail[].wss[], .slots[].wss[]] | length > 0 and all(.[];
	.observed_epochs == ([.window_epochs, $e] | min) and
	((.observed_seconds - .observed_epochs * $s) | fabs) < 1e-9 and
	.observed_seconds <= .window_seconds + 1e-9 and
	.complete == (.observed_epochs == .window_epochs) and
	(if .observed_epochs == 0 then .dirty_rate_bytes_per_second == 0
	 else ((.dirty_rate_bytes_per_second - .bytes / .observed_seconds) | fabs) <= 1e-9 * .dirty_rate_bytes_per_second end))' \
	"$TMP/vm.json" >/dev/null || fail "observed_* / complete / rate arithmetic: $(jq -c .wss "$TMP/vm.json")"
echo "ok: every window: observed_epochs = min(window, epochs), rate = bytes / observed_seconds"

# The 1 h window after a few seconds: incomplete, and its rate is the VM's
# rate, not pages-of-seconds / 3600 s.
jq -e '.wss[0].complete and .wss[0].window_epochs == 1' "$TMP/vm.json" >/dev/null || fail "the one-epoch window is not complete"
jq -e '.wss[] | select(.window_seconds == 1) | .complete' "$TMP/vm.json" >/dev/null || fail "the 1 s window is not complete after $E epochs"
h=$(jq -c '.wss[] | select(.window_seconds == 3600)' "$TMP/vm.json")
[ -n "$h" ] || fail "no 3600 s window"
jq -e '.complete == false and .observed_seconds < 60 and .window_epochs == 18000' <<<"$h" >/dev/null ||
	fail "3600 s window after $E epochs: $h"
jq -e --argjson r $RATE '.dirty_rate_bytes_per_second >= 0.5 * $r * 4096 and
	.dirty_rate_bytes_per_second <= 1.05 * $r * 4096 and
	.dirty_rate_bytes_per_second > 100 * .bytes / .window_seconds' <<<"$h" >/dev/null ||
	fail "3600 s window rate is not the observed rate ($RATE writes/s of 4 KiB): $h"
echo "ok: 3600 s window: $(jq -r '"observed \(.observed_seconds) s, complete \(.complete), \(.dirty_rate_bytes_per_second | floor) B/s (over the whole hour it would read \(.bytes / 3600 | floor) B/s)"' <<<"$h")"

# /metrics: the gauge of a window not yet covered is absent; the observed
# seconds are there for every window.
api /metrics >"$TMP/m"
promtool check metrics <"$TMP/m" >"$TMP/lint" 2>&1 || fail "promtool check metrics: $(cat "$TMP/lint")"
ID=$(jq .id "$TMP/vm.json")
grep -q "^dirtytrackd_vm_working_set_bytes{vm=\"$ID\",window_seconds=\"1\"} [1-9]" "$TMP/m" || fail "1 s gauge missing"
! grep -q "^dirtytrackd_vm_working_set_bytes{vm=\"$ID\",window_seconds=\"\(60\|300\)\"}" "$TMP/m" ||
	fail "a window not yet covered is exported as a gauge: $(grep working_set "$TMP/m")"
grep -q "^dirtytrackd_vm_window_observed_seconds{vm=\"$ID\",window_seconds=\"1\"} 1.000000$" "$TMP/m" ||
	fail "observed seconds of the 1 s window: $(grep observed "$TMP/m")"
obs=$(awk -v id="$ID" '$1 == "dirtytrackd_vm_window_observed_seconds{vm=\"" id "\",window_seconds=\"300\"}" {print $2}' "$TMP/m")
awk -v o="$obs" 'BEGIN { exit !(o >= 2 && o < 60) }' || fail "observed seconds of the 300 s window: '$obs'"
echo "ok: /metrics: 1 s gauge exported, 60 s and 300 s absent, 300 s window observed for $obs s"

# dirtytrackctl says it too.
"${CTL[@]}" show young >"$TMP/show"
grep -Eq '^ +3600s .* [0-9.]+s of 3600s$' "$TMP/show" || fail "ctl show: 3600 s line: $(cat "$TMP/show")"
grep -Eq '^ +1s .* all$' "$TMP/show" || fail "ctl show: 1 s line: $(cat "$TMP/show")"
"${CTL[@]}" wss young | grep -Eq '^ +3600s .* of 3600s$' || fail "ctl wss"
"${CTL[@]}" --json wss young | jq -e '.[-1].complete == false and .[-1].observed_seconds > 0' >/dev/null ||
	fail "ctl --json wss"
"${CTL[@]}" watch --count 1 young >"$TMP/watch"
grep -Eq '^ +3600s .*s\* ' "$TMP/watch" && grep -q 'not yet covered' "$TMP/watch" || fail "ctl watch: $(cat "$TMP/watch")"
echo "ok: dirtytrackctl show, wss and watch mark the window not yet covered"

# Before the first harvest: nothing observed, no rate, nothing exported.
stop_daemon
start_daemon --epoch 1min --state-dir "$TMP/state2"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name newborn --memory 64M --rate 1000 --duration 30 >"$TMP/sim2.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/newborn || fail "newborn did not attach"
api /v1/vms/newborn | jq -e '.epochs_harvested == 0 and (.wss | length > 0) and all(.wss[];
	.observed_seconds == 0 and .observed_epochs == 0 and .complete == false and .dirty_rate_bytes_per_second == 0)' >/dev/null ||
	fail "a VM without a harvest: $(api /v1/vms/newborn | jq -c .wss)"
api /metrics >"$TMP/m2"
! grep -q '^dirtytrackd_vm_working_set_bytes{' "$TMP/m2" || fail "working-set gauge before the first harvest"
grep -q '^dirtytrackd_vm_window_observed_seconds{vm="[0-9]*",window_seconds="1"} 0.000000$' "$TMP/m2" ||
	fail "observed seconds before the first harvest: $(grep observed "$TMP/m2")"
"${CTL[@]}" list | grep -q 'newborn.*\*' || fail "ctl list does not mark the 1 s rate as not covered: $("${CTL[@]}" list)"
echo "ok: before the first harvest: observed 0, rate 0, complete false, no gauge"

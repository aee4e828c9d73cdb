#!/usr/bin/env bash
# The migration plan over REST (GET /v1/vms/{vm}/plan) and dirtytrackctl
# plan against a real daemon with dtsim VMs: a calm VM converges at
# 10 Gbit/s and 300 ms; a VM with one hot vCPU does not at 100 Mbit/s and
# 50 ms and is told to throttle that vCPU; the answer restates its inputs
# and curve, never holds NaN; every bad input is a 400 naming the
# parameter; strong ETag per generation and query; REST == D-Bus VM.Plan
# (private system bus) == dirtytrackctl --json for the same frozen VM; the
# CLI's summary and exit codes (0 converges, 6 does not, 2 usage, 4 no VM).
source "$(dirname "$0")/../lib/common.sh"

HAVE_DBUS=1
for tool in dbus-daemon busctl gdbus python3 jq; do
	command -v $tool >/dev/null || HAVE_DBUS=0
done
[ -f /usr/share/dbus-1/system.conf ] || HAVE_DBUS=0
if [ $HAVE_DBUS = 1 ]; then
	source "$(dirname "$0")/dbus-lib.inc"
	start_bus
	start_daemon --dbus system --epoch 100ms
	wait_name
else
	echo "note: no dbus-daemon/busctl: REST is compared with dirtytrackctl --json only"
	start_daemon --epoch 100ms
fi
CTL=("$BUILD/dirtytrackctl" --socket "$API_SOCK")

# req PATH [curl args...] -> status; body in $TMP/body, headers in $TMP/hdr
req() {
	local path=$1
	shift
	rm -f "$TMP/body"
	touch "$TMP/body"
	curl -s -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --unix-socket "$API_SOCK" "$@" \
		"http://localhost$path"
}
etag_of() { tr -d '\r' <"$TMP/hdr" | awk -F': ' 'tolower($1) == "etag" { print $2 }'; }
jqe() { jq -e "$@" >/dev/null; }
harvested() { [ "$(vm_field "$1" .epochs_harvested 2>/dev/null || echo 0)" -ge "$2" ]; }

# A calm VM: a small working set in a large memory. A hot one: vCPU 0 makes
# 57 of every 60 writes, uniform over its memory, faster than 100 Mbit/s.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name calm --memory 2G --vcpus 2 --rate 2000 --wss 2000 \
	--duration 12 --seed 3 >"$TMP/calm.log" 2>&1 &
CALM=$!
BG_PIDS+=($CALM)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name hot --memory 128M --vcpus 4 --vcpu-rates 57,1,1,1 \
	--pattern uniform --rate 6000 --duration 20 --seed 7 >"$TMP/hot.log" 2>&1 &
HOT=$!
BG_PIDS+=($HOT)
wait_until 5 api /v1/vms/calm || fail "calm did not attach: $(cat "$TMP/calm.log")"
wait_until 5 api /v1/vms/hot || fail "hot did not attach: $(cat "$TMP/hot.log")"
# the 5 s window of the curve covered (and some slack on a loaded host)
wait_until 30 harvested calm 60 || fail "calm: not enough harvests"
wait_until 30 harvested hot 60 || fail "hot: not enough harvests"

# --- the calm VM converges at 10 Gbit/s, 300 ms
[ "$(req '/v1/vms/calm/plan?bandwidth=10Gbit&downtime=300ms')" = 200 ] || fail "calm plan: $(cat "$TMP/body")"
grep -qi '^content-type: application/json' "$TMP/hdr" || fail "plan: not application/json"
! grep -qiE 'nan|infinity' "$TMP/body" || fail "NaN or Infinity in the plan: $(cat "$TMP/body")"
cp "$TMP/body" "$TMP/calm.json"
check "calm converges, advice none, no recommendation" \
	jqe '.converges == true and .meets_target == true and .verdict == "converges" and .advice == "none" and (has("recommendation") | not)' "$TMP/calm.json"
check "calm: rounds listed with their figures" \
	jqe '(.rounds | length) >= 1 and ([.rounds[] | .index] == [range(.rounds | length)]) and all(.rounds[]; has("start_seconds") and .duration_seconds > 0 and .pages > 0 and .bytes == .pages * 4096 and has("dirtied_pages"))' "$TMP/calm.json"
check "calm: totals (time > 0, downtime <= 300 ms, all memory sent)" \
	jqe '.total_time_seconds > 0 and .downtime_seconds > 0 and .downtime_seconds <= 0.3 and .bytes_sent >= .inputs.memory_bytes' "$TMP/calm.json"
check "calm: the inputs are restated" \
	jqe '.inputs == {bandwidth_bytes_per_second: 1250000000, downtime_seconds: 0.3, memory_bytes: 2147483648, memory_pages: 524288, page_size: 4096, zero_fraction: 0, zero_fraction_source: "none", max_rounds: 30, target_seconds: null, vcpu_curves: 2}' "$TMP/calm.json"
check "calm: the curve used, the VM, its epoch and generation" \
	jqe --argjson id "$(vm_field calm .id)" '.id == $id and .name == "calm" and .epoch >= 60 and .generation > 0 and (.curve | length) >= 4 and all(.curve[]; .window_seconds > 0 and .pages > 0)' "$TMP/calm.json"
# the optional parameters are applied and restated
req '/v1/vms/calm/plan?bandwidth=1.25GB/s&downtime=0.3s&zero_fraction=0.5&max_rounds=1&target=1h' >/dev/null
check "zero_fraction, max_rounds, target restated and applied" \
	jqe '.inputs.bandwidth_bytes_per_second == 1250000000 and .inputs.zero_fraction == 0.5 and .inputs.zero_fraction_source == "stated" and .inputs.max_rounds == 1 and .inputs.target_seconds == 3600 and (.rounds | length) <= 1 and .rounds[0].pages <= 262144' "$TMP/body"
# the engine: dtsim reports no VMM, so ideal by default; QEMU's with its inputs
check "engine: ideal by default (dtsim names no VMM)" jqe '.engine == {name: "ideal"}' "$TMP/calm.json"
req '/v1/vms/calm/plan?bandwidth=1Gbit&downtime=0.3s&engine=qemu-7.2&throughput=50MB&final_bandwidth=300MB&zero_page_cost=10us&cpu_throttle_initial=30' >/dev/null
check "engine=qemu-7.2: QEMU's figures and the inputs given" \
	jqe '.engine.name == "qemu" and .engine.throughput_bytes_per_second == 50000000 and .engine.final_bandwidth_bytes_per_second == 300000000 and .engine.zero_page_seconds == 0.00001 and .engine.auto_converge == true and .engine.cpu_throttle_initial == 30 and .engine.cpu_throttle_increment == 10 and .engine.dirty_syncs >= 3 and .engine.bandwidth_estimate_bytes_per_second <= 50000000' "$TMP/body"
cp "$TMP/body" "$TMP/q50.json"
req '/v1/vms/calm/plan?bandwidth=1Gbit&downtime=0.3s&engine=qemu-7.2&throughput=100MB&final_bandwidth=300MB&zero_page_cost=10us&cpu_throttle_initial=30' >/dev/null
check "engine=qemu: half the throughput, a longer migration" \
	jq -e --slurpfile a "$TMP/q50.json" '$a[0].total_time_seconds > .total_time_seconds * 1.5' "$TMP/body"
req '/v1/vms/calm/plan?bandwidth=1Gbit&downtime=0.3s&throughput=2GB' >/dev/null
check "a QEMU input without engine= keeps the VM's engine (ideal)" jqe '.engine.name == "ideal"' "$TMP/body"

# --- the hot VM does not converge at 100 Mbit/s, 50 ms: throttle vCPU 0
[ "$(req '/v1/vms/hot/plan?bandwidth=100Mbit&downtime=50ms')" = 200 ] || fail "hot plan: $(cat "$TMP/body")"
! grep -qiE 'nan|infinity' "$TMP/body" || fail "NaN or Infinity in the plan: $(cat "$TMP/body")"
cp "$TMP/body" "$TMP/hot.json"
jq -c 'del(.rounds, .curve)' "$TMP/hot.json"
check "hot does not converge" \
	jqe '.converges == false and .meets_target == false and (.verdict | IN("dirty-rate-exceeds-bandwidth", "round-limit")) and .inputs.bandwidth_bytes_per_second == 12500000 and .inputs.downtime_seconds == 0.05 and .inputs.vcpu_curves == 4' "$TMP/hot.json"
check "hot: a throttle recommendation naming vCPU 0 only" \
	jqe '.advice == "throttle" and .recommendation.advice == "throttle" and .recommendation.throttle_vcpus == [0]' "$TMP/hot.json"
check "hot: the limit in pages and bytes, the throttled and post-copy figures, a sentence" \
	jqe '.recommendation as $r | $r.dirty_limit_pages_per_second > 0 and $r.dirty_limit_bytes_per_second == $r.dirty_limit_pages_per_second * 4096 and $r.throttled_total_seconds > 0 and $r.throttled_downtime_seconds <= 0.05 and $r.postcopy_total_seconds > 0 and ($r.why | test("throttle vCPU 0 to"))' "$TMP/hot.json"

# dirtytrackctl plan while it runs: the summary names vCPU 0, exit 6
set +e
"${CTL[@]}" plan hot --bandwidth 100Mbit --downtime 50ms >"$TMP/out"
rc=$?
set -e
cat "$TMP/out"
[ $rc = 6 ] || fail "ctl plan hot: exit $rc, want 6 (does not converge)"
grep -q 'pre-copy does NOT converge' "$TMP/out" || fail "ctl plan hot: no verdict"
grep -q '^Recommendation: throttle vCPU 0 to ' "$TMP/out" || fail "ctl plan hot: no throttle sentence naming vCPU 0"
echo "ok: dirtytrackctl plan hot: does not converge, throttle vCPU 0, exit 6"

# --- bad inputs: 400 problem+json naming the parameter
bad() { # QUERY PARAM
	local got
	got=$(req "/v1/vms/hot/plan$1")
	[ "$got" = 400 ] || fail "plan$1: status $got, want 400: $(cat "$TMP/body")"
	grep -qi '^content-type: application/problem+json' "$TMP/hdr" || fail "plan$1: not problem+json"
	jqe --arg p "$2" '.status == 400 and .parameter == $p and (.detail | contains($p))' "$TMP/body" ||
		fail "plan$1: the 400 does not name '$2': $(cat "$TMP/body")"
}
n=0
while read -r query param; do
	bad "$query" "$param"
	n=$((n + 1))
done <<'EOF'
? bandwidth
?downtime=300ms bandwidth
?bandwidth=10Gbit downtime
?bandwidth=0&downtime=300ms bandwidth
?bandwidth=0Gbit&downtime=300ms bandwidth
?bandwidth=-1&downtime=300ms bandwidth
?bandwidth=-10Gbit&downtime=300ms bandwidth
?bandwidth=NaN&downtime=300ms bandwidth
?bandwidth=nan&downtime=300ms bandwidth
?bandwidth=inf&downtime=300ms bandwidth
?bandwidth=1e9&downtime=300ms bandwidth
?bandwidth=10Xbit&downtime=300ms bandwidth
?bandwidth=10parsecs&downtime=300ms bandwidth
?bandwidth=10gbit&downtime=300ms bandwidth
?bandwidth=2000TB&downtime=300ms bandwidth
?bandwidth=&downtime=300ms bandwidth
?bandwidth=1Gbit&bandwidth=2Gbit&downtime=300ms bandwidth
?bandwidth=10Gbit&downtime=0 downtime
?bandwidth=10Gbit&downtime=0ms downtime
?bandwidth=10Gbit&downtime=-1s downtime
?bandwidth=10Gbit&downtime=NaN downtime
?bandwidth=10Gbit&downtime=3fortnights downtime
?bandwidth=10Gbit&downtime=2h downtime
?bandwidth=10Gbit&downtime=1s&zero_fraction=1.5 zero_fraction
?bandwidth=10Gbit&downtime=1s&zero_fraction=-0.1 zero_fraction
?bandwidth=10Gbit&downtime=1s&zero_fraction=NaN zero_fraction
?bandwidth=10Gbit&downtime=1s&max_rounds=0 max_rounds
?bandwidth=10Gbit&downtime=1s&max_rounds=101 max_rounds
?bandwidth=10Gbit&downtime=1s&max_rounds=two max_rounds
?bandwidth=10Gbit&downtime=1s&target=0 target
?bandwidth=10Gbit&downtime=1s&target=soon target
?bandwidth=10Gbit&downtime=1s&window=1s window
?bandwidth=10Gbit&downtime=1s&bogus=1 bogus
?bandwidth=10Gbit&downtime=1s&engine=xen engine
?bandwidth=10Gbit&downtime=1s&engine=qemu-x.2 engine
?bandwidth=10Gbit&downtime=1s&throughput=0 throughput
?bandwidth=10Gbit&downtime=1s&throughput=fast throughput
?bandwidth=10Gbit&downtime=1s&final_bandwidth=-1 final_bandwidth
?bandwidth=10Gbit&downtime=1s&zero_page_cost=0 zero_page_cost
?bandwidth=10Gbit&downtime=1s&zero_page_cost=1s zero_page_cost
?bandwidth=10Gbit&downtime=1s&cpu_throttle_initial=0 cpu_throttle_initial
?bandwidth=10Gbit&downtime=1s&cpu_throttle_increment=100 cpu_throttle_increment
?bandwidth=10Gbit&downtime=1s&throttle_trigger_threshold=0 throttle_trigger_threshold
?bandwidth=10Gbit&downtime=1s&throttle_trigger_threshold=101 throttle_trigger_threshold
?bandwidth=10Gbit&downtime=1s&cpu_throttle_tailslow=yes cpu_throttle_tailslow
EOF
echo "ok: $n bad inputs are 400 naming the parameter"
[ "$(req '/v1/vms/nosuchvm/plan?bandwidth=10Gbit&downtime=300ms')" = 404 ] || fail "unknown VM: not 404"
[ "$(req '/v1/vms/hot/plan?bandwidth=10Gbit&downtime=300ms' -X POST)" = 405 ] || fail "POST: not 405"
echo "ok: 404 for an unknown VM, 405 for POST"

# --- the VMs detach: their figures, hence their plans, are frozen
wait $CALM || fail "calm dtsim failed: $(cat "$TMP/calm.log")"
wait $HOT || fail "hot dtsim failed: $(cat "$TMP/hot.log")"
wait_until 5 vm_state_is calm detached || fail "calm did not detach"
wait_until 5 vm_state_is hot detached || fail "hot did not detach"
sleep 0.3

# ETag: strong, a function of the generation and the query (not its spelling)
req '/v1/vms/hot/plan?bandwidth=100Mbit&downtime=50ms' >/dev/null
etag=$(etag_of)
cp "$TMP/body" "$TMP/hot.json"
[[ $etag =~ ^\"[0-9a-f]+-[0-9]+-[0-9]+-[0-9a-f]{16}\"$ ]] || fail "strong ETag expected, got '$etag'"
[ "$(req '/v1/vms/hot/plan?bandwidth=100Mbit&downtime=50ms' -H "If-None-Match: $etag")" = 304 ] || fail "If-None-Match: not 304"
[ ! -s "$TMP/body" ] || fail "304 with a body"
req '/v1/vms/hot/plan?downtime=0.05s&bandwidth=12500000/s' >/dev/null
[ "$(etag_of)" = "$etag" ] || fail "the same plan spelled otherwise has another ETag"
req '/v1/vms/hot/plan?bandwidth=100Mbit&downtime=51ms' >/dev/null
[ "$(etag_of)" != "$etag" ] || fail "another downtime has the same ETag"
req '/v1/vms/hot/plan?bandwidth=100Mbit&downtime=50ms&max_rounds=30' >/dev/null
[ "$(etag_of)" != "$etag" ] || fail "max_rounds=30 given has the same ETag as the default"
req /v1/vms/hot >/dev/null
[ "$(etag_of)" != "$etag" ] || fail "the plan's ETag is the VM's"
gen=$(jq .generation "$TMP/body")
check "the plan is at the VM's generation" jqe --argjson g "$gen" '.generation == $g' "$TMP/hot.json"
echo "ok: ETag / If-None-Match"

# REST == dirtytrackctl --json (either --json), whose exit code follows meets_target.
# (A detached VM's curve ends with its last, partial epoch, so its frozen
# plan may differ from the one made while it ran: compare like with like.)
want=$(jq -r 'if .meets_target then 0 else 6 end' "$TMP/hot.json")
set +e
"${CTL[@]}" --json plan hot --bandwidth 100Mbit --downtime 50ms >"$TMP/ctl-hot.json"
rc=$?
"${CTL[@]}" plan hot --json --bandwidth 100Mbit --downtime 50ms >"$TMP/ctl-hot2.json"
rc2=$?
set -e
[ $rc = "$want" ] && [ $rc2 = "$want" ] || fail "ctl plan --json: exit $rc and $rc2, want $want"
check "dirtytrackctl --json plan == REST" cmp -s <(jq -S . "$TMP/ctl-hot.json") <(jq -S . "$TMP/hot.json")
check "dirtytrackctl plan --json == REST" cmp -s <(jq -S . "$TMP/ctl-hot2.json") <(jq -S . "$TMP/hot.json")

# REST == D-Bus VM.Plan, same frozen VM and inputs
if [ $HAVE_DBUS = 1 ]; then
	for vm in hot calm; do
		case $vm in
		hot) bw=12500000 dt=50000 q='bandwidth=100Mbit&downtime=50ms' ;;
		calm) bw=1250000000 dt=300000 q='bandwidth=10Gbit&downtime=300ms' ;;
		esac
		busctl --system --json=short call "$DBUS_NAME" "$(vm_path $vm)" "$DBUS_VM" Plan tt $bw $dt |
			jq '.data[0] | map_values(.data)' >"$TMP/bus.json" || fail "D-Bus Plan $vm"
		api "/v1/vms/$vm/plan?$q" >"$TMP/rest.json"
		jqe -n --slurpfile b "$TMP/bus.json" --slurpfile r "$TMP/rest.json" '
			def close(a; b): (a == b) or ((a - b) | fabs) <= 1e-9 * ([(a | fabs), (b | fabs)] | max);
			$b[0] as $bus | $r[0] as $rest |
			$bus.epoch == $rest.epoch and
			$bus.memory_pages == $rest.inputs.memory_pages and $bus.page_size == $rest.inputs.page_size and
			$bus.bandwidth == $rest.inputs.bandwidth_bytes_per_second and
			$bus.max_downtime_usec / 1e6 == $rest.inputs.downtime_seconds and
			$bus.max_rounds == $rest.inputs.max_rounds and $bus.vcpu_curves == $rest.inputs.vcpu_curves and
			$bus.curve == [$rest.curve[] | [(.window_seconds * 1e6 | round), .pages]] and
			$bus.converges == $rest.converges and $bus.meets_target == $rest.meets_target and
			$bus.verdict == $rest.verdict and $bus.rounds == ($rest.rounds | length) and
			$bus.model == $rest.model and $bus.model_classes == $rest.model_classes and
			$bus.round_list == [$rest.rounds[] | [.index, (.start_seconds * 1e6 | round), (.duration_seconds * 1e6 | round), .pages, .bytes, .dirtied_pages]] and
			close($bus.total_seconds; $rest.total_time_seconds) and
			close($bus.downtime_seconds; $rest.downtime_seconds) and
			$bus.bytes_sent == $rest.bytes_sent and $bus.final_pages == $rest.final_pages and
			close($bus.dirty_rate_at_last_round; $rest.dirty_rate_at_last_round_pages_per_second) and
			$bus.advice == $rest.advice and
			(if $rest.recommendation then
				$rest.recommendation as $r |
				$bus.throttle_vcpus == $r.throttle_vcpus and
				close($bus.dirty_limit_pages_per_second; $r.dirty_limit_pages_per_second) and
				close($bus.throttled_total_seconds; $r.throttled_total_seconds) and
				close($bus.throttled_downtime_seconds; $r.throttled_downtime_seconds) and
				$bus.throttled_rounds == $r.throttled_rounds and
				close($bus.postcopy_total_seconds; $r.postcopy_total_seconds)
			else ($bus | has("throttle_vcpus") | not) end)' || {
			echo "bus:  $(jq -c 'del(.round_list)' "$TMP/bus.json" | cut -c1-800)"
			echo "rest: $(jq -c 'del(.rounds)' "$TMP/rest.json" | cut -c1-800)"
			fail "D-Bus Plan and REST plan differ for $vm"
		}
		echo "ok: D-Bus Plan == REST plan for the frozen $vm VM"
	done
	# PlanWith: the engine and its inputs, as REST's parameters
	busctl --system --json=short call "$DBUS_NAME" "$(vm_path calm)" "$DBUS_VM" PlanWith 'tta{sv}' \
		125000000 300000 6 engine s qemu-7.2 throughput t 50000000 zero_page_cost_usec t 10 \
		cpu_throttle_initial u 30 throttle_trigger_threshold u 60 cpu_throttle_tailslow b true |
		jq '.data[0] | map_values(.data)' >"$TMP/bus.json" ||
		fail "D-Bus PlanWith"
	api "/v1/vms/calm/plan?bandwidth=1Gbit&downtime=300ms&engine=qemu-7.2&throughput=50MB&zero_page_cost=10us&cpu_throttle_initial=30&throttle_trigger_threshold=60&cpu_throttle_tailslow=true" >"$TMP/rest.json"
	check "D-Bus PlanWith == REST with the same engine inputs" \
		jqe -n --slurpfile b "$TMP/bus.json" --slurpfile r "$TMP/rest.json" '
			$b[0] as $bus | $r[0] as $rest | $bus.engine == "qemu" and $rest.engine.name == "qemu" and
			$bus.dirty_syncs == $rest.engine.dirty_syncs and $bus.rounds == ($rest.rounds | length) and
			$bus.bytes_sent == $rest.bytes_sent and $bus.converges == $rest.converges and
			(($bus.total_seconds - $rest.total_time_seconds) | fabs) <= 1e-9 * $rest.total_time_seconds'
	for opt in 'engine s xen' 'throughput t 0' 'zero_page_cost_usec t 5000' 'cpu_throttle_increment u 100' 'bogus u 1' 'throughput s fast' \
		'throttle_trigger_threshold u 101' 'cpu_throttle_tailslow s yes'; do
		! busctl --system call "$DBUS_NAME" "$(vm_path calm)" "$DBUS_VM" PlanWith 'tta{sv}' \
			125000000 300000 1 $opt >"$TMP/out" 2>&1 || fail "D-Bus PlanWith accepted $opt"
		grep -q "${opt%% *}\|Invalid" "$TMP/out" || fail "D-Bus PlanWith $opt: the error does not name it: $(cat "$TMP/out")"
	done
	echo "ok: D-Bus PlanWith refuses bad options, naming them"
fi

# --- dirtytrackctl plan: the summary and its exit codes
set +e
"${CTL[@]}" plan calm --bandwidth 10Gbit --downtime 300ms >"$TMP/out"
rc=$?
cat "$TMP/out"
[ $rc = 0 ] || fail "ctl plan calm: exit $rc, want 0"
grep -q 'pre-copy converges at' "$TMP/out" || fail "ctl plan calm: no verdict"
grep -q 'ROUND' "$TMP/out" || fail "ctl plan calm: no rounds table"
grep -q '^  total time .*downtime .*sent' "$TMP/out" || fail "ctl plan calm: no totals"
grep -q '^Recommendation: none' "$TMP/out" || fail "ctl plan calm: recommendation"
"${CTL[@]}" plan calm --bandwidth 10Gbit --downtime 300ms --target 1h >/dev/null
rc=$?
[ $rc = 0 ] || fail "ctl plan calm --target 1h: exit $rc, want 0"
"${CTL[@]}" plan calm --bandwidth 10Gbit --downtime 300ms --target 1ms >"$TMP/out"
rc=$?
[ $rc = 6 ] || fail "ctl plan calm --target 1ms: exit $rc, want 6 (misses the target)"
grep -q 'target .*missed' "$TMP/out" || fail "ctl plan --target: not said missed"
for args in "--bandwidth 0 --downtime 300ms" "--bandwidth 10Xbit --downtime 300ms" \
	"--bandwidth 10Gbit" "--downtime 300ms" "--bandwidth 10Gbit --downtime 0" \
	"--bandwidth 10Gbit --downtime 1s --zero-fraction 2" "--bandwidth 10Gbit --downtime 1s --max-rounds 0" \
	"--bandwidth 10Gbit --downtime 1s --frobnicate"; do
	# shellcheck disable=SC2086
	"${CTL[@]}" plan calm $args 2>"$TMP/err" >/dev/null
	rc=$?
	[ $rc = 2 ] || fail "ctl plan calm $args: exit $rc, want 2"
done
"${CTL[@]}" plan --bandwidth 10Gbit --downtime 300ms 2>/dev/null
rc=$?
[ $rc = 2 ] || fail "ctl plan without a VM: exit $rc, want 2"
"${CTL[@]}" plan nosuchvm --bandwidth 10Gbit --downtime 300ms 2>"$TMP/err"
rc=$?
[ $rc = 4 ] || fail "ctl plan unknown VM: exit $rc, want 4"
"${CTL[@]}" --help | grep -q '6 plan: pre-copy would not converge' || fail "exit code 6 not in --help"
set -e
echo "ok: dirtytrackctl plan summary and exit codes"

# --- dirtytrackctl plan's engine options reach the plan: each as REST's
# parameter of the same name (the CLI's JSON == REST's for the same query,
# on the frozen calm VM), each changing the field it sets; a bad value is a
# usage error (2) in REST's words.
ctlq() { # ctlq NAME CTL-ARGS... ; REST query in $q: both to $TMP/NAME.{ctl,rest}.json
	local name=$1 rc=0
	shift
	"${CTL[@]}" plan calm --json --bandwidth 1Gbit --downtime 300ms "$@" >"$TMP/$name.ctl.json" || rc=$?
	[ $rc = 0 ] || [ $rc = 6 ] || fail "ctl plan calm $*: exit $rc"
	api "/v1/vms/calm/plan?bandwidth=1Gbit&downtime=300ms&$q" >"$TMP/$name.rest.json"
	cmp -s <(jq -S . "$TMP/$name.ctl.json") <(jq -S . "$TMP/$name.rest.json") ||
		fail "ctl plan calm $* differs from REST ?$q"
}
q='engine=ideal' ctlq ideal --engine ideal
q='engine=qemu' ctlq qemu --engine qemu
q='engine=qemu-7.2&target=1ms' ctlq qemu72 --engine qemu-7.2 --target 1ms
q='engine=qemu&throughput=50MB&final_bandwidth=200MB&zero_page_cost=10us' ctlq speeds --engine qemu \
	--throughput 50MB --final-bandwidth 200MB --zero-page-cost 10us
q='engine=qemu&cpu_throttle_initial=30&cpu_throttle_increment=5' ctlq throttle --engine qemu \
	--cpu-throttle-initial 30 --cpu-throttle-increment 5
q='engine=qemu&cpu_throttle_increment=7' ctlq incr --engine qemu --cpu-throttle-increment 7
q='engine=qemu&throttle_trigger_threshold=60&cpu_throttle_tailslow=true' ctlq trigger --engine qemu \
	--throttle-trigger-threshold 60 --cpu-throttle-tailslow true
check "--engine ideal: the ideal engine" jqe '.engine.name == "ideal"' "$TMP/ideal.ctl.json"
check "--engine qemu: the QEMU engine" jqe '.engine.name == "qemu" and (.engine | has("dirty_syncs"))' "$TMP/qemu.ctl.json"
check "--engine qemu-7.2: QEMU 7.2's rules" jqe '.engine.name == "qemu" and .knobs.engine == "qemu-7.2.0" and .knobs.version_assumed == false' "$TMP/qemu72.ctl.json"
check "--throughput, --final-bandwidth, --zero-page-cost reach the engine" jqe '
	.engine.throughput_bytes_per_second == 50000000 and .engine.final_bandwidth_bytes_per_second == 200000000 and
	.engine.zero_page_seconds == 0.00001' "$TMP/speeds.ctl.json"
check "the stated speeds change the plan" jqe -n --slurpfile a "$TMP/speeds.ctl.json" --slurpfile b "$TMP/qemu.ctl.json" \
	'$a[0].total_time_seconds > $b[0].total_time_seconds'
check "--cpu-throttle-initial/-increment: auto-converge at these settings" jqe '
	.engine.auto_converge and .engine.cpu_throttle_initial == 30 and .engine.cpu_throttle_increment == 5' "$TMP/throttle.ctl.json"
check "--cpu-throttle-increment alone: auto-converge with QEMU's initial" jqe '
	.engine.auto_converge and .engine.cpu_throttle_increment == 7' "$TMP/incr.ctl.json"
check "--throttle-trigger-threshold, --cpu-throttle-tailslow: auto-converge with them" jqe '
	.engine.auto_converge and .engine.throttle_trigger_threshold == 60 and .engine.cpu_throttle_tailslow and
	.engine.cpu_throttle_initial == 20 and ([.rounds[] | has("throttle_percent")] | all)' "$TMP/trigger.ctl.json"
check "no engine option: no auto-converge" jqe '.engine.auto_converge == false' "$TMP/qemu.ctl.json"
echo "ok: dirtytrackctl plan --engine, --throughput, --final-bandwidth, --zero-page-cost, --cpu-throttle-* reach the plan as REST's parameters"
for bad in "--engine xen|query parameter 'engine' must be ideal, qemu or qemu-VERSION" \
	"--engine qemu-|query parameter 'engine'" \
	"--throughput 10Xbit|query parameter 'throughput' must be bytes per second" \
	"--final-bandwidth 1|query parameter 'final_bandwidth' must be from 1Mbit/s" \
	"--zero-page-cost 5ms|query parameter 'zero_page_cost' must be a duration from 1us to 1ms" \
	"--cpu-throttle-initial 0|query parameter 'cpu_throttle_initial' must be a percentage from 1 to 99" \
	"--cpu-throttle-increment 100|query parameter 'cpu_throttle_increment' must be a percentage" \
	"--throttle-trigger-threshold 101|query parameter 'throttle_trigger_threshold' must be a percentage from 1 to 100" \
	"--cpu-throttle-tailslow yes|query parameter 'cpu_throttle_tailslow' must be true or false"; do
	args=${bad%%|*} want=${bad#*|} rc=0
	# shellcheck disable=SC2086
	"${CTL[@]}" plan calm --bandwidth 1Gbit --downtime 300ms $args >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ $rc = 2 ] || fail "ctl plan calm $args: exit $rc, want 2 (usage): $(cat "$TMP/err")"
	grep -qF -- "$want" "$TMP/err" || fail "ctl plan calm $args: not REST's words '$want': $(cat "$TMP/err")"
	[ ! -s "$TMP/out" ] || fail "ctl plan calm $args printed on stdout"
done
"${CTL[@]}" plan calm --bandwidth 1Gbit --downtime 300ms --engine 2>/dev/null && fail "--engine without a value"
echo "ok: a bad engine option is a usage error (2) in REST's words"

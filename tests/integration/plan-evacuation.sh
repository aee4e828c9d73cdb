#!/usr/bin/env bash
# Drain a host (GET /v1/evacuation, D-Bus Manager.Evacuate, dirtytrackctl
# evacuate) against a real daemon with three dtsim VMs of very different
# sizes and rates: every attached VM is in the answer once; one at a time
# the order is shortest first, each starts when the one before ends and
# the drain time is the sum; two at a time the longest go first, on the
# slot that frees first, each planned at half the bandwidth (its duration
# equals its own plan's at that bandwidth, within the drift of a running
# VM's figures), the drain time the last end; a VM whose pre-copy does not
# converge carries the QEMU knob it needs; with a target nothing meets, a
# VM says so and why; bad parameters are 400s naming the parameter, a POST
# is a 405, concurrent evacuations are answered 200 or 503 (one at a time)
# and the daemon lives on; D-Bus gives the same order as REST.
source "$(dirname "$0")/../lib/common.sh"

HAVE_DBUS=1
for tool in dbus-daemon busctl; do
	command -v $tool >/dev/null || HAVE_DBUS=0
done
[ -f /usr/share/dbus-1/system.conf ] || HAVE_DBUS=0
if [ $HAVE_DBUS = 1 ]; then
	source "$(dirname "$0")/dbus-lib.inc"
	start_bus
	start_daemon --dbus system --epoch 100ms
	wait_name
else
	echo "note: no dbus-daemon/busctl: Manager.Evacuate is not compared"
	start_daemon --epoch 100ms
fi
command -v jq >/dev/null || skip "jq is missing"

req() {
	local path=$1
	shift
	curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$API_SOCK" "$@" "http://localhost$path"
}
harvested() { [ "$(vm_field "$1" .epochs_harvested 2>/dev/null || echo 0)" -ge "$2" ]; }

# one that is gone (detached) before the drain is planned: not on the host any more
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name gone --memory 64M --rate 100 --duration 1 \
	>"$TMP/gone.log" 2>&1 || fail "gone: $(cat "$TMP/gone.log")"
wait_until 10 vm_state_is gone detached || fail "gone did not detach"
# small and calm, middling, and large and hot (does not converge at 64 MiB/s shared by two)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name small --memory 128M --vcpus 1 --rate 1000 --wss 1000 \
	--duration 60 --seed 1 >"$TMP/small.log" 2>&1 &
BG_PIDS+=($!)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name middle --memory 512M --vcpus 2 --rate 3000 --wss 8000 \
	--duration 60 --seed 2 >"$TMP/middle.log" 2>&1 &
BG_PIDS+=($!)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name hot --memory 256M --vcpus 2 --rate 40000 \
	--duration 60 --seed 3 >"$TMP/hot.log" 2>&1 &
BG_PIDS+=($!)
for vm in small middle hot; do
	wait_until 10 api "/v1/vms/$vm" || fail "$vm did not attach: $(cat "$TMP/$vm.log")"
done
for vm in small middle hot; do
	wait_until 30 harvested $vm 40 || fail "$vm: not enough harvests"
done

Q='bandwidth=64MiB&downtime=100ms'
# --- one at a time
[ "$(req "/v1/evacuation?$Q")" = 200 ] || fail "evacuation: $(cat "$TMP/body")"
cp "$TMP/body" "$TMP/ev1.json"
! grep -qiE 'nan|infinity' "$TMP/ev1.json" || fail "NaN in the evacuation"
[ "$(jq '.vms | length' "$TMP/ev1.json")" = 3 ] || fail "not 3 VMs: $(cat "$TMP/ev1.json")"
[ "$(jq -r '[.vms[].name] | sort | join(",")' "$TMP/ev1.json")" = "hot,middle,small" ] ||
	fail "not every attached VM once (the detached one left out): $(jq -c '[.vms[].name]' "$TMP/ev1.json")"
jq -e '.inputs.parallel == 1 and .inputs.per_migration_bandwidth_bytes_per_second == 67108864' \
	"$TMP/ev1.json" >/dev/null || fail "inputs: $(jq -c .inputs "$TMP/ev1.json")"
jq -e '[.vms[] | .order] == [0, 1, 2]' "$TMP/ev1.json" >/dev/null || fail "not listed in order"
# shortest first, back to back, the drain the sum
jq -e '[.vms[].duration_seconds] as $d | ($d == ($d | sort))' "$TMP/ev1.json" >/dev/null ||
	fail "one at a time, not shortest first: $(jq -c '[.vms[] | [.name, .duration_seconds]]' "$TMP/ev1.json")"
jq -e '.vms as $v | [range(1; $v | length) | ($v[.].start_seconds - $v[. - 1].end_seconds) | fabs] | max < 1e-9' \
	"$TMP/ev1.json" >/dev/null || fail "a VM does not start when the one before ends"
jq -e '(.total_drain_seconds - ([.vms[].duration_seconds] | add) | fabs) < 1e-6' "$TMP/ev1.json" \
	>/dev/null || fail "drain time is not the sum: $(jq -c . "$TMP/ev1.json")"
echo "ok: one at a time: $(jq -r '[.vms[] | "\(.name) \(.start_seconds | . * 100 | round / 100)+\(.duration_seconds | . * 100 | round / 100)s \(.verdict)"] | join(", ")' "$TMP/ev1.json"); drain $(jq .total_drain_seconds "$TMP/ev1.json") s"

# the hot VM does not converge as is: it carries a knob, with the knobs that say why
jq -e '.vms[] | select(.name == "hot") | .precopy_converges == false and .verdict == "with-knobs"
	and (.knob | type) == "string" and (.knobs.options | length) == 6' "$TMP/ev1.json" >/dev/null ||
	fail "hot VM: $(jq -c '.vms[] | select(.name == "hot") | del(.knobs)' "$TMP/ev1.json")"
jq -e '.vms[] | select(.name == "small") | .verdict == "precopy" and .knob == null' "$TMP/ev1.json" \
	>/dev/null || fail "small VM: $(jq -c '.vms[] | select(.name == "small")' "$TMP/ev1.json")"
echo "ok: hot needs $(jq -r '.vms[] | select(.name == "hot") | .why' "$TMP/ev1.json")"

# --- two at a time: longest first, two start at once, each at half the bandwidth
[ "$(req "/v1/evacuation?$Q&parallel=2")" = 200 ] || fail "parallel=2: $(cat "$TMP/body")"
cp "$TMP/body" "$TMP/ev2.json"
jq -e '.inputs.per_migration_bandwidth_bytes_per_second == 33554432' "$TMP/ev2.json" >/dev/null ||
	fail "per-migration bandwidth: $(jq -c .inputs "$TMP/ev2.json")"
jq -e '[.vms[].duration_seconds] as $d | ($d == ($d | sort | reverse))' "$TMP/ev2.json" >/dev/null ||
	fail "in parallel, not longest first: $(jq -c '[.vms[] | [.name, .duration_seconds]]' "$TMP/ev2.json")"
jq -e '.vms[0].start_seconds == 0 and .vms[1].start_seconds == 0 and .vms[0].slot != .vms[1].slot
	and ((.vms[2].start_seconds - .vms[1].end_seconds) | fabs) < 1e-9' "$TMP/ev2.json" >/dev/null ||
	fail "slots: $(jq -c '[.vms[] | {name, slot, start_seconds, end_seconds}]' "$TMP/ev2.json")"
jq -e '(.total_drain_seconds - ([.vms[].end_seconds] | max) | fabs) < 1e-6' "$TMP/ev2.json" \
	>/dev/null || fail "drain time is not the last end"
# each duration is the VM's own plan at half the bandwidth (a running VM's curve drifts a little)
for vm in small middle; do
	[ "$(req "/v1/vms/$vm/plan?bandwidth=32MiB&downtime=100ms")" = 200 ] || fail "$vm plan: $(cat "$TMP/body")"
	own=$(jq .total_time_seconds "$TMP/body")
	ev=$(jq --arg n $vm '.vms[] | select(.name == $n) | .duration_seconds' "$TMP/ev2.json")
	awk -v a="$own" -v b="$ev" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.1 * a) }' ||
		fail "$vm: evacuation says $ev s, its own plan at 32 MiB/s $own s"
done
echo "ok: two at a time: $(jq -r '[.vms[] | "\(.name) slot \(.slot) at \(.start_seconds | . * 100 | round / 100)s"] | join(", ")' "$TMP/ev2.json"); drain $(jq .total_drain_seconds "$TMP/ev2.json") s, each VM as its own plan at 32 MiB/s"

# --- more slots than VMs: the 3 VMs start at once, each at a third of the
# bandwidth (the migrations running at its start), not a quarter (parallel)
[ "$(req "/v1/evacuation?$Q&parallel=4")" = 200 ] || fail "parallel=4: $(cat "$TMP/body")"
cp "$TMP/body" "$TMP/ev4.json"
third=$((67108864 / 3))
jq -e --argjson t "$third" '
	def near(a; b): ((a - b) | fabs) <= 1e-9 * b;
	near(.inputs.per_migration_bandwidth_bytes_per_second; 67108864 / 3) and
	([.vms[] | .start_seconds == 0 and .running == 3 and near(.bandwidth_bytes_per_second; 67108864 / 3)] | all)' \
	"$TMP/ev4.json" >/dev/null ||
	fail "parallel 4, 3 VMs: not each at a third: $(jq -c '[.inputs, [.vms[] | {name, start_seconds, running, bandwidth_bytes_per_second}]]' "$TMP/ev4.json")"
# Each duration is the VM's own plan at a third, not at a quarter: nearer the one than the
# other (the VMs run on between the two requests, and their curves drift by 10 % and more
# on a loaded host, so a fixed tolerance around one plan is not the test).
quarter=$((67108864 / 4))
for vm in small middle; do
	[ "$(req "/v1/vms/$vm/plan?bandwidth=$third&downtime=100ms")" = 200 ] || fail "$vm plan: $(cat "$TMP/body")"
	own=$(jq .total_time_seconds "$TMP/body")
	[ "$(req "/v1/vms/$vm/plan?bandwidth=$quarter&downtime=100ms")" = 200 ] || fail "$vm plan: $(cat "$TMP/body")"
	own4=$(jq .total_time_seconds "$TMP/body")
	ev=$(jq --arg n $vm '.vms[] | select(.name == $n) | .duration_seconds' "$TMP/ev4.json")
	awk -v a="$own" -v q="$own4" -v b="$ev" 'function abs(x) { return x < 0 ? -x : x }
		BEGIN { exit !(abs(a - b) < abs(q - b) && abs(a - b) <= 0.25 * a) }' ||
		fail "$vm: evacuation says $ev s, its own plan at a third ($third B/s) $own s, at a quarter $own4 s"
done
echo "ok: parallel 4 with 3 VMs: each at a third of the bandwidth from the start, as its own plan at $third B/s; drain $(jq .total_drain_seconds "$TMP/ev4.json") s"

# --- a target nothing meets: every VM says so, with the fastest that completes
[ "$(req "/v1/evacuation?$Q&target=1ms")" = 200 ] || fail "target: $(cat "$TMP/body")"
jq -e '[.vms[].verdict] | all(. == "over-target")' "$TMP/body" >/dev/null ||
	fail "target 1ms met? $(jq -c '[.vms[] | {name, verdict}]' "$TMP/body")"
jq -e '[.vms[].why] | all(startswith("no knob meets the target"))' "$TMP/body" >/dev/null ||
	fail "over-target without why: $(jq -c '[.vms[].why]' "$TMP/body")"
echo "ok: target 1ms: every VM over-target, saying why"

# --- refusals
for bad in "parallel=0" "parallel=17" "parallel=two" "parallel=" ; do
	[ "$(req "/v1/evacuation?$Q&$bad")" = 400 ] || fail "$bad: not 400: $(cat "$TMP/body")"
	jq -e '.parameter == "parallel"' "$TMP/body" >/dev/null || fail "$bad: $(cat "$TMP/body")"
done
[ "$(req "/v1/evacuation?downtime=100ms")" = 400 ] || fail "no bandwidth: not 400"
grep -q bandwidth "$TMP/body" || fail "no bandwidth: $(cat "$TMP/body")"
[ "$(req "/v1/evacuation?$Q&engine=qemu")" = 400 ] || fail "unknown parameter: not 400"
[ "$(req "/v1/evacuation?$Q" -X POST)" = 405 ] || fail "POST: not 405"
echo "ok: bad parallel, missing bandwidth, unknown parameter: 400 naming it; POST: 405"

# --- concurrent evacuations: one at a time, the others 503 with Retry-After, never a crash
for i in 1 2 3 4 5 6; do
	curl -s -o /dev/null -D "$TMP/h$i" -w '%{http_code}\n' --unix-socket "$API_SOCK" \
		"http://localhost/v1/evacuation?$Q&parallel=3" >"$TMP/c$i" &
done
CURLS=$(jobs -p | tail -n 6)
wait $CURLS 2>/dev/null || true
for i in 1 2 3 4 5 6; do
	c=$(cat "$TMP/c$i")
	case $c in
	200) ;;
	503) grep -qi '^retry-after:' "$TMP/h$i" || fail "503 without Retry-After" ;;
	*) fail "concurrent evacuation $i: $c" ;;
	esac
done
daemon_alive || fail "daemon died under concurrent evacuations"
echo "ok: 6 concurrent evacuations: $(cat "$TMP"/c? | sort | uniq -c | tr -s ' \n' ' ')"

# --- CLI and D-Bus
"$BUILD/dirtytrackctl" --socket "$API_SOCK" evacuate --bandwidth 64MiB --downtime 100ms >"$TMP/ctl.txt" ||
	[ $? = 6 ] || fail "dirtytrackctl evacuate failed: $(cat "$TMP/ctl.txt")"
grep -q "ORDER" "$TMP/ctl.txt" && grep -q hot "$TMP/ctl.txt" || fail "ctl table: $(cat "$TMP/ctl.txt")"
"$BUILD/dirtytrackctl" --socket "$API_SOCK" evacuate --downtime 100ms 2>/dev/null && fail "ctl without --bandwidth"
[ $? = 2 ] || fail "ctl without --bandwidth: not a usage error"
echo "ok: dirtytrackctl evacuate prints the table; no --bandwidth: exit 2"
if [ $HAVE_DBUS = 1 ]; then
	out=$(busctl --system --json=short call org.dirtytrack.DirtyTrack1 /org/dirtytrack/DirtyTrack1 \
		org.dirtytrack.DirtyTrack1.Manager Evacuate ttu 67108864 100000 1) || fail "D-Bus Evacuate: $out"
	bus_order=$(jq -r '[.data[1][][1]] | join(",")' <<<"$out")
	[ "$(req "/v1/evacuation?$Q")" = 200 ] || fail "evacuation again"
	rest_order=$(jq -r '[.vms[].name] | join(",")' "$TMP/body")
	[ "$bus_order" = "$rest_order" ] || fail "D-Bus order $bus_order, REST $rest_order"
	jq -e '.data[0] > 0' <<<"$out" >/dev/null || fail "D-Bus total: $out"
	out=$(busctl --system call org.dirtytrack.DirtyTrack1 /org/dirtytrack/DirtyTrack1 \
		org.dirtytrack.DirtyTrack1.Manager Evacuate ttu 67108864 100000 0 2>&1) &&
		fail "D-Bus parallel 0 accepted"
	grep -q InvalidArgument <<<"$out" || grep -q "parallel" <<<"$out" || fail "D-Bus parallel 0: $out"
	echo "ok: D-Bus Evacuate: the order REST gives ($bus_order); parallel 0 refused"
	# VM.Plan carries the knobs too, the advised one REST's
	path=$(busctl --system call org.dirtytrack.DirtyTrack1 /org/dirtytrack/DirtyTrack1 \
		org.dirtytrack.DirtyTrack1.Manager GetVM s hot | awk '{ print $2 }' | tr -d '"')
	out=$(busctl --system --json=short call org.dirtytrack.DirtyTrack1 "$path" \
		org.dirtytrack.DirtyTrack1.VM Plan tt 33554432 100000) || fail "D-Bus Plan: $out"
	[ "$(req "/v1/vms/hot/plan?bandwidth=32MiB&downtime=100ms")" = 200 ] || fail "hot plan"
	jq -e '.data[0].knobs.data | length == 6' <<<"$out" >/dev/null ||
		fail "D-Bus Plan without 6 knobs: $(jq -c '.data[0] | keys' <<<"$out")"
	[ "$(jq -r '.data[0].advised_knob.data' <<<"$out")" = "$(jq -r '.knobs.advised' "$TMP/body")" ] ||
		fail "D-Bus advised $(jq -r '.data[0].advised_knob.data' <<<"$out"), REST $(jq -r '.knobs.advised' "$TMP/body")"
	echo "ok: D-Bus VM.Plan has the 6 knobs and advises what REST does ($(jq -r '.knobs.advised' "$TMP/body"))"
fi
echo "PASS"

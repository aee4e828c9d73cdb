#!/usr/bin/env bash
# End to end with the real daemon and several concurrent simulated VMMs, one
# per mode: the distinct-pages figure over each run equals dtsim's ground
# truth exactly, the 1 s dirty rate of steady patterns is within 1 % of the
# truth, and a VMM killed with SIGKILL is detached without disturbing others.
source "$(dirname "$0")/../lib/common.sh"
start_daemon --epoch 100ms

sim() { # name mode pattern rate wss duration seed
	"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name "$1" --memory 1G --vcpus 4 --mode "$2" \
		--pattern "$3" --rate "$4" --wss "$5" --duration "$6" --seed "$7" \
		--truth "$TMP/$1.json" >"$TMP/$1.log" 2>&1
}
sim ring-uniform ring uniform 40000 30000 6 1 &
P1=$!
sim bitmap-seq bitmap sequential 20000 200000 6 2 &
P2=$!
sim both-hotcold ring+bitmap hotcold 30000 50000 6 3 &
P3=$!
sim ring-zipf ring zipf 30000 40000 6 4 &
P4=$!
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name victim --memory 256M --vcpus 2 --mode ring \
	--pattern uniform --rate 50000 --wss 20000 --duration 60 --seed 5 \
	--truth "$TMP/victim.json" >"$TMP/victim.log" 2>&1 &
VICTIM=$!
BG_PIDS+=($P1 $P2 $P3 $P4 $VICTIM)

for vm in ring-uniform bitmap-seq both-hotcold ring-zipf victim; do
	wait_until 20 api "/v1/vms/$vm" || fail "$vm did not attach"
done

# Sample the 1 s window in the middle of the runs.
declare -A sum n
sleep 2
for i in 1 2 3 4 5 6; do
	for vm in ring-uniform bitmap-seq; do
		v=$(vm_field "$vm" '.wss[] | select(.window_seconds == 1) | .pages')
		sum[$vm]=$((${sum[$vm]:-0} + v))
		n[$vm]=$((${n[$vm]:-0} + 1))
	done
	sleep 0.4
done

kill -9 $VICTIM
wait_until 10 vm_state_is victim detached || fail "killed VMM not detached"
echo "ok: SIGKILLed VMM detached: $(vm_field victim .detach_reason)"

for p in $P1 $P2 $P3 $P4; do wait $p || fail "dtsim exited with an error"; done
daemon_alive || fail "daemon died"

for vm in ring-uniform bitmap-seq both-hotcold ring-zipf; do
	truth=$(jq .distinct_pages "$TMP/$vm.json")
	got=$(vm_field "$vm" '.wss[] | select(.window_seconds == 30) | .pages')
	state=$(vm_field "$vm" .state)
	[ "$state" = detached ] || fail "$vm: state $state after the run"
	[ "$got" = "$truth" ] || fail "$vm: distinct pages over the run: daemon $got, truth $truth"
	echo "ok: $vm: distinct pages over the run $got == truth"
done

for vm in ring-uniform bitmap-seq; do
	# Mean distinct pages per second of the run, leaving out the first and last second.
	want=$(jq '[.per_second[1:-1][]] | add / length' "$TMP/$vm.json")
	got=$(echo "${sum[$vm]} ${n[$vm]}" | awk '{print $1 / $2}')
	awk -v g="$got" -v w="$want" 'BEGIN { d = (g - w) / w; if (d < 0) d = -d; exit !(d <= 0.01) }' ||
		fail "$vm: 1 s window $got pages vs truth $want per second (more than 1 % apart)"
	echo "ok: $vm: 1 s window $got pages vs truth $want per second"
done

# Per-vCPU figures add up to the VM's entries.
total=$(vm_field ring-uniform '[.vcpus_detail[].entries] | add')
entries=$(vm_field ring-uniform .counters.ring_entries)
[ "$total" = "$entries" ] || fail "per-vCPU entries $total != VM entries $entries"
echo "ok: per-vCPU entries add up ($total)"

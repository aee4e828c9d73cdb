#!/usr/bin/env bash
# Real KVM guests in every collection mode, harvested by the daemon every
# 100 ms while they run: over >= 100,000 guest writes each, the daemon's
# distinct pages over the run (3600 s window) equal dtvm's ground truth
# exactly, and so do the per-vCPU (rings) and per-slot figures. ring+bitmap
# also has the VMM write 10 % of the pages itself (emulated DMA, which KVM
# never sees) through the shared bitmap.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/kvm-lib.inc"
kvm_preflight
start_daemon --epoch 100ms

common=(--memory 256M --vcpus 2 --rate 50000 --duration 5 --wss 40000)
dtvm_start kvm-ring "${common[@]}" --mode ring --pattern uniform --seed 1
P1=$DTVM_PID
dtvm_start kvm-bitmap "${common[@]}" --mode bitmap --pattern hotcold --seed 2
P2=$DTVM_PID
dtvm_start kvm-both "${common[@]}" --mode ring+bitmap --pattern zipf --seed 3 --dma-fraction 0.1
P3=$DTVM_PID

for vm in kvm-ring kvm-bitmap kvm-both; do
	wait_until 5 api "/v1/vms/$vm" || fail "$vm did not attach: $(cat "$TMP/$vm.log")"
done
echo "ok: three real KVM VMs attached"
# Mid-run, while each is attached: figures move (polled, not at a fixed
# time: on a loaded host the attaches come late).
moving() { # VM: attached, with pages in its 1 s window
	local j
	j=$(api "/v1/vms/$1") || return 1
	[ "$(jq -r .state <<<"$j")" = attached ] &&
		[ "$(jq '.wss[] | select(.window_seconds == 1) | .pages' <<<"$j")" -gt 0 ]
}
for vm in kvm-ring kvm-bitmap kvm-both; do
	wait_until 4 moving "$vm" || fail "$vm: never attached with pages in its last second mid-run"
done
echo "ok: figures move while the guests run"

dtvm_wait $P1 kvm-ring
dtvm_wait $P2 kvm-bitmap
dtvm_wait $P3 kvm-both
daemon_alive || fail "daemon died"
for vm in kvm-ring kvm-bitmap kvm-both; do
	check_exact "$vm" 100000
done
[ "$(jq .dma_distinct_pages "$TMP/kvm-both.json")" -gt 0 ] || fail "kvm-both: no DMA writes"

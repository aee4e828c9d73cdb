#!/usr/bin/env bash
# Ring-full storm: the smallest ring KVM takes (256 entries: KVM refuses
# less than a page of 16-byte entries) and a guest writing as fast as it
# can, so vCPUs hit KVM_EXIT_DIRTY_RING_FULL over and over, notify the
# daemon and wait for its harvest and reset. Nothing may be lost.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/kvm-lib.inc"
kvm_preflight
start_daemon --epoch 100ms

dtvm_start kvm-storm --mode ring --memory 256M --vcpus 2 --rate max --ring-entries 256 \
	--duration 4 --wss 60000 --pattern uniform --seed 7
P1=$DTVM_PID
dtvm_start kvm-storm-both --mode ring+bitmap --memory 64M --vcpus 1 --rate max \
	--ring-entries 256 --duration 4 --wss 12000 --pattern sequential --dma-fraction 0.05 --seed 8
P2=$DTVM_PID
dtvm_wait $P1 kvm-storm
dtvm_wait $P2 kvm-storm-both
for vm in kvm-storm kvm-storm-both; do
	check_exact "$vm" 100000
	full=$(jq .ring_full_events "$TMP/$vm.json")
	dfull=$(vm_field "$vm" .counters.ring_full)
	[ "$full" -gt 10 ] || fail "$vm: only $full ring-full exits: not a storm"
	[ "$dfull" -gt 0 ] || fail "$vm: daemon counted no RING_FULL notices"
	echo "ok: $vm: $full ring-full exits (daemon saw $dfull notices), nothing lost"
done

#!/usr/bin/env bash
# A real-KVM VMM killed with SIGKILL in the middle of a ring-full storm is
# detached cleanly; the daemon keeps serving the other VMs, whose figures
# stay exact, and accepts new ones.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/kvm-lib.inc"
kvm_preflight
start_daemon --epoch 100ms

dtvm_start kvm-victim --mode ring --memory 64M --vcpus 2 --rate max --ring-entries 256 \
	--duration 60 --wss 10000
VICTIM=$DTVM_PID
dtvm_start kvm-survivor --mode bitmap --memory 128M --vcpus 1 --rate 40000 --duration 4 \
	--wss 20000 --seed 21
P1=$DTVM_PID
wait_until 5 api /v1/vms/kvm-victim || fail "victim did not attach"
sleep 1.5
kill -9 $VICTIM
wait $VICTIM 2>/dev/null || true
wait_until 3 vm_state_is kvm-victim detached || fail "killed VMM not detached"
echo "ok: SIGKILLed dtvm detached: $(vm_field kvm-victim .detach_reason)"
daemon_alive || fail "daemon died with the VMM"

dtvm_start kvm-late --mode ring --memory 64M --vcpus 1 --rate 50000 --duration 2 --wss 8000 \
	--seed 22
P2=$DTVM_PID
dtvm_wait $P2 kvm-late
dtvm_wait $P1 kvm-survivor
check_exact kvm-survivor 100000
check_exact kvm-late
daemon_alive || fail "daemon died"

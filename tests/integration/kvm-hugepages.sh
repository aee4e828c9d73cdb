#!/usr/bin/env bash
# Guest RAM backed by 2 MiB pages (THP via madvise, and hugetlbfs) is still
# tracked at 4 KiB granularity, exactly: KVM splits the mappings when dirty
# logging is on, and the daemon's figures must equal the truth page for
# page. hugetlbfs needs reserved huge pages: when none are free and we are
# root, reserve 64 for the test and give them back afterwards.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/kvm-lib.inc"
kvm_preflight

HP_SYSCTL=/proc/sys/vm/nr_hugepages
HP_OLD=""
restore_hugepages() {
	[ -n "$HP_OLD" ] && echo "$HP_OLD" >"$HP_SYSCTL" 2>/dev/null || true
}
trap 'rc=$?; restore_hugepages; (exit $rc); cleanup' EXIT

start_daemon --epoch 100ms
dtvm_start kvm-thp-ring --mode ring --memory 512M --vcpus 2 --rate 60000 --duration 2.5 \
	--wss 100000 --hugepages thp --seed 11 -v
P1=$DTVM_PID
dtvm_wait $P1 kvm-thp-ring
dtvm_start kvm-thp-bitmap --mode bitmap --memory 512M --vcpus 2 --rate 60000 --duration 2.5 \
	--wss 100000 --pattern sequential --hugepages thp --seed 12 -v
P2=$DTVM_PID
dtvm_wait $P2 kvm-thp-bitmap
for vm in kvm-thp-ring kvm-thp-bitmap; do
	thp=$(sed -n 's/.*AnonHugePages \([0-9]*\) kB.*/\1/p' "$TMP/$vm.log" | tail -n 1)
	[ "${thp:-0}" -gt 0 ] || fail "$vm: guest RAM not backed by THP: $(cat "$TMP/$vm.log")"
	echo "ok: $vm: $thp kB of guest RAM in transparent huge pages"
	check_exact "$vm" 100000
done

need=64 # 128 MiB of 2 MiB pages
free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "${free:-0}" -lt $need ] && [ -w "$HP_SYSCTL" ]; then
	HP_OLD=$(cat "$HP_SYSCTL")
	echo $((HP_OLD + need)) >"$HP_SYSCTL" || true
	free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
fi
if [ "${free:-0}" -lt $need ]; then
	echo "SKIPPED PART: hugetlbfs: only ${free:-0} free 2 MiB huge pages and cannot reserve more"
	exit 0
fi
dtvm_start kvm-hugetlb --mode ring --memory 128M --vcpus 2 --rate 60000 --duration 2.5 \
	--wss 30000 --hugepages hugetlb --seed 13
P3=$DTVM_PID
dtvm_wait $P3 kvm-hugetlb
check_exact kvm-hugetlb 100000

#!/usr/bin/env bash
# A libvirt-managed KVM domain put under libdtqemu.so the documented way (the
# qemu:commandline env namespace, README "Under libvirt"), through a private
# session libvirtd run as an unprivileged user: first without the library
# the libvirt collector shows it "observed"; defined with it, the same
# domain attaches exactly, under its libvirt name and uuid, in place of the
# observed entry. Exact: the guest (dtguest, its workload from the kernel
# command line libvirt passes) rewrites the same 2000 pages in order; the
# daemon's epochs hold exactly those pages of the test region.
source "$(dirname "$0")/../lib/common.sh"
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
for c in libvirtd virsh setpriv; do
	command -v "$c" >/dev/null || skip "$c is missing (libvirt-daemon-driver-qemu, libvirt-clients)"
done
require_qemu_guest
[ "$(id -u)" -eq 0 ] || skip "needs root (a throwaway user runs the session libvirtd)"

LV="$TMP/lv"
mkdir -p "$LV"
chmod 0755 "$TMP" "$LV"
LVUSER=dtlvq$$
useradd -M -d "$LV" -s /usr/sbin/nologin "$LVUSER" 2>/dev/null || skip "cannot create a test user"
AS=(setpriv --reuid="$LVUSER" --regid="$(id -g "$LVUSER")" --clear-groups)
chown "$LVUSER" "$LV"
# The session user's QEMU opens /dev/kvm: for the test's length give it to a
# throwaway group, mode 0660 (as Debian's udev does for group kvm), then put
# it back.
KVM_MODE=$(stat -c %a /dev/kvm)
KVM_GROUP=$(stat -c %g /dev/kvm)
KVMG=dtkvm$$
groupadd "$KVMG" 2>/dev/null || skip "cannot create a test group"
AS=(setpriv --reuid="$LVUSER" --regid="$(id -g "$LVUSER")" --groups="$(getent group "$KVMG" | cut -d: -f3)")
chgrp "$KVMG" /dev/kvm && chmod 0660 /dev/kvm
LVENV=(env HOME="$LV" XDG_RUNTIME_DIR="$LV/run" XDG_CONFIG_HOME="$LV/cfg" XDG_CACHE_HOME="$LV/cache"
	XDG_DATA_HOME="$LV/data")
VIRSH=("${AS[@]}" "${LVENV[@]}" virsh -q -c qemu:///session)
LIBVIRTD_PID=""
lv_cleanup() {
	"${VIRSH[@]}" destroy dtlvq >/dev/null 2>&1 || true
	for f in "$LV"/run/libvirt/qemu/run/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
	done
	[ -n "$LIBVIRTD_PID" ] && kill "$LIBVIRTD_PID" 2>/dev/null && wait "$LIBVIRTD_PID" 2>/dev/null || true
	chgrp "$KVM_GROUP" /dev/kvm 2>/dev/null || true
	chmod "$KVM_MODE" /dev/kvm 2>/dev/null || true
	userdel "$LVUSER" 2>/dev/null || true
	groupdel "$KVMG" 2>/dev/null || true
}
trap 'rc=$?; lv_cleanup; (exit $rc); cleanup' EXIT

install -m 0644 "$BUILD/dtguest.elf" "$LV/guest.elf"
install -m 0644 "$BUILD/libdtqemu.so" "$LV/libdtqemu.so"
UUID=9b2f4c1d-3e5a-4f6b-8c7d-0e1f2a3b4c5d
domain() { # with-library(yes|no)
	local env=""
	[ "$1" = yes ] && env="<qemu:commandline>
    <qemu:env name='LD_PRELOAD' value='$LV/libdtqemu.so'/>
    <qemu:env name='DIRTYTRACK_SOCKET' value='$TMP/run/attach.sock'/>
    <qemu:env name='DIRTYTRACK_LOG' value='$LV/dtq.log'/>
  </qemu:commandline>"
	cat <<XML
<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>dtlvq</name>
  <uuid>$UUID</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>$LV/guest.elf</kernel>
    <cmdline>rate=5000 pattern=sequential wss=2000</cmdline></os>
  <cpu mode='host-passthrough'><feature policy='disable' name='arch-capabilities'/></cpu>
  <devices><emulator>$(command -v qemu-system-x86_64)</emulator><memballoon model='none'/></devices>
  $env
</domain>
XML
}
domain no >"$LV/plain.xml"
domain yes >"$LV/tracked.xml"
chmod 0644 "$LV"/*.xml

"${AS[@]}" "${LVENV[@]}" sh -c 'mkdir -p -m 0700 "$XDG_RUNTIME_DIR"'
"${AS[@]}" "${LVENV[@]}" libvirtd >"$LV/libvirtd.log" 2>&1 &
LIBVIRTD_PID=$!
SOCK="$LV/run/libvirt/libvirt-sock"
wait_until 10 test -S "$SOCK" || skip "session libvirtd did not start: $(tail -3 "$LV/libvirtd.log")"

cat >"$TMP/dt.conf" <<CONF
[attach]
allowed_users = $LVUSER
[libvirt]
uri = qemu+unix:///session?socket=$SOCK
interval = 2s
calc_seconds = 1s
[stats]
recent_epochs = 1000
CONF
start_daemon --config "$TMP/dt.conf" --epoch 200ms
chmod 0755 "$RUN"
# as an operator would: the VMM user's group may use the attach socket
chgrp "$(id -g "$LVUSER")" "$ATTACH_SOCK"

"${VIRSH[@]}" create "$LV/plain.xml" >"$LV/create.log" 2>&1 ||
	skip "a KVM domain does not start under session libvirt: $(tail -2 "$LV/create.log")"
wait_until 15 vm_state_is "$UUID" observed || fail "plain domain not observed: $(api /v1/vms)"
echo "ok: without the library the domain is observed ($(vm_field "$UUID" .source), $(vm_field "$UUID" .fidelity))"
"${VIRSH[@]}" destroy dtlvq >/dev/null

"${VIRSH[@]}" create "$LV/tracked.xml" >"$LV/create2.log" 2>&1 || fail "tracked domain: $(cat "$LV/create2.log")"
wait_until 15 vm_state_is "$UUID" attached || fail "tracked domain did not attach: $(cat "$LV/dtq.log" 2>&1) $(grep -v "^<6>" "$TMP/daemon.log" | tail -5) $(tail -5 "$LV/run/libvirt/qemu/log/dtlvq.log" 2>&1)"
sleep 2.5 # a libvirt round: the domain must not come back as observed
n=$(api /v1/vms | jq --arg u "$UUID" '[.vms[] | select(.uuid == $u)] | length')
[ "$n" = 1 ] || fail "$n entries for the uuid"
check "attached under the domain's name and uuid, exact" jq -e '.state == "attached" and .name == "dtlvq"
	and (.vmm | test("^qemu-[0-9]+[.][0-9]+[.][0-9]+$")) and .mode == "bitmap" and .source == "protocol" and .fidelity == "exact-vcpu-writes"
	and .libvirt_domain == "dtlvq"' <<<"$(api "/v1/vms/$UUID")"
grep -q "custom-argv" "$LV/run/libvirt/qemu/log/dtlvq.log" 2>/dev/null ||
	grep -rq "custom-argv" "$LV" 2>/dev/null || echo "note: libvirt did not log a custom-argv taint"

# Exact: the last 10 epochs hold exactly the 2000 pages of the window.
export LIB API_SOCK UUID
python3 - <<'PY' || fail "epochs not exact"
import os, sys, time
sys.path.insert(0, os.environ["LIB"])
import dtguest
from dtapi import Api
api = Api(os.environ["API_SOCK"])
vm = os.environ["UUID"]
t = dtguest.TEST // dtguest.PAGE
want = set(range(t, t + 2000))
# SeaBIOS (libvirt gives no -bios) takes a few seconds to load the guest
end = time.monotonic() + 30
while True:
    last = api.last_epoch(vm)
    got = api.pages(vm, last - 9, last, t, t + (64 << 20) // 4096)
    # the guest has run its workload for all ten epochs
    if got == want and api.pages(vm, last - 9, last - 9, t, t + 2000):
        break
    if time.monotonic() > end:
        print(f"epochs {last-9}..{last}: {len(got)} pages, missing {sorted(want - got)[:5]}, "
              f"extra {sorted(got - want)[:5]}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
print(f"ok: epochs {last - 9}..{last} hold exactly the guest's 2000-page window")
# and each epoch of 200 ms at 5000 pages/s holds 1000 of them, give or take a batch
for e in range(last - 4, last + 1):
    n = len(api.pages(vm, e, e, t, t + 2000))
    if abs(n - 1000) > 130:
        print(f"epoch {e}: {n} pages of the window, not ~1000; epochs "
              f"{[len(api.pages(vm, x, x, t, t + 2000)) for x in range(last - 9, last + 1)]}, "
              f"counters {api.vm(vm)['counters']}", file=sys.stderr)
        sys.exit(1)
PY
"${VIRSH[@]}" destroy dtlvq >/dev/null
wait_until 5 vm_state_is "$UUID" detached || fail "not detached after destroy"
echo "ok: domain destroyed: the VM is detached"

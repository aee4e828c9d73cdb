#!/usr/bin/env bash
# The libvirt collector against a real libvirt: a private session libvirtd
# (run as an unprivileged throwaway user when the test runs as root) and a
# QEMU domain under TCG (domain type 'qemu': /dev/kvm is not needed) booting
# a tiny multiboot guest that dirties 16 MiB in a loop. The domain is listed
# as an observed VM with libvirt's page-sampling rate, a plan for it is a
# 409, it goes when the domain stops, a VMM attaching with its uuid replaces
# it and gets the domain's name, and libvirtd dying is logged once.
source "$(dirname "$0")/../lib/common.sh"
for c in libvirtd virsh qemu-system-x86_64 gcc setpriv jq; do
	command -v "$c" >/dev/null || skip "$c is missing (libvirt-daemon-driver-qemu, libvirt-clients, qemu-system-x86)"
done

LV="$TMP/lv"
mkdir -p "$LV"
chmod 0755 "$TMP" "$LV"
AS=()
if [ "$(id -u)" -eq 0 ]; then
	# libvirtd as root is the system daemon: session mode needs another user.
	LVUSER=dtlvtest$$
	useradd -M -d "$LV" -s /usr/sbin/nologin "$LVUSER" 2>/dev/null || skip "cannot create a test user"
	AS=(setpriv --reuid="$LVUSER" --regid="$(id -g "$LVUSER")" --clear-groups)
	chown "$LVUSER" "$LV"
fi
LVENV=(env HOME="$LV" XDG_RUNTIME_DIR="$LV/run" XDG_CONFIG_HOME="$LV/cfg" XDG_CACHE_HOME="$LV/cache"
	XDG_DATA_HOME="$LV/data")
VIRSH=("${AS[@]}" "${LVENV[@]}" virsh -q -c qemu:///session)
LIBVIRTD_PID=""
lv_cleanup() {
	"${VIRSH[@]}" destroy dtlv-guest >/dev/null 2>&1 || true
	for f in "$LV"/run/libvirt/qemu/run/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
	done
	[ -n "$LIBVIRTD_PID" ] && kill "$LIBVIRTD_PID" 2>/dev/null && wait "$LIBVIRTD_PID" 2>/dev/null || true
	[ -n "${LVUSER:-}" ] && userdel "$LVUSER" 2>/dev/null || true
}
trap 'rc=$?; lv_cleanup; (exit $rc); cleanup' EXIT

# The guest: a 32-bit multiboot ELF, no operating system.
cat >"$LV/guest.c" <<'GUEST'
__asm__(".text\n.align 4\n"
	".long 0x1BADB002\n.long 0\n.long -0x1BADB002\n" /* multiboot header */
	".globl _start\n_start:\n"
	"mov $0x80000, %esp\ncall guest_main\n1: hlt\njmp 1b\n");
void guest_main(void);
void guest_main(void)
{
	volatile unsigned *p = (volatile unsigned *)0x1000000;

	for (unsigned v = 0;; v++)
		for (unsigned i = 0; i < (16u << 20) / 4; i += 1024)
			p[i] = v; /* one word per page: 16 MiB dirtied per pass */
}
GUEST
gcc -m32 -ffreestanding -nostdlib -fno-pic -fno-stack-protector -O2 -static -Wl,--build-id=none \
	-Wl,-Ttext=0x100000 -Wl,-e,_start -o "$LV/guest.elf" "$LV/guest.c" 2>"$LV/gcc.log" ||
	skip "cannot build a 32-bit guest (gcc -m32: $(head -1 "$LV/gcc.log"))"

UUID=6c3a1e2b-8f43-4d2a-9b1f-0a1b2c3d4e5f
cat >"$LV/dom.xml" <<XML
<domain type='qemu'>
  <name>dtlv-guest</name>
  <uuid>$UUID</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>$LV/guest.elf</kernel></os>
  <devices><emulator>$(command -v qemu-system-x86_64)</emulator><memballoon model='none'/></devices>
</domain>
XML
chmod 0644 "$LV"/*

"${AS[@]}" "${LVENV[@]}" sh -c 'mkdir -p -m 0700 "$XDG_RUNTIME_DIR"'
"${AS[@]}" "${LVENV[@]}" libvirtd >"$LV/libvirtd.log" 2>&1 &
LIBVIRTD_PID=$!
SOCK="$LV/run/libvirt/libvirt-sock"
wait_until 10 test -S "$SOCK" || skip "session libvirtd did not start: $(tail -3 "$LV/libvirtd.log")"
"${VIRSH[@]}" create "$LV/dom.xml" >"$LV/create.log" 2>&1 ||
	skip "QEMU domain does not start under session libvirt: $(tail -2 "$LV/create.log")"
echo "ok: session libvirtd and a TCG domain run"

cat >"$TMP/dt.conf" <<CONF
[libvirt]
uri = qemu+unix:///session?socket=$SOCK
interval = 2s
calc_seconds = 1s
CONF
start_daemon --config "$TMP/dt.conf"

rate() { vm_field dtlv-guest '.libvirt.dirty_rate_bytes_per_second // 0'; }
rate_positive() { [ "$(rate)" -gt 0 ]; }
wait_until 15 rate_positive || fail "no libvirt dirty rate: $(api /v1/vms/dtlv-guest)"
v=$(api /v1/vms/dtlv-guest)
check "observed VM listed with its source" jq -e --arg u "$UUID" '.uuid == $u and .state == "observed"
	and .mode == "libvirt" and .source == "libvirt-page-sampling" and .libvirt_domain == "dtlv-guest"
	and .memory_bytes == 67108864 and .vcpus == 1 and .epochs_harvested == 0
	and .libvirt.calc_mode == "page-sampling" and .libvirt.calc_period_seconds == 1' <<<"$v"
echo "ok: rate $(rate) bytes/s (the guest writes 16 MiB per pass)"
check "listed in /v1/vms" sh -c "curl -sf --unix-socket '$API_SOCK' http://localhost/v1/vms |
	jq -e '.vms[] | select(.name == \"dtlv-guest\" and .source == \"libvirt-page-sampling\")' >/dev/null"
code=$(curl -s -o "$TMP/plan" -w '%{http_code} %{content_type}' --unix-socket "$API_SOCK" \
	"http://localhost/v1/vms/dtlv-guest/plan?bandwidth=1GiB&downtime=300ms")
[ "$code" = "409 application/problem+json" ] || fail "plan of an observed VM: $code $(cat "$TMP/plan")"
jq -e '.status == 409 and (.detail | test("exact"))' "$TMP/plan" >/dev/null || fail "409 body: $(cat "$TMP/plan")"
echo "ok: plan of an observed VM is a 409 problem"
api /metrics >"$TMP/metrics"
ID=$(vm_field dtlv-guest .id)
grep -q "^dirtytrackd_vm_source_info{vm=\"$ID\",source=\"libvirt-page-sampling\"} 1" "$TMP/metrics" ||
	fail "source metric: $(grep source_info "$TMP/metrics")"
grep -q "^dirtytrackd_vm_libvirt_dirty_rate_bytes_per_second{vm=\"$ID\"} [1-9]" "$TMP/metrics" ||
	fail "rate metric: $(grep libvirt_dirty "$TMP/metrics")"
grep -q '^dirtytrackd_vms{state="observed"} 1' "$TMP/metrics" || fail "vms{state=observed}"
echo "ok: /metrics has the source and the rate"

# The domain stops: its entry goes.
"${VIRSH[@]}" destroy dtlv-guest >/dev/null
wait_until 6 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --unix-socket '$API_SOCK' http://localhost/v1/vms/dtlv-guest)\" = 404 ]" ||
	fail "stopped domain still listed"
echo "ok: a stopped domain leaves the registry"

# Running again, then a VMM attaches with its uuid: the protocol wins.
"${VIRSH[@]}" create "$LV/dom.xml" >/dev/null
wait_until 6 vm_state_is dtlv-guest observed || fail "domain not observed again"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name sim --uuid "$UUID" --memory 16M --vcpus 1 \
	--rate 1000 --duration 30 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 vm_state_is "$UUID" attached || fail "VMM did not attach: $(cat "$TMP/sim.log")"
sleep 2.5 # a libvirt round: the domain must not come back as observed
n=$(api /v1/vms | jq --arg u "$UUID" '[.vms[] | select(.uuid == $u)] | length')
[ "$n" = 1 ] || fail "$n entries for the uuid after the attach"
check "attached VM replaces the observed one, keeps the domain name" jq -e '.state == "attached"
	and .source == "protocol" and .libvirt_domain == "dtlv-guest" and .name == "sim" and (has("libvirt") | not)' \
	<<<"$(api "/v1/vms/$UUID")"
grep -q "libvirt .*: connected" "$TMP/daemon.log" || fail "no connected message"

# libvirtd dies: logged once, the daemon keeps serving.
"${VIRSH[@]}" destroy dtlv-guest >/dev/null
kill "$LIBVIRTD_PID"
wait "$LIBVIRTD_PID" 2>/dev/null || true
LIBVIRTD_PID=""
sleep 4.5
daemon_alive || fail "daemon died with libvirtd"
api /v1/health >/dev/null || fail "API down after libvirtd died"
n=$(grep -c "retrying every" "$TMP/daemon.log" || true)
[ "$n" = 1 ] || fail "libvirt failure logged $n times"
echo "ok: libvirtd gone: logged once, daemon serving"

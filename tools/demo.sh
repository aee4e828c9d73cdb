#!/usr/bin/env bash
# make demo: run dirtytrackd in the foreground with a configuration under
# build/, attach two VMs with different write patterns (and a stock QEMU
# guest where QEMU and /dev/kvm are usable), and show their dirty
# rates and working-set curves live for DEMO_SECONDS (30) or until Ctrl-C.
set -euo pipefail
BUILD=${1:-build}
SECONDS_TOTAL=${DEMO_SECONDS:-30}
DIR="$BUILD/demo"
RUN="$DIR/run"
mkdir -p "$RUN"
cat >"$DIR/dirtytrackd.conf" <<CONF
[daemon]
runtime_dir = $PWD/$RUN
epoch = 200ms
# The demo's VMs are new every time: nothing to keep across runs.
state_dir =
[api]
tcp = off
CONF

pids=()
stop() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo
	echo "demo: stopped everything it started"
}
trap stop INT TERM EXIT

"$BUILD/dirtytrackd" --config "$DIR/dirtytrackd.conf" 2>"$DIR/dirtytrackd.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$RUN/api.sock" ] && break; sleep 0.1; done

if [ -x "$BUILD/dtvm" ] && "$BUILD/dtvm" --self-harvest 10ms --duration 200ms --memory 4M \
	--rate 2000 >/dev/null 2>&1; then
	VMM="$BUILD/dtvm"
	echo "demo: /dev/kvm is usable: attaching two real KVM guests (dtvm)"
else
	VMM="$BUILD/dtsim"
	echo "demo: /dev/kvm not usable here: attaching two simulated VMMs (dtsim)"
fi
"$VMM" --connect "$RUN/attach.sock" --name web-frontend --memory 512M --vcpus 2 --mode ring \
	--pattern hotcold --rate 60000 --wss 40000 --duration "$SECONDS_TOTAL" --seed 1 \
	--truth "$DIR/web-frontend.truth.json" 2>"$DIR/web-frontend.log" &
pids+=($!)
"$VMM" --connect "$RUN/attach.sock" --name batch-etl --memory 1G --vcpus 4 --mode bitmap \
	--pattern sequential --rate 40000 --wss 200000 --duration "$SECONDS_TOTAL" --seed 2 \
	--truth "$DIR/batch-etl.truth.json" 2>"$DIR/batch-etl.log" &
pids+=($!)

# A stock QEMU (Debian's, unmodified) tracked exactly through libdtqemu.so,
# running the project's bare-metal guest, when QEMU and /dev/kvm are usable.
vms=(web-frontend batch-etl)
if command -v qemu-system-x86_64 >/dev/null && [ -f "$BUILD/dtguest.elf" ] && [ -f "$BUILD/libdtqemu.so" ] &&
	[ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	bios=()
	[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
	LD_PRELOAD="$PWD/$BUILD/libdtqemu.so" DIRTYTRACK_SOCKET="$PWD/$RUN/attach.sock" \
		qemu-system-x86_64 -accel kvm -machine q35 -cpu host,-arch-capabilities -m 256M \
		-nodefaults -no-user-config -display none "${bios[@]}" -kernel "$BUILD/dtguest.elf" \
		-append "rate=20000 pattern=hotcold wss=8000 hot=90" -name guest=stock-qemu \
		-uuid 5b0e7d8a-1c2f-4e3d-9a4b-6c7d8e9f0a1b >"$DIR/stock-qemu.log" 2>&1 &
	pids+=($!)
	vms+=(stock-qemu)
	echo "demo: and a stock QEMU ($(qemu-system-x86_64 --version | head -1)) under libdtqemu.so: stock-qemu"
else
	echo "demo: no stock QEMU guest (needs qemu-system-x86_64, /dev/kvm and build/dtguest.elf)"
fi

CTL=("$BUILD/dirtytrackctl" --socket "$RUN/api.sock")
end=$((SECONDS + SECONDS_TOTAL))
while [ $SECONDS -lt $end ]; do
	sleep 1
	[ -t 1 ] && printf '\033[H\033[2J'
	echo "dirtytrackd demo: $((end - SECONDS)) s left (Ctrl-C to stop); API: curl --unix-socket $RUN/api.sock http://localhost/v1/vms"
	echo
	"${CTL[@]}" list || true
	for vm in "${vms[@]}"; do
		echo
		echo "$vm: working-set curve"
		"${CTL[@]}" wss "$vm" || true
	done
done

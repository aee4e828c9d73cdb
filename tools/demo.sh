#!/usr/bin/env bash
# make demo: run dirtytrackd in the foreground with a configuration under
# build/, attach two VMs with different write patterns (and a stock QEMU
# guest where QEMU and /dev/kvm are usable), and show live for DEMO_SECONDS
# (30) or until Ctrl-C: each VM's migration plan at a stated link
# (DEMO_BANDWIDTH, 1Gbit; DEMO_DOWNTIME, 300ms), what D(T) means, the
# working-set curves, and API commands with the socket's absolute path.
set -euo pipefail
BUILD=${1:-build}
SECONDS_TOTAL=${DEMO_SECONDS:-30}
for tool in curl jq; do
	command -v $tool >/dev/null || { echo "demo: $tool is missing (make deps installs it)" >&2; exit 1; }
done
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
"$VMM" --connect "$RUN/attach.sock" --name batch-etl --memory 1G --vcpus 4 --mode ring+bitmap \
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

CTL=("$BUILD/dirtytrackctl" --socket "$PWD/$RUN/api.sock")
LINK_BW=${DEMO_BANDWIDTH:-1Gbit}
LINK_DOWNTIME=${DEMO_DOWNTIME:-300ms}
SOCK="$PWD/$RUN/api.sock"

# The first frame waits for every VM's first closed epoch (at most 10 s),
# so that it shows figures, not "no such VM" or "no harvested epoch yet".
ready() {
	local vm n
	for vm in "${vms[@]}"; do
		n=$("${CTL[@]}" --json show "$vm" 2>/dev/null | jq -r '.epochs_harvested // 0' 2>/dev/null) || return 1
		[ "${n:-0}" -ge 2 ] || return 1
	done
}
for _ in $(seq 100); do ready && break; sleep 0.1; done

# One line per VM: the plan at the stated link, from its curve so far
# (dirtytrackctl plan exits 6 when pre-copy does not converge: not an error here).
plan_line() {
	local json
	json=$("${CTL[@]}" plan "$1" --bandwidth "$LINK_BW" --downtime "$LINK_DOWNTIME" --json 2>/dev/null) || [ $? -eq 6 ] ||
		{ echo "$1: no plan yet (no epoch closed)"; return; }
	jq -r --arg vm "$1" '
		def secs: if . == null then "?" elif . < 1 then "\(. * 1000 | round) ms" else "\(. * 10 | round / 10) s" end;
		def mib: if . == null then "?" else "\(. / 1048576 * 10 | round / 10) MiB/s" end;
		def rounds: if . == 1 then "1 round" else "\(.) rounds" end;
		if .converges then
			"\($vm): converges in \(.rounds | length | rounds), \(.total_time_seconds | secs), \(.downtime_seconds | secs) downtime"
		else
			"\($vm): does not converge (\(.verdict)); " +
			(.recommendation as $r |
			 if $r.advice == "throttle" and ($r.throttle_vcpus | length) == 0 then
				"limit its dirtying to \($r.dirty_limit_bytes_per_second | mib) (no per-vCPU figures yet): \($r.throttled_total_seconds | secs), \($r.throttled_downtime_seconds | secs) downtime"
			 elif $r.advice == "throttle" then
				"throttle vCPU\(if ($r.throttle_vcpus | length) == 1 then "" else "s" end) \($r.throttle_vcpus | map(tostring) | join(",")) to \($r.dirty_limit_bytes_per_second | mib) each: \($r.throttled_total_seconds | secs), \($r.throttled_downtime_seconds | secs) downtime"
			 elif $r.advice == "postcopy" then
				"use post-copy: \($r.postcopy_total_seconds | secs) in all"
			 else "no remedy found" end)
		end' <<<"$json"
}

end=$((SECONDS + SECONDS_TOTAL))
while [ $SECONDS -lt $end ]; do
	[ -t 1 ] && printf '\033[H\033[2J'
	echo "dirtytrackd demo: $((end - SECONDS)) s left (Ctrl-C to stop). Copy and paste:"
	echo "  curl --unix-socket $SOCK http://localhost/v1/vms"
	echo "  curl --unix-socket $SOCK 'http://localhost/v1/vms/${vms[0]}/plan?bandwidth=$LINK_BW&downtime=$LINK_DOWNTIME'"
	echo
	"${CTL[@]}" list 2>&1 || true
	echo
	echo "Migration plans at $LINK_BW/s with at most $LINK_DOWNTIME downtime (pre-copy, from each VM's curve so far):"
	for vm in "${vms[@]}"; do
		echo "  $(plan_line "$vm")"
	done
	echo
	echo "D(T): the distinct pages a VM dirtied in the last T; RATE = D(T) x page size / T, which falls"
	echo "with T as rewrites of the same pages count once. Pre-copy must outrun RATE at a round's length."
	for vm in "${vms[@]}"; do
		echo
		echo "$vm: working-set curve"
		# the windows up to 30 s: longer ones read the same until the history covers them
		"${CTL[@]}" wss "$vm" 2>&1 | head -n 7 || true
	done
	sleep 1
done

#!/usr/bin/env bash
# A slow state directory does not delay the harvest, and a stop still saves
# every VM in bounded time. The state directory is an ext4 file system on a
# loop device whose writes are throttled to a few per second by the blkio
# cgroup the daemon runs in (a real slow disk: every fdatasync waits for
# it). Ticks at 100 ms must keep their pace while frames queue up; at
# SIGTERM the final snapshots supersede the backlog, the daemon exits in
# bounded time, and the next start restores every epoch it listed.
source "$(dirname "$0")/../lib/common.sh"
# A daemon whose loop waits for the disk answers late or never: bounded reads.
api() { curl -sf --max-time 10 --unix-socket "$API_SOCK" "http://localhost$1"; }
[ "$(id -u)" = 0 ] || skip "needs root (loop device, mount, blkio cgroup)"
for c in losetup mkfs.ext4 mount umount jq; do
	command -v "$c" >/dev/null || skip "$c is missing"
done
CG=/sys/fs/cgroup/blkio
[ -w "$CG/cgroup.procs" ] || skip "no writable cgroup v1 blkio hierarchy at $CG"
IOPS=${IOPS:-4}
SLOW=$(mktemp -d /tmp/dt-slowfs.XXXXXX)
CGD="$CG/dt-slow-$$"
LOOPDEV=""
teardown() { # before cleanup: the daemon stops (cleanly) before its file system goes
	local drc=0
	echo $$ >"$CG/cgroup.procs" 2>/dev/null || true
	for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || drc=$?
		DAEMON_PID=""
		if [ $drc -ne 0 ]; then
			echo "FAIL: the daemon exited with status $drc at the end of the test" >&2
			TEARDOWN_FAIL=1
		fi
	fi
	for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	umount -l "$SLOW/mnt" 2>/dev/null || true
	[ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null
	rmdir "$CGD" 2>/dev/null || true
	rm -rf "$SLOW"
}
TEARDOWN_FAIL=0
trap 'rc=$?; teardown || true; [ "$TEARDOWN_FAIL" = 1 ] && rc=1; (exit $rc); cleanup' EXIT

truncate -s 256M "$SLOW/img"
mkfs.ext4 -q -F "$SLOW/img"
LOOPDEV=$(losetup -f --show "$SLOW/img") || skip "no free loop device"
mkdir "$SLOW/mnt"
mount "$LOOPDEV" "$SLOW/mnt" || skip "cannot mount $LOOPDEV"
mkdir "$CGD" || skip "cannot create $CGD"
MM=$(printf '%d:%d' "0x$(stat -c %t "$LOOPDEV")" "0x$(stat -c %T "$LOOPDEV")")
echo "$MM $IOPS" >"$CGD/blkio.throttle.write_iops_device" 2>/dev/null || skip "cannot throttle $LOOPDEV"
echo $$ >"$CGD/cgroup.procs"

# The condition is real: fdatasync'd appends on it take about 1/IOPS s each.
t0=$(date +%s%N)
for i in 1 2 3 4; do
	dd if=/dev/zero of="$SLOW/mnt/probe" bs=4k count=4 oflag=append conv=notrunc,fdatasync status=none
done
probe_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$probe_ms" -ge 400 ] || skip "the throttle does not slow fdatasync here (4 appends: $probe_ms ms)"
echo "ok: the state disk is slow: 4 fdatasync'd appends take $probe_ms ms"

STATE_DIR="$SLOW/mnt/state"
mkdir "$STATE_DIR"
start_daemon --epoch 100ms
UUIDS=(6a1e0b52-4d7c-4a8e-9f21-0c3b5d7e9a01 6a1e0b52-4d7c-4a8e-9f21-0c3b5d7e9a02 6a1e0b52-4d7c-4a8e-9f21-0c3b5d7e9a03)
for i in 0 1 2; do
	"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name "slow$i" --uuid "${UUIDS[$i]}" --memory 64M \
		--rate 20000 --wss 8000 --seed $((i + 1)) >"$TMP/sim$i.log" 2>&1 &
	BG_PIDS+=($!)
done
for i in 0 1 2; do
	wait_until 10 vm_state_is "slow$i" attached || fail "slow$i did not attach"
done
h=$(api "/v1/vms/slow0/history?limit=1") || fail "the API did not answer within 10 s (the loop waits for the disk)"
start=$(jq '.epochs[-1].epoch // 0' <<<"$h")
sleep 6

# Pace: the gaps between consecutive epoch closes, beyond the 100 ms epoch.
late=0 total=0 worst=0
for i in 0 1 2; do
	h=$(api "/v1/vms/slow$i/history?since=$start&limit=100000") ||
		fail "the API did not answer within 10 s (the loop waits for the disk)"
	read -r n l w < <(jq -r '[.epochs[].end_us] | . as $e |
		[range(1; length) | $e[.] - $e[. - 1] - 100000] | "\(length) \(map(select(. > 100000)) | length) \(max // 0)"' <<<"$h")
	total=$((total + n)) late=$((late + l))
	[ "$w" -gt "$worst" ] && worst=$w
done
echo "epochs closed: $total, more than 100 ms late: $late, worst $((worst / 1000)) ms late"
[ "$total" -ge 100 ] || fail "only $total epochs closed in 6 s of 3 VMs at 100 ms"
[ $((late * 10)) -le "$total" ] || fail "$late of $total epochs closed more than 100 ms late behind the slow disk"
echo "ok: the harvest keeps its pace while the state disk is slow"
M=$(api /metrics) || fail "no /metrics within 10 s"
wait_s=$(awk '/^dirtytrackd_state_queue_wait_max_seconds /{print $2}' <<<"$M")
echo "state writer: longest wait in the queue $wait_s s, $(awk '/^dirtytrackd_state_queue_jobs /{print $2}' <<<"$M") jobs queued"
awk -v w="$wait_s" 'BEGIN { exit !(w >= 0.2) }' || fail "the writes were not slowed (queue wait $wait_s s): the test did not test"
echo "ok: the writes waited behind the slow disk, the ticks did not"

# Stop: bounded, and every VM saved with every epoch listed before it.
for p in "${BG_PIDS[@]}"; do kill -STOP "$p"; done
sleep 0.3
declare -A EP
for i in 0 1 2; do EP[$i]=$(vm_field "slow$i" .epochs_harvested); done
t0=$(date +%s)
kill "$DAEMON_PID"
for _ in $(seq 600); do daemon_alive || break; sleep 0.1; done
daemon_alive && fail "the daemon did not exit within 60 s of SIGTERM behind the slow disk"
wait "$DAEMON_PID" || fail "the daemon exited with an error"
DAEMON_PID=""
echo "ok: stopped in $(($(date +%s) - t0)) s with the disk slow"
for i in 0 1 2; do
	grep -q "(slow$i): saved: " "$TMP/daemon.log" || fail "slow$i: no save logged"
done
echo "ok: every VM saved"
for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
echo $$ >"$CG/cgroup.procs"
start_daemon --epoch 100ms
for i in 0 1 2; do
	got=$(vm_field "slow$i" .epochs_harvested)
	[ "$got" -ge "${EP[$i]}" ] || fail "slow$i: ${EP[$i]} epochs listed before the stop, $got restored"
done
echo "ok: after the restart every VM has at least the epochs it listed before the stop"

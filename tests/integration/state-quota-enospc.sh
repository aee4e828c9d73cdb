#!/usr/bin/env bash
# One VM cannot fill the shared state directory, and a full disk is an
# error that is reported, not data lost silently (issue 12). The state
# directory is a real small file system (tmpfs, size=SIZE).
#  1. Quota: "hog" dirties fast enough to fill it in seconds; with [daemon]
#     state_max_bytes_per_vm its files stay within the quota (its journal is
#     compacted into snapshots: logged, counted in /metrics and its JSON),
#     and "quiet"'s journal keeps growing, no error anywhere.
#  2. Full disk: a filler file takes the rest of it. A write fails: the VM's
#     state_error names the file and ENOSPC, dirtytrackd_vm_state_error is 1,
#     a log line names the file and errno; epochs go on in memory.
#  3. Space returns (the VMMs detached, so no epoch close triggers a
#     write): the snapshot is retried, the errors clear, and after a SIGKILL
#     (no final save) a new daemon restores both histories exactly as they
#     were, and D(T) over the run equals dtsim's truth.
# QUOTA=off runs the same without the quota: phase 1 must then fail (the
# negative control, run by hand).
source "$(dirname "$0")/../lib/common.sh"
[ "$(id -u)" = 0 ] || skip "needs root (mount -t tmpfs)"
for c in mount umount jq; do command -v "$c" >/dev/null || skip "$c is missing"; done
SIZE=${SIZE:-6M}
QUOTA=${QUOTA:-2M}
MNT="$TMP/mnt"
mkdir "$MNT"
mount -t tmpfs -o size="$SIZE",mode=0700 dt-quota "$MNT" || skip "cannot mount a tmpfs on $MNT"
teardown() {
	local drc=0
	for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || drc=$?
		DAEMON_PID=""
		[ $drc -eq 0 ] || { echo "FAIL: the daemon exited with status $drc at the end" >&2; TEARDOWN_FAIL=1; }
	fi
	umount -l "$MNT" 2>/dev/null || true
	[ -n "${KEEP_LOG:-}" ] && { mkdir -p "$KEEP_LOG" && cp "$TMP"/*.log "$KEEP_LOG"/; } 2>/dev/null || true
}
TEARDOWN_FAIL=0
trap 'rc=$?; teardown || true; [ "$TEARDOWN_FAIL" = 1 ] && rc=1; (exit $rc); cleanup' EXIT

STATE_DIR="$MNT/state"
mkdir "$STATE_DIR"
HOG=3b0e6f2a-1c4d-4e8f-9a7b-5d2c0e1f3a01
QUIET=3b0e6f2a-1c4d-4e8f-9a7b-5d2c0e1f3a02
printf '[daemon]\nsnapshot_epochs = 1000000\nstate_max_bytes_per_vm = %s\n' "$QUOTA" >"$TMP/q.conf"
quota_bytes=$(numfmt --from=iec "$QUOTA" 2>/dev/null || echo 0)
start_daemon --epoch 100ms --config "$TMP/q.conf"
hist() { api "/v1/vms/$1/history?limit=100000" | jq -c '[.epochs[] | [.epoch, .end_us, .pages, .entries]]'; }
w3600() { vm_field "$1" '.wss[] | select(.window_seconds == 3600) | .pages'; }
files_of() { # bytes of a VM's files at rest (the quota's scope)
	local n=0 f
	for f in "$STATE_DIR/$1.state" "$STATE_DIR/$1.journal"; do
		[ -e "$f" ] && n=$((n + $(stat -c %s "$f")))
	done
	echo $n
}
has_error() { [ "$(vm_field "$1" .state_error)" != null ]; } # for wait_until: re-read each time
no_error() { [ "$(vm_field "$1" .state_error)" = null ]; }
queue_empty() { [ "$(metric dirtytrackd_state_queue_jobs)" = 0 ]; }
metric() { # the whole body first: awk's early exit must not fail curl (pipefail)
	local body
	body=$(api /metrics) || fail "no /metrics"
	awk -v k="$1" '$1 == k { print $2; exit }' <<<"$body"
}

"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name hog --uuid "$HOG" --memory 256M --mode ring \
	--rate 200000 --wss 40000 --seed 3 --truth "$TMP/hog.json" >"$TMP/hog.log" 2>&1 &
HOG_PID=$!
BG_PIDS+=($HOG_PID)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name quiet --uuid "$QUIET" --memory 16M --mode ring \
	--rate 2000 --wss 2000 --seed 4 --truth "$TMP/quiet.json" >"$TMP/quiet.log" 2>&1 &
QUIET_PID=$!
BG_PIDS+=($QUIET_PID)
wait_until 10 vm_state_is hog attached || fail "hog did not attach"
wait_until 10 vm_state_is quiet attached || fail "quiet did not attach"
HOG_ID=$(vm_field hog .id)
QUIET_ID=$(vm_field quiet .id)

# --- 1. the quota ------------------------------------------------------------
worst=0 qj0=""
for i in $(seq 50); do # 25 s: without the quota hog fills $SIZE in about 20
	sleep 0.5
	b=$(files_of "$HOG")
	[ "$b" -gt "$worst" ] && worst=$b
	[ "$i" = 10 ] && qj0=$(stat -c %s "$STATE_DIR/$QUIET.journal" 2>/dev/null || echo 0)
done
qj1=$(stat -c %s "$STATE_DIR/$QUIET.journal" 2>/dev/null || echo 0)
for v in hog quiet; do
	e=$(vm_field $v .state_error)
	[ "$e" = null ] || fail "$v reports a state error in phase 1 (one VM filled the directory?): $e"
done
echo "ok: no state error for either VM after 25 s"
[ "$qj1" -gt "$qj0" ] || fail "quiet's journal did not grow ($qj0 -> $qj1 bytes)"
echo "ok: quiet's journal keeps being written ($qj0 -> $qj1 bytes)"
[ "$quota_bytes" -gt 0 ] || fail "QUOTA=$QUOTA: no quota (negative control)"
[ "$worst" -le "$quota_bytes" ] || fail "hog's files reached $worst bytes, over the quota $quota_bytes"
echo "ok: hog's files stayed within the quota: at most $worst of $quota_bytes bytes"
c=$(vm_field hog .state_compactions)
[ "$c" -ge 1 ] || fail "hog's journal was never compacted (state_compactions $c)"
mc=$(metric "dirtytrackd_vm_state_compactions_total{vm=\"$HOG_ID\"}")
[ -n "$mc" ] && [ "$mc" -ge "$c" ] || fail "/metrics does not say hog's $c compactions (it says '$mc')"
[ "$(vm_field quiet .state_compactions)" = 0 ] || fail "quiet was compacted too"
grep -q "vm $HOG_ID (hog): its files in $STATE_DIR reached \[daemon\] state_max_bytes_per_vm" "$TMP/daemon.log" ||
	fail "hog's compaction is not logged"
echo "ok: hog's journal was compacted $c times: in its JSON, /metrics and the log"
[ "$(metric dirtytrackd_state_write_errors_total)" = 0 ] || fail "write errors in phase 1"

# --- 2. a full disk ------------------------------------------------------------
dd if=/dev/zero of="$MNT/filler" bs=64k status=none 2>/dev/null || true
echo "ok: the file system is full ($(df --output=avail -B1 "$MNT" | tail -n1) bytes left)"
e1=$(vm_field hog .epochs_harvested)
wait_until 20 has_error hog || fail "no state_error for hog with the disk full"
err=$(vm_field hog .state_error)
case $err in *"$STATE_DIR/$HOG."*"No space left on device (ENOSPC)"*) ;; *) fail "hog's state_error does not name the file and ENOSPC: $err" ;; esac
echo "ok: hog's state_error: $err"
[ "$(metric "dirtytrackd_vm_state_error{vm=\"$HOG_ID\"}")" = 1 ] || fail "dirtytrackd_vm_state_error is not 1 for hog"
[ "$(metric dirtytrackd_state_vms_failing)" -ge 1 ] || fail "dirtytrackd_state_vms_failing is 0"
grep -q "vm $HOG_ID (hog): cannot write $STATE_DIR/$HOG\..*: No space left on device (ENOSPC)" "$TMP/daemon.log" ||
	fail "no log line names hog's file and ENOSPC"
echo "ok: reported in /metrics and logged: $(grep -o "vm $HOG_ID (hog): cannot write [^;]*" "$TMP/daemon.log" | head -n1)"
sleep 3
e2=$(vm_field hog .epochs_harvested)
[ "$e2" -gt "$e1" ] || fail "epochs stopped with the disk full ($e1 -> $e2)"
echo "ok: epochs go on in memory with the disk full ($e1 -> $e2)"

# --- 3. space returns: retried, saved whole ------------------------------------
kill -TERM $HOG_PID $QUIET_PID
wait $HOG_PID || fail "hog's dtsim failed: $(tail -n3 "$TMP/hog.log")"
wait $QUIET_PID || fail "quiet's dtsim failed: $(tail -n3 "$TMP/quiet.log")"
BG_PIDS=()
wait_until 5 vm_state_is hog detached || fail "hog did not detach"
wait_until 5 vm_state_is quiet detached || fail "quiet did not detach"
HH=$(hist hog)
HQ=$(hist quiet)
n=$(jq -n --argjson a "$HH" '$a | length')
[ "$n" = "$(vm_field hog .epochs_harvested)" ] || fail "hog's history has $n epochs, not all it harvested"
jq -e -n --argjson a "$HH" '[range($a | length)] == [$a[][0]]' >/dev/null || fail "hog's history has a gap"
echo "ok: hog's history in memory is whole: $n epochs, none missing"
rm -f "$MNT/filler"
for v in hog quiet; do
	wait_until 30 no_error $v || fail "$v's state_error did not clear after space returned: $(vm_field $v .state_error)"
done
wait_until 10 queue_empty || fail "the writer did not drain"
grep -q "vm $HOG_ID (hog): its history is written again" "$TMP/daemon.log" || fail "the recovery is not logged"
echo "ok: the snapshots were retried once space returned (detached VMs, no epoch close): errors clear"
[ "$(metric dirtytrackd_state_vms_failing)" = 0 ] || fail "dirtytrackd_state_vms_failing is not 0"
b=$(files_of "$HOG")
[ "$b" -le "$quota_bytes" ] || fail "hog's files are $b bytes, over the quota"

kill -9 "$DAEMON_PID" # no final save: what is on disk must be whole
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
rm -f "$RUN/attach.sock" "$RUN/api.sock"
start_daemon --epoch 100ms --config "$TMP/q.conf"
for v in hog quiet; do
	vm_state_is $v detached || fail "$v is not restored"
done
[ "$(hist hog)" = "$HH" ] || fail "hog's restored history differs from the one before the crash"
[ "$(hist quiet)" = "$HQ" ] || fail "quiet's restored history differs from the one before the crash"
echo "ok: after SIGKILL both histories are restored exactly ($n and $(jq -n --argjson a "$HQ" '$a | length') epochs)"
for v in hog quiet; do
	truth=$(jq .distinct_pages "$TMP/$v.json")
	got=$(w3600 $v)
	[ "$got" = "$truth" ] || fail "$v: distinct pages over the run: daemon $got, truth $truth"
	echo "ok: $v: distinct pages over the run $got == dtsim's truth"
done

# --- 4. a snapshot larger than the quota: not written, reported ----------------
stop_daemon
printf '[daemon]\nstate_max_bytes_per_vm = 64K\n' >"$TMP/small.conf"
start_daemon --epoch 100ms --config "$TMP/small.conf"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name big --uuid 3b0e6f2a-1c4d-4e8f-9a7b-5d2c0e1f3a03 \
	--memory 256M --mode ring --rate 100000 --wss 40000 --seed 5 >"$TMP/big.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 vm_state_is big attached || fail "big did not attach"
wait_until 20 has_error big || fail "no state_error for a snapshot over the quota"
err=$(vm_field big .state_error)
case $err in *"over [daemon] state_max_bytes_per_vm (65536 bytes) (EDQUOT)"*) ;; *) fail "big's state_error does not say the quota: $err" ;; esac
echo "ok: a snapshot over the quota is not written and says so: $err"
b=$(files_of 3b0e6f2a-1c4d-4e8f-9a7b-5d2c0e1f3a03)
[ "$b" -le 65536 ] || fail "big's files are $b bytes, over its 64K quota"
echo "ok: big's files stay within the quota ($b bytes)"

#!/usr/bin/env bash
# Out of file descriptors, the attach listener pauses instead of spinning on
# accept() = EMFILE: with the daemon's RLIMIT_NOFILE lowered (prlimit) and
# idle connections holding every fd, its CPU use stays low; once they go, a
# real VMM attaches. Unauthenticated connections are capped by [attach]
# max_handshakes (the daemon's fds stay bounded while more wait in the
# backlog) and dropped after handshake_timeout, after which a real VMM that
# queued behind them attaches.
source "$(dirname "$0")/../lib/common.sh"
command -v prlimit >/dev/null || skip "prlimit is missing (util-linux)"
LIB="$(cd "$(dirname "$0")/../lib" && pwd)"
nfds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
TCK=$(getconf CLK_TCK)

# hold N SECONDS: N idle attach connections (no HELLO) held for SECONDS; a
# connect that cannot complete (backlog full) is simply not held.
HOLDS=0
hold() {
	HOLDS=$((HOLDS + 1))
	local out="$TMP/held.$HOLDS"
	PYTHONPATH="$LIB" ATTACH_SOCK="$ATTACH_SOCK" python3 - "$@" >"$out" <<'PY' &
import os, socket, sys, time
n, secs = int(sys.argv[1]), float(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setblocking(False)
    try:
        s.connect(os.environ["ATTACH_SOCK"])
        held.append(s)
    except OSError:
        s.close()
print(f"holding {len(held)} connections", flush=True)
time.sleep(secs)
PY
	HOLDER=$!
	BG_PIDS+=($HOLDER)
	# connected (or given up) before the test goes on, however slow the start
	wait_until 20 test -s "$out" || fail "the holder did not start"
	cat "$out"
}

# --- fds exhausted -----------------------------------------------------------
printf '[attach]\nmax_handshakes = 1000\nhandshake_timeout = 1h\n' >"$TMP/emfile.conf"
start_daemon --epoch 100ms --config "$TMP/emfile.conf"
BASE=$(nfds)
LIMIT=$((BASE + 8))
prlimit --pid "$DAEMON_PID" --nofile=$LIMIT:$LIMIT || fail "prlimit"
echo "daemon: $BASE fds open, RLIMIT_NOFILE now $LIMIT"
hold 40 60
fds_exhausted() { [ "$(nfds)" -ge "$LIMIT" ]; }
wait_until 10 fds_exhausted || fail "the idle connections did not exhaust the fds ($(nfds) of $LIMIT)"
daemon_alive || fail "daemon died"
t0=$(cpu_ticks)
sleep 2
t1=$(cpu_ticks)
used_ms=$(((t1 - t0) * 1000 / TCK))
echo "daemon CPU while out of fds: $used_ms ms in 2 s"
[ "$used_ms" -le 200 ] || fail "the daemon spins while out of fds: $used_ms ms of CPU in 2 s"
grep -q "cannot accept connections: Too many open files; paused" "$TMP/daemon.log" || fail "the pause is not logged"
[ "$(grep -c "cannot accept connections" "$TMP/daemon.log")" -eq 1 ] || fail "the pause is logged more than once"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name after-emfile --memory 64M --vcpus 1 --mode ring \
	--pattern uniform --rate 2000 --wss 1024 --duration 30 --seed 1 >"$TMP/dtsim1.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 vm_state_is after-emfile attached || fail "a VMM could not attach once fds were freed: $(tail -n3 "$TMP/dtsim1.log")"
echo "ok: a real VMM attached once the fds were freed"
stop_daemon

# --- handshakes capped, idle ones dropped --------------------------------------
printf '[attach]\nmax_handshakes = 4\nhandshake_timeout = 1s\n' >"$TMP/cap.conf"
STATE_DIR=$TMP/state2 start_daemon --epoch 100ms --config "$TMP/cap.conf"
BASE=$(nfds)
hold 20 60 >"$TMP/hold2.out"
# python starts slowly on a loaded host: the VMM below must queue behind them
wait_until 10 grep -q holding "$TMP/hold2.out" || fail "the idle connections did not connect"
sleep 0.5
n=$(nfds)
echo "daemon: $BASE fds, $n with 20 idle connections waiting"
[ "$n" -le $((BASE + 4)) ] || fail "more than max_handshakes = 4 unauthenticated connections accepted ($BASE -> $n fds)"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name queued --memory 64M --vcpus 1 --mode ring \
	--pattern uniform --rate 2000 --wss 1024 --duration 30 --seed 2 >"$TMP/dtsim2.log" 2>&1 &
BG_PIDS+=($!)
# Ahead of it: 20 idle connections, 4 at a time, 1 s each.
wait_until 15 vm_state_is queued attached || fail "a VMM queued behind idle connections did not attach: $(tail -n3 "$TMP/dtsim2.log")"
grep -q "no HELLO within 1000 ms" "$TMP/daemon.log" || fail "idle connections were not dropped at the handshake timeout"
echo "ok: idle connections dropped after 1 s; the queued VMM attached"
n=$(api /v1/vms | jq '.vms | length')
[ "$n" -eq 1 ] || fail "$n VMs listed"
daemon_alive || fail "daemon died"

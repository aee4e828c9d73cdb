#!/usr/bin/env bash
# Socket activation without a systemd PID 1: systemd-socket-activate holds
# the attach socket (SOCK_SEQPACKET, named "attach") and, passing it
# through, a second one holds the API socket (stream, named "api"), as
# dirtytrackd.socket and dirtytrackd-api.socket do. The first VMM to
# connect starts the real daemon, which takes both sockets from
# sd_listen_fds_with_names() instead of binding its own; the VMM attaches
# through the activated socket, REST answers through the other, READY=1
# reaches NOTIFY_SOCKET, and the daemon stops cleanly.
source "$(dirname "$0")/../lib/common.sh"
command -v systemd-socket-activate >/dev/null || skip "systemd-socket-activate is missing"

SOCKS="$TMP/sockets"
mkdir -p "$SOCKS" "$TMP/own"
ATTACH_SOCK="$SOCKS/attach.sock"
API_SOCK="$SOCKS/api.sock"
NLOG="$TMP/notify.log"
/usr/bin/python3 "$(dirname "$0")/../lib/notify-recv.py" "$TMP/notify.sock" "$NLOG" &
BG_PIDS+=($!)
wait_until 15 grep -q LISTENING "$NLOG" || fail "notify receiver did not start"

# The daemon's own runtime dir is elsewhere: sockets appearing there would
# mean it bound its own instead of taking the activated ones.
export NOTIFY_SOCKET="$TMP/notify.sock"
systemd-socket-activate --seqpacket -l "$ATTACH_SOCK" -E NOTIFY_SOCKET -- \
	systemd-socket-activate -l "$API_SOCK" --fdname=attach:api -E NOTIFY_SOCKET -- \
	"$BUILD/dirtytrackd" --config /dev/null --runtime-dir "$TMP/own" --state-dir "$TMP/state" \
	--listen-tcp off --dbus off >>"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$! # without --accept each activator execs the next: this becomes the daemon
wait_until 10 test -S "$ATTACH_SOCK" || fail "systemd-socket-activate did not listen"
check "nothing runs before the first connection" \
	test "$(readlink "/proc/$DAEMON_PID/exe")" = "$(command -v systemd-socket-activate)"
attach_inode=$(stat -c %i "$ATTACH_SOCK")

# The first VMM connection starts everything.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name activated --memory 128M --rate 5000 \
	--truth "$TMP/truth.json" >"$TMP/dtsim.log" 2>&1 &
SIM=$!
BG_PIDS+=($SIM)
wait_until 20 grep -q 'READY=1' "$NLOG" || fail "no READY=1: $(cat "$TMP/daemon.log")"
check "the activated process is the daemon" \
	test "$(readlink "/proc/$DAEMON_PID/exe")" = "$BUILD/dirtytrackd"
check "the API socket is served" test -S "$API_SOCK"
wait_until 10 api /v1/vms/activated || fail "the VM did not attach through the activated socket"
check "the VM attached through the activated socket" test "$(vm_field activated .state)" = attached
check "the daemon bound no socket of its own" test -z "$(ls -A "$TMP/own")"
check "the attach socket is the activator's (same inode)" \
	test "$(stat -c %i "$ATTACH_SOCK")" = "$attach_inode"
check "REST answers through the activated socket" api /v1/health
kill -INT $SIM
wait $SIM || fail "dtsim failed: $(cat "$TMP/dtsim.log")"
wait_until 5 vm_state_is activated detached || fail "the VM did not detach"
truth=$(jq .distinct_pages "$TMP/truth.json")
got=$(vm_field activated '.wss[] | select(.window_seconds == 30) | .pages')
check "figures through activated sockets equal the truth ($got == $truth)" test "$got" = "$truth"

# A second VMM connects to the same activated socket.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name second --memory 64M --rate 1000 --duration 0.5 \
	>"$TMP/second.log" 2>&1 || fail "second dtsim failed: $(cat "$TMP/second.log")"
check "a second VMM attached" test "$(vm_field second .state)" = detached

stop_daemon
check "STOPPING=1 on SIGTERM" grep -q 'STOPPING=1' "$NLOG"

#!/usr/bin/env bash
# Slowloris and a full listener. (1) 64 slowloris connections (a request
# line, then a header line a second) from one client, on the Unix socket
# and on loopback TCP, lock out only that client: another uid (Unix) or
# source address (TCP) is served at once ([api] max_connections_per_client).
# (2) A listener that reached max_connections and whose clients then timed
# out serves again: before, libmicrohttpd had dropped its listening socket
# from its epoll set at the limit and was never run again to put it back.
source "$(dirname "$0")/../lib/common.sh"
command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
getent passwd nobody >/dev/null || skip "no user nobody"
chmod 755 "$TMP"
ABUSE="$(dirname "$0")/../lib/httpabuse.py"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/a.conf" <<CONF
[api]
socket_mode = 0666
CONF
start_daemon -c "$TMP/a.conf" --listen-tcp "127.0.0.1:$PORT"
probe_unix_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		curl -s -o /dev/null -w '%{http_code}' --max-time 3 --unix-socket "$API_SOCK" http://l/v1/health || true
}
probe_tcp_other() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 3 --interface 127.0.0.2 "http://127.0.0.1:$PORT/v1/health" || true
}

# --- (1) slowloris on both listeners at once
python3 "$ABUSE" "$API_SOCK" slowloris 64 8 >"$TMP/slow-unix" &
A=$!
python3 "$ABUSE" "127.0.0.1:$PORT" slowloris 64 8 >"$TMP/slow-tcp" &
B=$!
BG_PIDS+=($A $B)
sleep 2
for i in 1 2 3; do
	[ "$(probe_unix_nobody)" = 200 ] || fail "64 slowloris connections of root lock nobody out of the Unix socket (probe $i)"
	[ "$(probe_tcp_other)" = 200 ] || fail "64 slowloris connections from 127.0.0.1 lock 127.0.0.2 out of TCP (probe $i)"
	sleep 1
done
echo "ok: during 2x64 slowloris connections, another uid and another address are served"
wait $A $B
api /v1/health >/dev/null || fail "the slowloris client itself is not served after it left"
grep -q "max_connections_per_client" "$TMP/daemon.log" || fail "the refusals were not logged"
echo "ok: the slowloris client is served again once it left"
stop_daemon

# --- (2) a listener at its connection limit comes back after timeouts
cat >"$TMP/b.conf" <<CONF
[api]
max_connections = 8
timeout = 1s
CONF
start_daemon -c "$TMP/b.conf" --listen-tcp "127.0.0.1:$PORT"
python3 "$ABUSE" "$API_SOCK" idle 40 6 >"$TMP/idle-unix" &
A=$!
python3 "$ABUSE" "127.0.0.1:$PORT" idle 40 6 >"$TMP/idle-tcp" &
B=$!
BG_PIDS+=($A $B)
sleep 3.5 # the first 8 time out after 1 s; the rest wait in the backlogs
# The backlog drains 8 connections per second (later on a loaded host): a
# probe is served once it reaches the front, well before the idle clients go.
served() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" || true)" = 200 ]; }
wait_until 10 served --unix-socket "$API_SOCK" http://l/v1/health ||
	fail "the Unix listener stays dead after its connections timed out"
wait_until 10 served "http://127.0.0.1:$PORT/v1/health" ||
	fail "the TCP listener stays dead after its connections timed out"
wait $A $B
api /v1/health >/dev/null || fail "not served after the idle clients left"
echo "ok: listeners at max_connections serve again after their clients time out"
daemon_alive || fail "daemon died"

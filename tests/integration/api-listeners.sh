#!/usr/bin/env bash
# Listeners: the Unix socket is 0660 by default, gets the configured mode and group (and the
# kernel enforces them), loopback TCP serves, and the remote listener
# serves TLS only with a bearer token: accepted with the right token,
# refused (401) without or with a wrong one, no plain HTTP; the daemon
# refuses to start it without certificate, key and token.
source "$(dirname "$0")/../lib/common.sh"
command -v openssl >/dev/null || skip "openssl is missing (make deps installs it)"
command -v setpriv >/dev/null || skip "setpriv is missing (util-linux)"
getent group nogroup >/dev/null || skip "no group 'nogroup' on this host"
chmod 755 "$TMP"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- Unix socket: not world-writable by default (0666 on main), and no other uid gets in
start_daemon
[ "$(stat -c '%a' "$API_SOCK")" = 660 ] || fail "the default api socket mode is $(stat -c '%a' "$API_SOCK"), want 660"
[ "$(setpriv --reuid=nobody --regid=nogroup --clear-groups curl -s -o /dev/null -w '%{http_code}' --unix-socket "$API_SOCK" http://localhost/v1/health || true)" = 000 ] ||
	fail "nobody can connect to the default api socket"
echo "ok: the api socket is 0660 by default: nobody is refused by the kernel"
stop_daemon

# --- Unix socket mode and group
cat >"$TMP/sock.conf" <<CONF
[api]
socket_mode = 0660
socket_group = nogroup
CONF
start_daemon -c "$TMP/sock.conf"
[ "$(stat -c '%a %G' "$API_SOCK")" = "660 nogroup" ] || fail "api socket is $(stat -c '%a %G' "$API_SOCK")"
as() { setpriv --reuid=nobody --regid="$1" --clear-groups curl -s -o /dev/null -w '%{http_code}' --unix-socket "$API_SOCK" http://localhost/v1/health; }
[ "$(as nogroup)" = 200 ] || fail "a member of the socket's group cannot connect"
[ "$(as daemon || true)" = 000 ] || fail "a user outside the socket's group can connect"
echo "ok: api socket 0660 nogroup; group member served, others refused by the kernel"
stop_daemon

# --- loopback TCP
PORT=$(free_port)
start_daemon --listen-tcp "127.0.0.1:$PORT"
curl -sf "http://127.0.0.1:$PORT/v1/health" | jq -e '.status == "ok"' >/dev/null || fail "loopback TCP"
"$BUILD/dirtytrackctl" --url "http://127.0.0.1:$PORT" health | grep -q '^ok' || fail "ctl --url"
echo "ok: loopback TCP on $PORT"
stop_daemon

# --- remote TLS + token
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=dirtytrackd-test \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
	fail "openssl cannot make a test certificate"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$TMP/token"
printf 'wrong-token-0123456789\n' >"$TMP/badtoken"
RPORT=$(free_port)
remote_conf() { # cert key token
	cat <<CONF
[api]
remote = 127.0.0.1:$RPORT
tls_certificate = $1
tls_key = $2
token_file = $3
CONF
}
remote_conf "$TMP/cert.pem" "$TMP/key.pem" "$TMP/token" >"$TMP/remote.conf"
start_daemon -c "$TMP/remote.conf"
R="https://127.0.0.1:$RPORT"
code() { curl -s -o "$TMP/body" -w '%{http_code}' --cacert "$TMP/cert.pem" "$@"; }
[ "$(code -H "Authorization: Bearer $(cat "$TMP/token")" "$R/v1/health")" = 200 ] || fail "right token refused"
[ "$(code -H "Authorization: Bearer $(cat "$TMP/token")" "$R/metrics")" = 200 ] || fail "right token refused on /metrics"
[ "$(code "$R/v1/health")" = 401 ] || fail "no token accepted"
jq -e '.status == 401' "$TMP/body" >/dev/null || fail "401 is not a problem document"
[ "$(code -H "Authorization: Bearer wrong-token-0123456789" "$R/v1/vms")" = 401 ] || fail "wrong token accepted"
[ "$(code -H "Authorization: Basic $(cat "$TMP/token")" "$R/v1/vms")" = 401 ] || fail "Basic accepted"
curl -s -D - -o /dev/null --cacert "$TMP/cert.pem" "$R/v1/vms" | grep -qi '^www-authenticate: Bearer' || fail "401 without WWW-Authenticate"
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$RPORT/v1/health" || true)" != 200 ] ||
	fail "plain HTTP served on the remote listener"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$R/v1/health" || true)" = 000 ] || fail "an untrusted certificate was accepted by curl"
# dirtytrackctl over TLS
"$BUILD/dirtytrackctl" --url "$R" --cacert "$TMP/cert.pem" --token-file "$TMP/token" health | grep -q '^ok' ||
	fail "ctl over TLS with the token"
set +e
"$BUILD/dirtytrackctl" --url "$R" --cacert "$TMP/cert.pem" --token-file "$TMP/badtoken" health 2>"$TMP/err"
rc=$?
set -e
[ $rc = 5 ] || fail "ctl with a wrong token: exit $rc, want 5"
# the Unix socket needs no token
api /v1/health >/dev/null || fail "unix socket wants a token"
echo "ok: remote TLS listener: token accepted, missing/wrong/Basic refused with 401, no plain HTTP"
stop_daemon

# --- refusals to start
refuse() { # what, then config text
	local what=$1
	printf '%s\n' "$2" >"$TMP/bad.conf"
	if timeout 10 "$BUILD/dirtytrackd" --runtime-dir "$TMP/run2" --listen-tcp off --dbus off -c "$TMP/bad.conf" >"$TMP/bad.log" 2>&1; then
		fail "daemon started with $what"
	fi
	echo "ok: refused $what: $(tail -n1 "$TMP/bad.log")"
}
refuse "remote without a certificate" "$(remote_conf "" "$TMP/key.pem" "$TMP/token")"
refuse "remote without a key" "$(remote_conf "$TMP/cert.pem" "" "$TMP/token")"
refuse "remote without a token file" "$(remote_conf "$TMP/cert.pem" "$TMP/key.pem" "")"
: >"$TMP/empty"
refuse "remote with an empty token" "$(remote_conf "$TMP/cert.pem" "$TMP/key.pem" "$TMP/empty")"
refuse "remote with a missing certificate file" "$(remote_conf "$TMP/nope.pem" "$TMP/key.pem" "$TMP/token")"
refuse "remote with a key that is not PEM" "$(remote_conf "$TMP/cert.pem" "$TMP/token" "$TMP/token")"

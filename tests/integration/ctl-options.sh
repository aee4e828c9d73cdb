#!/usr/bin/env bash
# dirtytrackctl's global options go before or after the command, and an
# option or argument a command does not take is a usage error (exit 2):
# none is ever ignored ("list --json" printed a table).
source "$(dirname "$0")/../lib/common.sh"
start_daemon --epoch 200ms
CTL="$BUILD/dirtytrackctl"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name opt --memory 64M --rate 2000 --duration 60 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/opt || fail "opt did not attach"
wait_until 5 sh -c "[ \$(curl -sf --unix-socket '$API_SOCK' http://localhost/v1/vms/opt | jq .epochs_harvested) -ge 2 ]" ||
	fail "no harvests"

isjson() { jq -e "${2:-.}" "$1" >/dev/null 2>&1; }
# --json after the command: JSON, as before it.
"$CTL" --socket "$API_SOCK" list --json >"$TMP/a"
isjson "$TMP/a" '.vms | length == 1' || fail "list --json is not the JSON list: $(head -3 "$TMP/a")"
"$CTL" --socket "$API_SOCK" --json list >"$TMP/b"
isjson "$TMP/b" '.vms | length == 1' || fail "--json list"
echo "ok: list --json prints JSON"
"$CTL" show opt --json --socket "$API_SOCK" >"$TMP/a"
isjson "$TMP/a" '.name == "opt"' || fail "show VM --json --socket S"
"$CTL" show --socket="$API_SOCK" -j opt >"$TMP/a"
isjson "$TMP/a" '.name == "opt"' || fail "show --socket=S -j VM"
"$CTL" wss opt -s "$API_SOCK" --json >"$TMP/a"
isjson "$TMP/a" 'type == "array" and length > 0' || fail "wss VM -s S --json"
"$CTL" health -s"$API_SOCK" --json >"$TMP/a"
isjson "$TMP/a" '.status == "ok"' || fail "health -sS --json"
"$CTL" watch --count 1 opt --json --socket "$API_SOCK" >"$TMP/a"
isjson "$TMP/a" '.name == "opt"' || fail "watch --count 1 VM --json"
"$CTL" watch opt --json --count 1 --socket "$API_SOCK" >"$TMP/a"
isjson "$TMP/a" '.name == "opt"' || fail "watch VM --json --count 1"
"$CTL" plan opt --bandwidth 10Gbit --downtime 300ms --socket "$API_SOCK" --json >"$TMP/a" || [ $? = 6 ] ||
	fail "plan ... --socket S --json: exit $?"
isjson "$TMP/a" 'has("converges")' || fail "plan ... --json after the command"
# The last one wins, wherever it is: a bad socket first, the good one after.
"$CTL" --socket "$TMP/none.sock" list --socket "$API_SOCK" | grep -q '^ID ' || fail "a later --socket does not win"
echo "ok: global options after the command: show, wss, health, watch, plan"

usage() { # exit 2, one line naming the culprit, nothing on stdout
	local want=$1 rc=0
	shift
	"$CTL" --socket "$API_SOCK" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ $rc = 2 ] || fail "dirtytrackctl $*: exit $rc, want 2 (usage): $(cat "$TMP/out" "$TMP/err")"
	[ ! -s "$TMP/out" ] || fail "dirtytrackctl $*: printed on stdout: $(head -3 "$TMP/out")"
	grep -qF -- "$want" "$TMP/err" || fail "dirtytrackctl $*: stderr does not name '$want': $(cat "$TMP/err")"
	echo "ok: dirtytrackctl $* -> usage error"
}
usage "'--bogus'" list --bogus
usage "'extra'" list extra
usage "'--js'" list --js
usage "'--'" list -- --json
usage "--socket needs a value" list --socket
usage "--json takes no value" list --json=yes
usage "'x'" health x
usage "usage: show VM" show opt --frobnicate
usage "usage: show VM" show opt extra
usage "usage: wss VM" wss --json
usage "usage: watch" watch opt other --count 1
usage "plan" plan opt --bandwidth 10Gbit --downtime 300ms --bogus

#!/usr/bin/env bash
# The REST API against the real daemon with curl and dirtytrackctl: every
# path, every error status (400 naming the parameter, 404, 405 with Allow,
# 503 before the first harvest, 414), ETag / If-None-Match -> 304, and the
# OpenAPI document checked against what the server answers.
source "$(dirname "$0")/../lib/common.sh"
start_daemon --epoch 200ms
CTL=("$BUILD/dirtytrackctl" --socket "$API_SOCK")

harvested() { # VM N: at least N epochs harvested (re-read on every call)
	[ "$(vm_field "$1" .epochs_harvested 2>/dev/null || echo 0)" -ge "$2" ]
}
# status METHOD PATH [curl args...] -> "CODE" and the body in $TMP/body, headers in $TMP/hdr
req() {
	local method=(-X "$1") path=$2
	[ "$1" = HEAD ] && method=(--head)
	shift 2
	rm -f "$TMP/body"
	touch "$TMP/body"
	curl -s "${method[@]}" -o "$TMP/body" -D "$TMP/hdr" -w '%{http_code}' --unix-socket "$API_SOCK" \
		"$@" "http://localhost$path"
}
expect() { # CODE METHOD PATH [curl args]
	local want=$1 got
	shift
	got=$(req "$@")
	[ "$got" = "$want" ] || fail "$1 $2: status $got, want $want: $(head -c 300 "$TMP/body")"
	echo "ok: $1 $2 -> $got"
}
problem_is() { # STATUS [PARAM]
	jq -e --argjson s "$1" '.status == $s and (.title | length > 0) and (.detail | length > 0)' "$TMP/body" >/dev/null ||
		fail "not a problem document: $(cat "$TMP/body")"
	grep -qi '^content-type: application/problem+json' "$TMP/hdr" || fail "problem without application/problem+json"
	if [ -n "${2:-}" ]; then
		[ "$(jq -r .parameter "$TMP/body")" = "$2" ] || fail "400 does not name '$2': $(cat "$TMP/body")"
	fi
}

"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name web --memory 128M --vcpus 2 --slots 2 --rate 20000 \
	--wss 10000 --duration 60 --seed 7 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/web || fail "web did not attach"
wait_until 5 harvested web 3 || fail "no harvests"
ID=$(vm_field web .id)

# --- every path answers 200 with the right type
for p in /v1/vms /v1/vms/ "/v1/vms/$ID" /v1/vms/web /v1/vms/web/ /v1/vms/web/wss /v1/vms/web/vcpus \
	/v1/vms/web/slots /v1/vms/web/history "/v1/vms/web/history?since=1&limit=2" /v1/vms/web/heatmap \
	"/v1/vms/web/heatmap?window=2s" /v1/health /openapi.json; do
	expect 200 GET "$p"
	grep -qi '^content-type: application/json' "$TMP/hdr" || fail "$p: not application/json"
	jq -e . "$TMP/body" >/dev/null || fail "$p: not JSON"
done
for p in /v1/vms/web/wss.svg /v1/vms/web/heatmap.svg "/v1/vms/web/heatmap.svg?window=1s"; do
	expect 200 GET "$p"
	grep -qi '^content-type: image/svg+xml' "$TMP/hdr" || fail "$p: not SVG"
	grep -q '<svg' "$TMP/body" || fail "$p: no <svg>"
	xmllint --noout "$TMP/body" 2>/dev/null || python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' "$TMP/body" ||
		fail "$p: not well-formed XML"
done
expect 200 GET /metrics
grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/hdr" || fail "/metrics content type"
expect 200 HEAD /v1/vms/web
! grep -q "{" "$TMP/body" || fail "HEAD has a body"
epoch=$(api "/v1/vms/web/history?limit=100000" | jq '.epochs[-1].epoch')
expect 200 GET "/v1/vms/web/epochs/$epoch/pages"
jq -e --argjson e "$epoch" '.epoch == $e and (.ranges | type == "array")' "$TMP/body" >/dev/null || fail "epoch pages"

# --- figures agree between views
[ "$(api /v1/vms/web/wss | jq -c .wss)" = "$(api /v1/vms/web | jq -c .wss)" ] ||
	echo "note: wss moved between two reads (a harvest in between)"
[ "$(api /v1/vms/web/slots | jq '.slots | length')" = 2 ] || fail "two slots expected"
[ "$(api /v1/vms/web/vcpus | jq '.vcpus | length')" = 2 ] || fail "two vCPUs expected"
[ "$(api '/v1/vms/web/history?limit=2' | jq '.epochs | length')" = 2 ] || fail "limit=2"
[ "$(api "/v1/vms/web/history?since=$epoch" | jq '.epochs[0].epoch')" = "$epoch" ] || fail "since"
api /v1/vms/web/heatmap | jq -e '.regions | length > 0 and all(.[]; .pages > 0 and .pages <= 512 and .fraction <= 1)' >/dev/null ||
	fail "heatmap regions"
echo "ok: views agree"

# --- errors
expect 404 GET /v1/vms/nosuchvm; problem_is 404
expect 404 GET /v1/vms/999999/wss; problem_is 404
expect 404 GET /v1/nothing; problem_is 404
expect 404 GET /; problem_is 404
expect 404 GET /v1/vms/web/nothing; problem_is 404
expect 404 GET /v1/vms/web/epochs/99999999/pages; problem_is 404
expect 400 GET /v1/vms/web/epochs/abc/pages; problem_is 400 n
expect 400 GET "/v1/vms/web/history?limit=0"; problem_is 400 limit
expect 400 GET "/v1/vms/web/history?limit=100001"; problem_is 400 limit
expect 400 GET "/v1/vms/web/history?limit=1x"; problem_is 400 limit
expect 400 GET "/v1/vms/web/history?since=-1"; problem_is 400 since
expect 400 GET "/v1/vms/web/history?since=1&since=2"; problem_is 400 since
expect 400 GET "/v1/vms/web/history?bogus=1"; problem_is 400 bogus
expect 400 GET "/v1/vms/web/history?since"; problem_is 400 since
expect 400 GET "/v1/vms/web/heatmap?window=0"; problem_is 400 window
expect 400 GET "/v1/vms/web/heatmap?window=forever"; problem_is 400 window
expect 400 GET "/v1/vms/web/heatmap.svg?window=25h"; problem_is 400 window
expect 400 GET "/v1/vms/web?index=x&wait=1s"; problem_is 400 index
expect 400 GET "/v1/vms/web?index=1&wait=soon"; problem_is 400 wait
expect 400 GET "/v1/vms/web?wait=1s"; problem_is 400 wait
expect 400 GET "/v1/vms?limit=1"; problem_is 400 limit
expect 400 GET "/metrics?x=1"; problem_is 400 x
expect 400 GET "/v1/health?verbose=1"; problem_is 400 verbose
expect 400 GET "/v1/vms/web%zz"; problem_is 400
expect 414 GET "/v1/vms/$(head -c 3000 /dev/zero | tr '\0' a)"; problem_is 414
for m in POST PUT DELETE PATCH; do
	expect 405 "$m" /v1/vms/web
	problem_is 405
	grep -qi '^allow: GET, HEAD' "$TMP/hdr" || fail "405 without Allow"
done
expect 405 POST /metrics
expect 405 POST "/v1/vms/web/history?bogus=1"

# 503 before the first harvest: a VM attached to a daemon with a long epoch
# (and a state directory of its own: the VMs saved above are not restored).
stop_daemon
start_daemon --epoch 1min --state-dir "$TMP/state2"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name fresh --memory 64M --rate 1000 --duration 30 >"$TMP/sim2.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/fresh || fail "fresh did not attach"
for p in wss wss.svg vcpus slots heatmap heatmap.svg "plan?bandwidth=10Gbit&downtime=300ms"; do
	expect 503 GET "/v1/vms/fresh/$p"
	problem_is 503
	grep -qi '^retry-after: 60' "$TMP/hdr" || fail "503 without Retry-After"
done
expect 200 GET /v1/vms/fresh
expect 200 GET /v1/vms/fresh/history
[ "$(jq '.epochs | length' "$TMP/body")" = 0 ] || fail "history before the first harvest"

# --- ETag and 304
etag=$(curl -s -D - -o /dev/null --unix-socket "$API_SOCK" http://localhost/v1/vms/fresh | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
[[ $etag =~ ^\"[0-9a-f]+-[0-9]+-[0-9]+\"$ ]] || fail "strong ETag expected, got '$etag'"
expect 304 GET /v1/vms/fresh -H "If-None-Match: $etag"
[ ! -s "$TMP/body" ] || fail "304 with a body"
grep -qi "^etag: $etag" "$TMP/hdr" || fail "304 without the ETag"
expect 304 GET /v1/vms/fresh -H "If-None-Match: \"x\", W/$etag"
expect 304 GET /v1/vms/fresh -H "If-None-Match: *"
expect 200 GET /v1/vms/fresh -H 'If-None-Match: "0-0-0"'
letag=$(curl -s -D - -o /dev/null --unix-socket "$API_SOCK" http://localhost/v1/vms | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
expect 304 GET /v1/vms -H "If-None-Match: $letag"
# A change (a new VM) changes the list's ETag.
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name other --memory 64M --rate 1000 --duration 30 >"$TMP/sim3.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/other || fail "other did not attach"
expect 200 GET /v1/vms -H "If-None-Match: $letag"
echo "ok: ETag / If-None-Match"

# --- dirtytrackctl
"${CTL[@]}" list | grep -q fresh || fail "ctl list"
"${CTL[@]}" --json list | jq -e '.vms | length == 2' >/dev/null || fail "ctl list --json"
"${CTL[@]}" show fresh | grep -q 'VM .*fresh' || fail "ctl show"
"${CTL[@]}" --json show fresh | jq -e '.name == "fresh"' >/dev/null || fail "ctl show --json"
"${CTL[@]}" health | grep -q '^ok: 2 VMs' || fail "ctl health"
set +e
"${CTL[@]}" show nosuchvm 2>"$TMP/err"; rc=$?
[ $rc = 4 ] || fail "ctl show unknown VM: exit $rc, want 4"
[ "$(wc -l <"$TMP/err")" = 1 ] || fail "ctl: unknown VM is not a one-line error: $(cat "$TMP/err")"
"$BUILD/dirtytrackctl" --socket "$TMP/none.sock" list 2>"$TMP/err"; rc=$?
[ $rc = 3 ] || fail "ctl unreachable: exit $rc, want 3"
[ "$(wc -l <"$TMP/err")" = 1 ] || fail "ctl: unreachable is not a one-line error"
"${CTL[@]}" frobnicate 2>/dev/null; rc=$?
[ $rc = 2 ] || fail "ctl unknown command: exit $rc, want 2"
set -e
echo "ok: dirtytrackctl commands and exit codes"

# --- the OpenAPI document against the server
DOC="$(dirname "$0")/../../docs/openapi.json"
api /openapi.json | cmp -s - "$DOC" || fail "/openapi.json differs from docs/openapi.json"
jq -e '.openapi | startswith("3.1")' "$DOC" >/dev/null || fail "not OpenAPI 3.1"
stop_daemon
start_daemon --epoch 200ms --state-dir "$TMP/state3"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name doc --memory 64M --rate 5000 --duration 30 >"$TMP/sim4.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 harvested doc 2 || fail "doc: no harvests"
epoch=$(api /v1/vms/doc/history | jq '.epochs[-1].epoch')
npaths=0
for path in $(jq -r '.paths | keys[]' "$DOC"); do
	url=${path//\{vm\}/doc}
	url=${url//\{n\}/$epoch}
	# required query parameters (the plan's) get their documented example
	query=$(jq -r --arg p "$path" '. as $doc | [.paths[$p].get.parameters[]? |
		if has("$ref") then (.["$ref"] | split("/")[-1]) as $n | $doc.components.parameters[$n] else . end |
		select(.in == "query" and .required) | "\(.name)=\(.example // .schema.example)"] | join("&")' "$DOC")
	[ -z "$query" ] || url="$url?$query"
	expect 200 GET "$url"
	npaths=$((npaths + 1))
	# Documented statuses include what the server said; required fields present.
	schema=$(jq -c --arg p "$path" '.paths[$p].get.responses["200"].content | to_entries[0] | .value.schema' "$DOC")
	ctype=$(jq -r --arg p "$path" '.paths[$p].get.responses["200"].content | keys[0]' "$DOC")
	grep -qi "^content-type: $ctype" "$TMP/hdr" || fail "$path: content type is not $ctype"
	[ "$ctype" = application/json ] || continue
	# required fields of the schema (following one $ref and allOf)
	req=$(jq -c --argjson s "$schema" '
		def deref: if has("$ref") then (.["$ref"] | split("/")[-1]) as $n | $doc.components.schemas[$n] | deref
			elif has("allOf") then [.allOf[] | deref] | {required: (map(.required // []) | add)}
			else . end;
		$s | deref | .required // []' --argjson doc "$(cat "$DOC")" -n)
	jq -e --argjson req "$req" '. as $o | all($req[]; . as $k | $o | has($k))' "$TMP/body" >/dev/null ||
		fail "$path: the answer lacks one of $req"
done
[ "$npaths" -ge 14 ] || fail "only $npaths documented paths"
# every documented error status of a VM path is one the server can give, and
# every route the server knows is documented
for p in /v1/vms/doc/wss /v1/vms/doc/heatmap /v1/vms/doc/plan; do
	jq -e --arg p "${p/doc/\{vm\}}" '.paths[$p].get.responses | has("400") and has("404") and has("405") and has("503")' "$DOC" >/dev/null ||
		fail "$p: error statuses undocumented"
done
jq -e '.components.schemas.Problem.required | index("status") and index("detail")' "$DOC" >/dev/null || fail "Problem schema"
echo "ok: OpenAPI: $npaths documented paths answer as documented"

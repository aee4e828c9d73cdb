#!/usr/bin/env bash
# GET /v1/vms/{vm}/epochs/{n}/pages is bounded: a dense, fragmented epoch
# (about half of 256 Ki pages dirtied at random: tens of thousands of runs)
# is served in pages of at most ?limit= ranges (default 10000, at most
# 100000) with a "next" link; following the links gives the exact set
# (each page counted once, in order, the epoch's page count), the same as
# one big page; bad cursors and limits are 400s naming the parameter; and
# 8 concurrent readers leave a health probe served within a bound.
source "$(dirname "$0")/../lib/common.sh"
command -v jq >/dev/null || skip "jq is missing"
start_daemon
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name dense --memory 1G --mode bitmap --rate 180000 \
	--duration 120 --seed 3 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 api /v1/vms/dense || fail "dense did not attach"
wait_until 15 sh -c "[ \"\$(curl -sf --unix-socket '$API_SOCK' http://l/v1/vms/dense | jq .epochs_harvested)\" -ge 2 ]" ||
	fail "no harvests"
E=$(api /v1/vms/dense/history | jq '.epochs[-1].epoch')
PAGES=$(api /v1/vms/dense/history | jq '.epochs[-1].pages')
[ "$PAGES" -gt 50000 ] || fail "epoch $E dirtied only $PAGES pages: not the dense epoch this test needs"

# --- one default page: bounded, with a next link
api "/v1/vms/dense/epochs/$E/pages" >"$TMP/p0" || fail "first page"
n=$(jq '.ranges | length' "$TMP/p0")
[ "$n" -le 10000 ] || fail "the default page holds $n ranges (more than 10000): the response is unbounded"
jq -e '.limit == 10000 and .cursor == 0 and (.next | type == "string") and (.next_cursor | type == "number")' "$TMP/p0" >/dev/null ||
	fail "no next link on a partial page: $(jq -c 'del(.ranges)' "$TMP/p0")"
echo "ok: the default page holds $n ranges and links the next"

# --- following next gives the exact set, the same as one page of 100000
python3 - "$API_SOCK" "$E" "$PAGES" <<'EOF' || fail "paged walk"
import http.client, json, socket, sys
sock, epoch, pages = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
def get(path):
    c = C("localhost"); c.request("GET", path); r = c.getresponse(); b = r.read()
    assert r.status == 200, (path, r.status, b[:200])
    return json.loads(b)
def walk(limit):
    path = f"/v1/vms/dense/epochs/{epoch}/pages" + (f"?limit={limit}" if limit else "")
    got, n = [], 0
    while path:
        d = get(path)
        assert len(d["ranges"]) <= d["limit"], "a page holds more than its limit"
        assert (d["next"] is None) == (d["next_cursor"] is None)
        got += d["ranges"]; n += 1; path = d["next"]
    return got, n
def pageset(ranges):
    s = []
    for g, c in ranges:
        assert c > 0
        assert not s or g >= s[-1], "ranges out of order or overlapping"
        s.extend(range(g, g + c))
    return s
a, na = walk(None)
b, nb = walk(100000)
c, nc = walk(977)
pa, pb, pc = pageset(a), pageset(b), pageset(c)
assert len(pa) == pages, f"the pages add up to {len(pa)}, the epoch has {pages}"
assert pa == pb == pc, "the paged walks disagree"
assert na > 1 and nc > na, (na, nb, nc)
print(f"ok: {pages} pages in {len(b)} runs: the same through {na} pages of 10000, {nb} of 100000, {nc} of 977")
EOF

# --- bad parameters
for q in "limit=0" "limit=100001" "limit=x" "cursor=-1" "cursor=4294967296" "cursor=" "since=1"; do
	code=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$API_SOCK" "http://localhost/v1/vms/dense/epochs/$E/pages?$q")
	[ "$code" = 400 ] || fail "?$q: status $code, want 400"
	want=${q%%=*}
	[ "$(jq -r .parameter "$TMP/body")" = "$want" ] || fail "?$q: the 400 does not name '$want': $(cat "$TMP/body")"
done
echo "ok: bad limit and cursor are 400s naming the parameter"
# a cursor past the end: an empty last page
api "/v1/vms/dense/epochs/$E/pages?cursor=4294967295" | jq -e '.ranges == [] and .next == null' >/dev/null ||
	fail "a cursor past the end"

# --- 8 concurrent whole-set readers; health stays served
reader() {
	local p="/v1/vms/dense/epochs/$E/pages"
	while [ "$p" != null ]; do p=$(api "$p" | jq -r .next) || return 1; done
}
pids=()
for _ in $(seq 8); do reader & pids+=($!); done
worst=0
for _ in $(seq 20); do
	t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 10 --unix-socket "$API_SOCK" http://l/v1/health) || fail "health not served during the readers"
	worst=$(python3 -c "print(max($worst, $t))")
	sleep 0.05
done
for p in "${pids[@]}"; do wait "$p" || fail "a reader failed"; done
python3 -c "import sys; sys.exit(0 if $worst < 3 else 1)" || fail "health took ${worst}s during 8 readers"
echo "ok: 8 concurrent readers; slowest health probe ${worst}s"
daemon_alive || fail "daemon died"

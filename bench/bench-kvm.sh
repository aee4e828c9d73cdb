#!/usr/bin/env bash
# Real-KVM guest write throughput per collection mode, side by side:
#   off      dirty logging off (dtvm --no-tracking)
#   self     dtvm harvests its own rings/bitmap (--self-harvest): KVM's cost
#   daemon   attached to dirtytrackd harvesting at the same interval
# for harvest intervals of 1 s and 100 ms, one vCPU writing as fast as it
# can (uniform over 64k pages of 512 MiB). Also the daemon's CPU time per
# harvested ring entry / bitmap page. Usage: bench/bench-kvm.sh [BUILD]
# (REPS=n repeats each run and keeps the median; DURATION=seconds.)
set -euo pipefail
BUILD=${1:-${BUILD:-build}}
DURATION=${DURATION:-3}
REPS=${REPS:-1}
TMP=$(mktemp -d /tmp/bench-kvm.XXXXXX)
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

rc=0
"$BUILD/dtvm" --self-harvest 10ms --duration 200ms --memory 4M >"$TMP/pre.log" 2>&1 || rc=$?
if [ $rc -eq 77 ]; then
	echo "bench-kvm: SKIPPED: $(cat "$TMP/pre.log")"
	exit 0
fi
[ $rc -eq 0 ] || { cat "$TMP/pre.log"; exit 1; }

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# rate MODE ARGS...: guest writes per second (median of REPS runs)
rate() {
	local mode=$1
	shift
	for _ in $(seq "$REPS"); do
		"$BUILD/dtvm" --mode "$mode" --memory 512M --wss 65536 --vcpus 1 --rate max \
			--duration "$DURATION" --truth "$TMP/t.json" "$@" >/dev/null 2>&1
		jq .guest_writes_per_second "$TMP/t.json"
	done | sort -n | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] }'
}

printf '%-12s %-6s %10s %10s %10s %8s %8s %14s\n' mode epoch off/s self/s daemon/s \
	self% daemon% "daemon ns/page"
for mode in ring bitmap ring+bitmap; do
	off=$(rate "$mode" --no-tracking)
	for epoch in 1s 100ms; do
		self=$(rate "$mode" --self-harvest "$epoch")
		"$BUILD/dirtytrackd" --config /dev/null --state-dir "" --dbus off --runtime-dir "$TMP/run" --listen-tcp off --epoch "$epoch" \
			>"$TMP/daemon.log" 2>&1 &
		DPID=$!
		for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
		c0=$(cpu_ticks $DPID)
		att=$(rate "$mode" --connect "$TMP/run/attach.sock" --name "bench")
		c1=$(cpu_ticks $DPID)
		pages=$(curl -sf --unix-socket "$TMP/run/api.sock" http://localhost/v1/vms |
			jq '[.vms[].counters | .ring_entries + .bitmap_pages] | add // 0' 2>/dev/null || echo 0)
		[ "$pages" = 0 ] && pages=$(curl -sf --unix-socket "$TMP/run/api.sock" \
			http://localhost/v1/vms/bench | jq '.counters.ring_entries + .counters.bitmap_pages')
		kill $DPID
		wait $DPID 2>/dev/null || true
		DPID=""
		rm -rf "$TMP/run"
		awk -v m="$mode" -v e="$epoch" -v o="$off" -v s="$self" -v a="$att" \
			-v c=$((c1 - c0)) -v t="$ticks" -v p="$pages" 'BEGIN {
			printf "%-12s %-6s %10d %10d %10d %7.1f%% %7.1f%% %14.0f\n", m, e, o, s, a,
				100 * (s - o) / o, 100 * (a - s) / s, p ? c / t * 1e9 / p : 0 }'
	done
done
echo "self%: self-harvest vs tracking off (KVM's dirty-logging cost);" \
	"daemon%: attached vs self-harvest (what the daemon adds). Noise on this host: about +-10%."

# End-to-end harvest latency: a guest page written (dtvm --trace stamps each
# write with the CLOCK_MONOTONIC µs at which its batch's KVM_RUN returned) to
# the page visible over REST (the first GET .../epochs/N/pages listing it,
# polled every 2 ms on the API socket). Also the daemon-side part alone:
# write to the close of the epoch that holds it (end_us). Every traced write
# must be found: a miss is an exactness failure. LAT_MODES, LAT_RATE.
LAT_MODES=${LAT_MODES:-ring bitmap}
LAT_RATE=${LAT_RATE:-2000}
lat_poll() { # API_SOCKET VM TRACE DTVM_PID EPOCH_US
	python3 - "$@" <<'PY'
import http.client, json, os, socket, struct, sys, time

api, vm, trace, pid, epoch_us = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

class Unix(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=5)
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(api)

def get(path):
    c = Unix()
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, json.loads(body) if body else None
    except OSError:
        return 0, None
    finally:
        c.close()

def alive():
    try:
        os.kill(pid, 0)
        return not open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False

now_us = lambda: time.monotonic_ns() // 1000
epochs = {}  # n -> (end_us, seen_us, [(first, count)])
nxt, lost, stop_at = 0, 0, None
while True:
    if stop_at is None and not alive():
        stop_at = now_us() + 3 * epoch_us  # the final epochs after the last write
    if stop_at is not None and now_us() > stop_at:
        break
    st, h = get(f"/v1/vms/{vm}/history?since={nxt}&limit=64")
    if st == 200:
        for e in h["epochs"]:
            n = e["epoch"]
            if n < nxt:
                continue
            st, p = get(f"/v1/vms/{vm}/epochs/{n}/pages?limit=100000")
            seen = now_us()
            if st == 200:
                epochs[n] = (p["end_us"], seen, p["ranges"])
            else:
                lost += 1
            nxt = n + 1
    time.sleep(0.002)

order = sorted(epochs)
sets = {n: epochs[n][2] for n in order}
def contains(n, page):
    for first, count in sets[n]:
        if first <= page < first + count:
            return True
    return False

raw = open(trace, "rb").read()
e2e, dmn, miss = [], [], 0
i0 = 0
for off in range(0, len(raw) - 15, 16):
    t, page = struct.unpack_from("<QQ", raw, off)
    # KVM_RUN returned at t, so the entry was published up to one batch before.
    while i0 < len(order) and epochs[order[i0]][0] < t - 1000:
        i0 += 1
    for n in order[i0:]:
        if contains(n, page):
            e2e.append(epochs[n][1] - t)
            dmn.append(epochs[n][0] - t)
            break
    else:
        miss += 1

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] / 1000 if v else float("nan")
print(f"{len(e2e)} {miss} {lost} {pct(e2e, .5):.1f} {pct(e2e, .99):.1f} {pct(e2e, 1):.1f}"
      f" {pct(dmn, .5):.1f} {pct(dmn, .99):.1f}"
      f" {pct([epochs[n][1] - epochs[n][0] for n in order], .5):.1f}")
PY
}

echo
printf '%-12s %-6s %8s %6s %10s %10s %10s %13s %13s %13s\n' mode epoch writes missed \
	"median ms" "p99 ms" "max ms" "close med ms" "close p99 ms" "REST+ med ms"
for mode in $LAT_MODES; do
	for epoch in 1s 100ms; do
		case $epoch in 1s) eus=1000000 dur=8s ;; 100ms) eus=100000 dur=4s ;; esac
		"$BUILD/dirtytrackd" --config /dev/null --state-dir "" --dbus off --runtime-dir "$TMP/run" --listen-tcp off --epoch "$epoch" \
			>"$TMP/daemon.log" 2>&1 &
		DPID=$!
		for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
		rm -f "$TMP/trace.bin"
		"$BUILD/dtvm" --mode "$mode" --memory 512M --wss 65536 --vcpus 1 --rate "$LAT_RATE" \
			--duration "$dur" --trace "$TMP/trace.bin" --connect "$TMP/run/attach.sock" \
			--name lat >"$TMP/dtvm.log" 2>&1 &
		vpid=$!
		out=$(lat_poll "$TMP/run/api.sock" lat "$TMP/trace.bin" $vpid $eus)
		wait $vpid || echo "bench-kvm: dtvm failed: $(tail -1 "$TMP/dtvm.log")"
		kill $DPID
		wait $DPID 2>/dev/null || true
		DPID=""
		rm -rf "$TMP/run"
		read -r n miss lost med p99 max cmed cp99 vis <<<"$out"
		printf '%-12s %-6s %8s %6s %10s %10s %10s %13s %13s %13s\n' "$mode" "$epoch" "$n" \
			"$miss" "$med" "$p99" "$max" "$cmed" "$cp99" "$vis"
		[ "$lost" = 0 ] || echo "  ($lost epochs' page lists were gone before the poll read them)"
	done
done
echo "latency: dtvm write (KVM_RUN return) to the page listed by GET" \
	"/v1/vms/ID/epochs/N/pages (polled every 2 ms); close: to the epoch's end_us;" \
	"REST+: epoch end_us to its page list read over REST."

#!/usr/bin/env bash
# REST and /metrics under load: 256 simulated VMs (dtsim) harvesting every
# second, wrk on GET /v1/vms/{id} and on /metrics over loopback TCP.
# Prints requests/s and p99 latency, and the harvest lag during the load:
# the largest gap between consecutive epoch closes beyond one epoch.
# Targets: p99 <= 5 ms for a VM read, <= 50 ms for a full scrape, harvest
# never delayed more than 10 % of an epoch (100 ms).
# Usage: bench/bench-api.sh [BUILD] (default build); VMS=256 SECONDS_LOAD=10 RATE=200
set -euo pipefail
BUILD=${1:-build}
VMS=${VMS:-256}
DUR=${SECONDS_LOAD:-10}
command -v wrk >/dev/null || { echo "SKIP: wrk is missing (make deps installs it)"; exit 77; }
source "$(dirname "$0")/lib.sh"
bench_init api
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/conf" <<CONF
[attach]
max_vms = $((VMS + 16))
[api]
max_connections = 256
CONF
"$BUILD/dirtytrackd" -c "$TMP/conf" --state-dir "" --runtime-dir "$TMP/run" --listen-tcp "127.0.0.1:$PORT" --dbus off \
	--epoch 1s >"$TMP/daemon.log" 2>&1 &
PIDS+=($!)
wait_attach_socket
for i in $(seq "$VMS"); do
	"$BUILD/dtsim" --connect "$TMP/run/attach.sock" --name "vm$i" --memory 64M --rate "${RATE:-200}" --wss 8000 \
		--seed "$i" >/dev/null 2>&1 &
	PIDS+=($!)
done
U="http://127.0.0.1:$PORT"
for _ in $(seq 200); do
	n=$(curl -s "$U/v1/health" | jq .attached 2>/dev/null || echo 0)
	[ "$n" -ge "$VMS" ] && break
	sleep 0.1
done
echo "VMs attached: $n; warming up 3 s"
sleep 3
start_epoch=$(curl -s "$U/v1/vms/1/history?limit=1" | jq '.epochs[-1].epoch // 0')
run_wrk() { # path
	wrk -t2 -c16 -d"${DUR}s" --latency "$U$1" >"$TMP/wrk" 2>&1
	local rps p99
	rps=$(awk '/^Requests\/sec/{print $2}' "$TMP/wrk")
	p99=$(awk '$1=="99%"{print $2}' "$TMP/wrk")
	printf '%-22s %10s req/s   p99 %s\n' "$1" "$rps" "$p99"
}
run_wrk "/v1/vms/$((VMS / 2))"
run_wrk /metrics
# Harvest lag during the load: epoch-close gaps of every VM over the run.
lag=0
for i in $(seq "$VMS"); do
	curl -s "$U/v1/vms/vm$i/history?since=$start_epoch&limit=100000" | jq '[.epochs[].end_us] | . as $e |
		[range(1; length) | $e[.] - $e[. - 1] - 1000000] | max // 0'
done >"$TMP/lags"
lag=$(sort -n "$TMP/lags" | tail -1)
echo "harvest lag during the load: worst epoch-close delay $((lag / 1000)) ms beyond the 1 s epoch (target <= 100 ms)"
echo "scrape size: $(curl -s "$U/metrics" | wc -c) bytes, $(curl -s "$U/metrics" | grep -vc '^#') series"

# Shared by the daemon benchmarks (sourced; bash): a scratch directory $TMP
# removed at exit with every process listed in PIDS killed first, the REST
# API over the daemon's Unix socket in $TMP/run, and the waits for its
# attach socket and for N attached VMs.
bench_init() { # name [parent directory, default /tmp]
	TMP=$(mktemp -d "${2:-/tmp}/dt-bench-$1.XXXXXX")
	PIDS=()
	trap bench_cleanup EXIT
}
bench_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
api() { curl -sf --max-time 30 --unix-socket "$TMP/run/api.sock" "http://localhost$1"; }
wait_attach_socket() {
	for _ in $(seq 100); do [ -S "$TMP/run/attach.sock" ] && break; sleep 0.05; done
}
wait_attached() { # N: waits up to 20 s, prints how many are attached
	local n=0
	for _ in $(seq 200); do
		n=$(api /v1/health | jq .attached 2>/dev/null || echo 0)
		[ "$n" -ge "$1" ] && break
		sleep 0.1
	done
	echo "$n"
}

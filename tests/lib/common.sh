# Shared helpers for integration tests (sourced). Each test runs its own
# daemon in a scratch runtime directory and cleans up after itself.
set -euo pipefail
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
TMP=$(mktemp -d /tmp/dt-test.XXXXXX)
DAEMON_PID=""
BG_PIDS=()

cleanup() {
	local rc=$? drc=0
	for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || drc=$?
		# A clean stop is part of every test: sanitizers report leaks and
		# errors at exit with a non-zero status.
		if [ $drc -ne 0 ] && [ $rc -eq 0 ]; then
			echo "FAIL: the daemon exited with status $drc at the end of the test" >&2
			rc=1
		fi
	fi
	if [ -f "$TMP/daemon.log" ] && grep -q "Sanitizer\|runtime error" "$TMP/daemon.log" && [ $rc -eq 0 ]; then
		echo "FAIL: sanitizer report in the daemon log" >&2
		rc=1
	fi
	if [ $rc -ne 0 ] && [ -f "$TMP/daemon.log" ]; then
		echo "--- daemon log (last 40 lines)"
		tail -n 40 "$TMP/daemon.log"
	fi
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
skip() {
	echo "SKIP: $*" >&2
	exit 77
}
check() { # description, then a command that must succeed
	local what=$1
	shift
	"$@" || fail "$what"
	echo "ok: $what"
}

# start_daemon [extra args...]: runtime dir $TMP/run, API at $API_SOCK, VM
# histories in $STATE_DIR ($TMP/state unless set). No system configuration
# (/etc/dirtytrackd...) is read unless a test passes --config.
start_daemon() {
	RUN="$TMP/run"
	API_SOCK="$RUN/api.sock"
	ATTACH_SOCK="$RUN/attach.sock"
	STATE_DIR=${STATE_DIR:-$TMP/state}
	"$BUILD/dirtytrackd" --config /dev/null --runtime-dir "$RUN" --state-dir "$STATE_DIR" \
		--listen-tcp off --dbus off "$@" >>"$TMP/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		[ -S "$API_SOCK" ] && [ -S "$ATTACH_SOCK" ] && curl -sf --max-time 2 --unix-socket "$API_SOCK" http://localhost/v1/health >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || fail "daemon exited at start: $(cat "$TMP/daemon.log")"
		sleep 0.05
	done
	fail "daemon did not come up"
}

stop_daemon() {
	kill "$DAEMON_PID"
	wait "$DAEMON_PID" || fail "daemon exited with an error"
	DAEMON_PID=""
}

daemon_alive() {
	kill -0 "$DAEMON_PID" 2>/dev/null
}

# api PATH: GET over the Unix socket, body on stdout, fails on non-2xx.
api() {
	curl -sf --unix-socket "$API_SOCK" "http://localhost$1"
}
# api_status PATH: HTTP status code only.
api_status() {
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$API_SOCK" "http://localhost$1"
}

# wait_until SECONDS command...: poll until the command succeeds.
wait_until() {
	local t=$1
	shift
	local end=$((SECONDS + t))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# require_qemu_guest: skip, saying why, unless Debian's QEMU, python3, jq, a
# usable /dev/kvm and the project's guest (build/dtguest.elf) are all there;
# fail if the build lacks libdtqemu.so. For tests named qemu-*.
require_qemu_guest() {
	local c
	for c in qemu-system-x86_64 python3 jq; do
		command -v "$c" >/dev/null || skip "$c is missing (qemu-system-x86, python3, jq)"
	done
	python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null ||
		skip "/dev/kvm is not usable (absent or no permission)"
	[ -f "$BUILD/dtguest.elf" ] || skip "no $BUILD/dtguest.elf (gcc -m32 could not build the guest)"
	[ -f "$BUILD/libdtqemu.so" ] || fail "$BUILD/libdtqemu.so is missing"
}

vm_field() { # VM jq-expression
	api "/v1/vms/$1" | jq -r "$2"
}

vm_state_is() { # VM STATE: re-read on every call, for wait_until
	[ "$(vm_field "$1" .state 2>/dev/null)" = "$2" ]
}

# require_nspawn: skip, saying why, where systemd-nspawn cannot boot a
# container: not root, no nspawn or systemd, and root in a container (a
# common CI setting) without the capabilities or namespaces it needs.
require_nspawn() {
	local capeff
	[ "$(id -u)" = 0 ] || skip "systemd-nspawn needs root"
	command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (package systemd-container; make deps installs it)"
	[ -x /lib/systemd/systemd ] || skip "no systemd to boot in the container"
	capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$$/status)
	(((16#$capeff >> 21) & 1)) ||
		skip "no CAP_SYS_ADMIN here (CapEff $capeff): systemd-nspawn cannot mount the container's root"
	(((16#$capeff >> 12) & 1)) ||
		skip "no CAP_NET_ADMIN here (CapEff $capeff): systemd-nspawn --private-network cannot set up the container's network"
	unshare --net --mount --pid --fork true 2>"$TMP/unshare.err" ||
		skip "cannot create namespaces here (unshare --net --mount --pid: $(head -n1 "$TMP/unshare.err"))"
}

# nspawn_cleanup: nspawn leaves empty cgroups behind on a host without
# systemd as PID 1; rmdir removes only cgroups without processes (another
# container's stay).
nspawn_cleanup() {
	local d
	for d in /sys/fs/cgroup/payload /sys/fs/cgroup/supervisor /sys/fs/cgroup/*/payload \
		/sys/fs/cgroup/*/supervisor; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
}

# free_port: a free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_prometheus TARGET_PORT [RULE_FILE]: a real Prometheus server on a
# free loopback port ($PPORT) scraping 127.0.0.1:TARGET_PORT every second
# as job "dirtytrackd" (and evaluating RULE_FILE every second); prom_query
# EXPR queries it.
start_prometheus() {
	PPORT=$(free_port)
	{
		printf 'global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
		[ -n "${2:-}" ] && printf 'rule_files:\n  - %s\n' "$2"
		printf 'scrape_configs:\n  - job_name: dirtytrackd\n    static_configs:\n'
		printf "      - targets: ['127.0.0.1:%s']\n" "$1"
	} >"$TMP/prom.yml"
	prometheus --config.file="$TMP/prom.yml" --storage.tsdb.path="$TMP/tsdb" \
		--web.listen-address="127.0.0.1:$PPORT" >"$TMP/prom.log" 2>&1 &
	BG_PIDS+=($!)
}
prom_query() { curl -sf "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1"; }

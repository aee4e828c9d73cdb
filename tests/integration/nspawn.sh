#!/usr/bin/env bash
# With a real systemd as PID 1: boot the host's own /usr in a systemd-nspawn
# container (tmpfs root, private network), install the project into it with
# `make install` (into a DESTDIR whose parts are bound where the read-only
# /usr does not hide them), and, with the system bus already running, the
# install steps of README.md literally (systemd-sysusers, tmpfiles, reload
# of the bus, enable --now),
# `systemctl start dirtytrackd` (socket units, Type=notify, the sandbox as
# shipped, user dirtytrackd), attach a simulated VMM through the activated
# socket, read REST on the Unix socket and loopback TCP, read the D-Bus name
# on the container's system bus, `systemctl reload` with a drop-in in
# /etc/dirtytrackd/dirtytrackd.conf.d, stop it cleanly, and socket
# re-activation after the stop. Skipped, with the reason, where nspawn
# cannot boot (no root, no CAP_SYS_ADMIN or CAP_NET_ADMIN, no namespaces).
source "$(dirname "$0")/../lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
require_nspawn
[ -x "$BUILD/dtsim" ] || fail "$BUILD/dtsim is missing"

# --- install into a DESTDIR ---------------------------------------------------
DEST="$TMP/dest"
# -o: install what the test run built (sanitizers and all), never rebuild it.
NOBUILD=(-o "$BUILD/dirtytrackd" -o "$BUILD/dirtytrackctl" -o "$BUILD/libdirtytrack.a")
make -s -C "$SRC" "${NOBUILD[@]}" BUILD="$BUILD" install DESTDIR="$DEST" PREFIX=/opt/dirtytrackd SYSCONFDIR=/etc \
	SYSTEMDUNITDIR=/etc/systemd/system SYSUSERSDIR=/etc/sysusers.d TMPFILESDIR=/etc/tmpfiles.d \
	DBUS_POLICYDIR=/etc/dbus-1/system.d >"$TMP/install.log" 2>&1 ||
	fail "make install: $(cat "$TMP/install.log")"
check "make install put the service unit in place" \
	grep -qx 'ExecStart=/opt/dirtytrackd/sbin/dirtytrackd' "$DEST/etc/systemd/system/dirtytrackd.service"
# A sanitizer build cannot run LeakSanitizer under the unit's system-call
# filter (it needs ptrace): errors are still reported, leaks are not.
mkdir -p "$DEST/etc/systemd/system/dirtytrackd.service.d"
if nm -D "$BUILD/dirtytrackd" 2>/dev/null | grep __asan_init >/dev/null; then # not -q: SIGPIPE + pipefail
	printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' \
		>"$DEST/etc/systemd/system/dirtytrackd.service.d/asan.conf"
fi
# A short watchdog, so the test also sees pings keep it alive.
printf '[Service]\nWatchdogSec=3s\n' >"$DEST/etc/systemd/system/dirtytrackd.service.d/test.conf"

mkdir -p "$TMP/results" "$TMP/tools"
cp "$BUILD/dtsim" "$TMP/tools/"
cat >"$TMP/tools/dt-test.service" <<'EOF'
[Unit]
Description=dirtytrackd test inside the container
After=multi-user.target dbus.socket
SuccessAction=exit
FailureAction=exit
[Service]
Type=oneshot
ExecStart=/bin/bash /opt/dt-tools/inner.sh
StandardOutput=append:/results/inner.log
StandardError=append:/results/inner.log
EOF

cat >"$TMP/tools/inner.sh" <<'EOF'
set -euo pipefail
step() { echo "ok: $*"; }
die() { echo "FAIL: $*"; journalctl -b --no-pager -u dirtytrackd > /results/journal.txt 2>&1; journalctl -b --no-pager -u dirtytrackd -u dirtytrackd.socket -u dirtytrackd-api.socket | tail -n 40; exit 1; }
wait_for() { local i; for i in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
api() { curl -sf --unix-socket /run/dirtytrackd/api.sock "http://localhost$1"; }
status_text() { systemctl show -P StatusText dirtytrackd; }

# make install's /etc lands on a running machine (booted without it: no
# preset enabled a unit, no boot-time sysusers or tmpfiles ran for it),
# with its system bus up, which reads the new policy at once while user
# dirtytrackd does not exist yet.
systemctl start dbus.service || die "systemctl start dbus"
busctl --system status >/dev/null || die "no system bus"
cp -a /opt/dt-etc/. /etc/ || die "installing /etc"
getent passwd dirtytrackd >/dev/null && die "user dirtytrackd exists before sysusers"
# README's install steps, literally, as an administrator types them.
bash -ex /opt/dt-tools/readme-steps.sh >/results/readme-steps.log 2>&1 ||
	die "README's install steps: $(tail -n 5 /results/readme-steps.log)"
getent passwd dirtytrackd >/dev/null || die "no user dirtytrackd"
getent group dirtytrack >/dev/null || die "no group dirtytrack"
step "README's install steps ran: $(grep -c '^+ ' /results/readme-steps.log) commands; user and group created"

dirtytrackd_bin=/opt/dirtytrackd/sbin/dirtytrackd
$dirtytrackd_bin --test-config || die "--test-config on the installed configuration"
# into a file, not a pipe: grep -q stops at the first line, and a SIGPIPE
# would fail the pipeline (pipefail)
$dirtytrackd_bin --cat-config >/results/cat-config.out || die "--cat-config failed"
grep -q '^# /etc/dirtytrackd/dirtytrackd.conf$' /results/cat-config.out || die "--cat-config: $(head -n 3 /results/cat-config.out)"
step "the installed configuration is found and valid"

systemctl start dirtytrackd.service || die "systemctl start dirtytrackd"
[ "$(systemctl is-active dirtytrackd)" = active ] || die "not active"
[ "$(systemctl is-enabled dirtytrackd.socket)" = enabled ] || die "README's steps did not enable the socket"
[ "$(systemctl show -P Type dirtytrackd)" = notify ] || die "not Type=notify"
step "systemctl start dirtytrackd: active, status '$(status_text)'"
[ "$(status_text)" = "0 VMs attached, 0 listed" ] || die "status text: $(status_text)"
m=$(stat -c "%a %G" /run/dirtytrackd/attach.sock); [ "$m" = "660 dirtytrack" ] || die "attach socket mode $m"
pid=$(systemctl show -P MainPID dirtytrackd)
[ "$(stat -c %U /proc/$pid)" = dirtytrackd ] || die "does not run as dirtytrackd"
grep -q '^CapEff:\s*0000000000000000' /proc/$pid/status || die "has capabilities"
step "runs as dirtytrackd, no capabilities, attach socket 0660 group dirtytrack"

/opt/dt-tools/dtsim --connect /run/dirtytrackd/attach.sock --name nspawn-vm --memory 128M \
	--rate 5000 >/results/dtsim.log 2>&1 &
sim=$!
wait_for api /v1/vms/nspawn-vm || die "the VM did not attach"
[ "$(api /v1/vms/nspawn-vm | jq -r .state)" = attached ] || die "not attached"
wait_for test "$(status_text)" = "1 VM attached, 1 listed" || die "status text: $(status_text)"
step "a VMM attached through the socket unit; status '$(status_text)'"
sleep 2
n=$(api /v1/vms/nspawn-vm | jq '.wss[] | select(.window_seconds == 1) | .pages')
[ "$n" -gt 0 ] || die "no figures"
curl -sf http://127.0.0.1:9111/v1/health | jq -e '.attached == 1' >/dev/null || die "loopback TCP"
step "REST on the Unix socket ($n pages in the last second) and on 127.0.0.1:9111"

if [ -f /etc/dbus-1/system.d/org.dirtytrack.DirtyTrack1.conf ]; then
	wait_for busctl --system status org.dirtytrack.DirtyTrack1 || die "the bus name is not on the system bus"
	owner=$(busctl --system status org.dirtytrack.DirtyTrack1 | sed -n 's/^PID=//p')
	[ "$owner" = "$pid" ] || die "the name is owned by $owner, not $pid"
	busctl --system tree org.dirtytrack.DirtyTrack1 >/results/busctl-tree.txt || die "busctl tree"
	step "org.dirtytrack.DirtyTrack1 on the system bus, owned by the daemon"
fi

# A drop-in and a reload: the next VM gets the new epoch.
mkdir -p /etc/dirtytrackd/dirtytrackd.conf.d
printf '[daemon]\nepoch = 500ms\n[attach]\nallowed_groups = dirtytrack\n' \
	>/etc/dirtytrackd/dirtytrackd.conf.d/50-test.conf
systemctl reload dirtytrackd || die "systemctl reload"
[ "$(systemctl is-active dirtytrackd)" = active ] || die "not active after reload"
[ "$(systemctl show -P MainPID dirtytrackd)" = "$pid" ] || die "reload restarted it"
# An unprivileged VMM in group dirtytrack may connect (and is allowed by the drop-in).
setpriv --reuid=nobody --regid=dirtytrack --clear-groups /opt/dt-tools/dtsim \
	--connect /run/dirtytrackd/attach.sock --name after-reload --memory 64M \
	--rate 1000 --duration 1 >>/results/dtsim.log 2>&1 || die "dtsim as nobody:dirtytrack"
[ "$(api /v1/vms/after-reload | jq .epoch_seconds)" = 0.5 ] || die "the drop-in was not applied"
step "systemctl reload applied a drop-in from /etc/dirtytrackd/dirtytrackd.conf.d"
step "a VMM running as nobody, group dirtytrack, attached"
if setpriv --reuid=nobody --regid=nogroup --clear-groups /opt/dt-tools/dtsim \
	--connect /run/dirtytrackd/attach.sock --name outsider --memory 64M --rate 1000 \
	--duration 1 >/results/outsider.log 2>&1; then
	die "a VMM outside group dirtytrack attached"
fi
grep -qi "permission denied" /results/outsider.log || die "outsider: $(cat /results/outsider.log)"
step "a VMM outside group dirtytrack cannot connect ($(head -n1 /results/outsider.log))"

sleep 4 # longer than WatchdogSec=3s: pings keep it alive
[ "$(systemctl show -P NRestarts dirtytrackd)" = 0 ] || die "restarted (watchdog?)"
step "alive past WatchdogSec"

systemctl stop dirtytrackd.service || die "systemctl stop"
[ "$(systemctl show -P Result dirtytrackd)" = success ] || die "stop result $(systemctl show -P Result dirtytrackd)"
[ "$(systemctl show -P ExecMainStatus dirtytrackd)" = 0 ] || die "exit status"
wait $sim && die "dtsim did not notice the stop" || true
grep -q "daemon" /results/dtsim.log || true
step "systemctl stop: clean exit; the VMM was told"

# The sockets stay; the next VMM starts the daemon again.
[ "$(systemctl is-active dirtytrackd.socket)" = active ] || die "socket unit not active"
/opt/dt-tools/dtsim --connect /run/dirtytrackd/attach.sock --name reactivated --memory 64M \
	--rate 1000 --duration 1 >>/results/dtsim.log 2>&1 || die "dtsim after the stop"
[ "$(systemctl is-active dirtytrackd)" = active ] || die "not re-activated"
api /v1/vms/reactivated >/dev/null || die "no VM after re-activation"
step "socket re-activation after the stop"
systemctl stop dirtytrackd.service dirtytrackd.socket dirtytrackd-api.socket
journalctl -b --no-pager -u dirtytrackd >/results/journal.txt 2>&1 || true
echo PASSED
EOF

# README's "Installing it as a system service" commands but make install and
# uninstall (done here, outside), in its order.
sed -n '/^## Installing it as a system service/,/^Installed files/p' "$SRC/README.md" |
	sed -n 's/^    //p' | sed 's/ *#.*//' | grep -v '^make ' >"$TMP/tools/readme-steps.sh"
grep -q '^systemd-sysusers' "$TMP/tools/readme-steps.sh" && grep -q 'systemctl enable' "$TMP/tools/readme-steps.sh" ||
	fail "README's install steps not found: $(cat "$TMP/tools/readme-steps.sh")"

# --- boot ----------------------------------------------------------------------
binds=(
	--bind-ro="$DEST/opt/dirtytrackd:/opt/dirtytrackd"
	--bind-ro="$TMP/tools:/opt/dt-tools"
	--bind="$TMP/results:/results"
	--bind-ro="$DEST/etc:/opt/dt-etc"
	--bind-ro="$TMP/tools/dt-test.service:/etc/systemd/system/dt-test.service"
)
[ -d /etc/alternatives ] && binds+=(--bind-ro=/etc/alternatives)

machine="dt-test-$$"
rc=0
timeout --kill-after=10 150 systemd-nspawn -q -D / --volatile=yes --boot --register=no --keep-unit \
	--private-network --machine="$machine" --console=pipe "${binds[@]}" \
	-- systemd.firstboot=off systemd.wants=dt-test.service >"$TMP/nspawn.log" 2>&1 </dev/null || rc=$?

nspawn_cleanup

cat "$TMP/results/inner.log" 2>/dev/null || true
[ -f "$TMP/results/journal.txt" ] && tail -n 15 "$TMP/results/journal.txt"
if [ ! -s "$TMP/results/inner.log" ]; then
	# Never got to the test: nspawn itself could not run here.
	if grep -qi "operation not permitted\|not supported\|failed to mount\|permission denied" "$TMP/nspawn.log"; then
		skip "systemd-nspawn cannot boot here: $(grep -i -m1 'not permitted\|not supported\|failed to mount\|permission denied' "$TMP/nspawn.log")"
	fi
	fail "the container did not run the test (nspawn exit $rc): $(tail -n 20 "$TMP/nspawn.log")"
fi
[ $rc -eq 124 ] && fail "timed out (a unit the test waited for never came up)"
grep -q '^PASSED$' "$TMP/results/inner.log" || fail "the test inside the container failed (nspawn exit $rc)"
[ $rc -eq 0 ] || fail "nspawn exited with $rc"
echo "ok: systemctl start/reload/stop, REST, D-Bus and re-activation under a real systemd"

make -s -C "$SRC" BUILD="$BUILD" uninstall DESTDIR="$DEST" PREFIX=/opt/dirtytrackd SYSCONFDIR=/etc \
	SYSTEMDUNITDIR=/etc/systemd/system SYSUSERSDIR=/etc/sysusers.d TMPFILESDIR=/etc/tmpfiles.d \
	DBUS_POLICYDIR=/etc/dbus-1/system.d >"$TMP/uninstall.log" 2>&1 || fail "make uninstall: $(cat "$TMP/uninstall.log")"
rm -rf "$DEST/etc/systemd/system/dirtytrackd.service.d"
left=$(find "$DEST" -type f)
check "make uninstall removed every installed file${left:+ (left: $left)}" test -z "$left"

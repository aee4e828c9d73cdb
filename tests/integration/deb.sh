#!/usr/bin/env bash
# The Debian packages: `make deb` builds them with dpkg-buildpackage and
# lintian reports no error and no warning; then, in a fresh root booted by
# systemd-nspawn (a tmpfs root over the host's /usr, with /usr and the dpkg
# database overlaid so the host is never touched), with the system bus
# already running: dpkg -i starts the service (the postinst creates the
# user, reloads the bus, enables and starts the units), a VMM attaches,
# REST and the D-Bus name answer; dpkg --purge leaves nothing of the
# package but its system user and group (which policy keeps).
source "$(dirname "$0")/../lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
for t in dpkg-buildpackage dh lintian; do
	command -v $t >/dev/null || skip "$t is missing (packages dpkg-dev, debhelper, lintian; make deps installs them)"
done
[ -x "$BUILD/dtsim" ] || fail "$BUILD/dtsim is missing"

# --- build and lint -----------------------------------------------------------
make -s -C "$SRC" BUILD="$TMP/b" deb >"$TMP/deb.log" 2>&1 || fail "make deb: $(tail -n 30 "$TMP/deb.log")"
DEBS="$TMP/b/deb"
for p in dirtytrackd libdirtytrack-dev; do
	ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package: $(ls "$DEBS")"
done
echo "ok: make deb built $(cd "$DEBS" && echo *.deb); lintian: no error, no warning"
dpkg-deb -c "$DEBS"/dirtytrackd_*.deb | awk '{ print $6 }' | sed 's|^\./|/|' >"$TMP/files"
for f in /usr/sbin/dirtytrackd /usr/bin/dirtytrackctl /lib/systemd/system/dirtytrackd.service \
	/lib/systemd/system/dirtytrackd.socket /lib/systemd/system/dirtytrackd-api.socket \
	/usr/lib/sysusers.d/dirtytrackd.conf /usr/lib/tmpfiles.d/dirtytrackd.conf \
	/usr/share/dbus-1/system.d/org.dirtytrack.DirtyTrack1.conf \
	/usr/share/dbus-1/system-services/org.dirtytrack.DirtyTrack1.service \
	/etc/libvirt/hooks/qemu.d/50-dirtytrackd /etc/dirtytrackd/dirtytrackd.conf \
	/usr/share/man/man8/dirtytrackd.8.gz /usr/share/man/man1/dirtytrackctl.1.gz \
	/usr/share/man/man5/dirtytrackd.conf.5.gz /usr/share/doc/dirtytrackd/README.md; do
	grep -qx "$f" "$TMP/files" || fail "dirtytrackd.deb lacks $f"
done
dpkg-deb -c "$DEBS"/libdirtytrack-dev_*.deb | grep '/usr/lib/.*/libdirtytrack.a$' >/dev/null || fail "libdirtytrack-dev lacks the library"
echo "ok: the packages hold the daemon, the CLI, units, sysusers, tmpfiles, D-Bus files, hook, man pages, library"

# --- install, run, purge in a fresh root --------------------------------------
require_nspawn
mkdir -p "$TMP/results" "$TMP/tools" "$TMP/usr-upper"
cp -a /var/lib/dpkg "$TMP/dpkg" # the host's database, so dependencies are met; a copy
# Its overrides name the host's groups, which the fresh /etc does not have.
: >"$TMP/dpkg/statoverride"
cp "$BUILD/dtsim" "$TMP/tools/"
cat >"$TMP/tools/dt-test.service" <<'EOF'
[Unit]
Description=dirtytrackd package test inside the container
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
die() {
	echo "FAIL: $*"
	systemctl status --no-pager dirtytrackd.service dirtytrackd.socket 2>&1 | tail -n 30
	tail -n 20 /results/dpkg-i.log 2>/dev/null
	exit 1
}
wait_for() { local i; for i in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
api() { curl -sf --unix-socket /run/dirtytrackd/api.sock "http://localhost$1"; }

# A running machine: its bus is up before the package comes, and no
# policy-rc.d forbids starting services (a Docker-built host /usr has one
# that exits 101; /usr is an overlay here, the host keeps it).
rm -f /usr/sbin/policy-rc.d
systemctl start dbus.service || die "systemctl start dbus"
getent passwd dirtytrackd >/dev/null && die "user dirtytrackd exists before the install"
dpkg -i /debs/dirtytrackd_*.deb /debs/libdirtytrack-dev_*.deb >/results/dpkg-i.log 2>&1 ||
	die "dpkg -i: $(tail -n 20 /results/dpkg-i.log)"
step "dpkg -i dirtytrackd libdirtytrack-dev"
getent passwd dirtytrackd >/dev/null && getent group dirtytrack >/dev/null || die "no user or group"
for u in dirtytrackd.service dirtytrackd.socket dirtytrackd-api.socket; do
	[ "$(systemctl is-enabled $u)" = enabled ] || die "$u is not enabled"
	[ "$(systemctl is-active $u)" = active ] || die "$u is not active"
done
step "the postinst created user and group, enabled and started the service and its sockets"
pid=$(systemctl show -P MainPID dirtytrackd)
wait_for busctl --system status org.dirtytrack.DirtyTrack1 || die "the D-Bus name is not on the bus (refused?)"
[ "$(busctl --system status org.dirtytrack.DirtyTrack1 | sed -n 's/^PID=//p')" = "$pid" ] || die "the name is not the daemon's"
# At the first request: a refusal is retried (and dbus's own trigger
# reloads at the end of dpkg's run), which would hide a missing reload.
journalctl --no-pager -u dirtytrackd >/results/journal.txt 2>&1 || true
grep -q "D-Bus: serving org.dirtytrack.DirtyTrack1 on" /results/journal.txt || die "no 'serving' in the journal"
! grep -q "D-Bus: cannot own" /results/journal.txt || die "the name was refused first: $(grep 'cannot own' /results/journal.txt)"
step "org.dirtytrack.DirtyTrack1 owned by the daemon at its first request: the bus re-read its policy after the user was made"
/opt/dt-tools/dtsim --connect /run/dirtytrackd/attach.sock --name deb-vm --memory 64M --rate 2000 \
	--duration 3 >/results/dtsim.log 2>&1 &
sim=$!
wait_for api /v1/vms/deb-vm || die "the VM did not attach"
harvested() { [ "$(api /v1/vms/deb-vm | jq .epochs_harvested)" -ge 1 ]; }
wait_for harvested || die "no harvest"
dirtytrackctl list --json | jq -e '.vms[0].name == "deb-vm"' >/dev/null || die "dirtytrackctl list"
step "a VMM attached; REST and dirtytrackctl answer"
wait $sim || die "dtsim: $(cat /results/dtsim.log)"
dpkg -L dirtytrackd libdirtytrack-dev >/results/files.txt
dpkg --purge dirtytrackd libdirtytrack-dev >/results/dpkg-purge.log 2>&1 || die "dpkg --purge: $(tail -n 20 /results/dpkg-purge.log)"
step "dpkg --purge dirtytrackd libdirtytrack-dev"
left=""
while read -r f; do
	[ "$f" != /. ] && [ -e "$f" ] || continue
	[ -d "$f" ] && [ -n "$(dpkg -S "$f" 2>/dev/null)" ] && continue # a directory other packages own
	[ -d "$f" ] && [ -z "$(ls -A "$f")" ] && case $f in /etc/libvirt* | /usr/share/dbus-1* | /usr/lib/sysusers.d | /usr/lib/tmpfiles.d) continue ;; esac
	left="$left $f"
done </results/files.txt
for f in /etc/dirtytrackd /var/lib/dirtytrackd /run/dirtytrackd /etc/libvirt/hooks/qemu.d/50-dirtytrackd; do
	[ -e "$f" ] && left="$left $f"
done
left="$left $(find /etc/systemd /var/lib/systemd -name '*dirtytrackd*' 2>/dev/null | tr '\n' ' ')"
[ -z "${left// /}" ] || die "left after purge:$left"
pgrep -x dirtytrackd >/dev/null && die "dirtytrackd still runs"
getent passwd dirtytrackd >/dev/null || die "the purge removed the system user (policy keeps it)"
step "nothing left but the system user and group"
echo PASSED
EOF

binds=(
	--overlay=/usr:"$TMP/usr-upper":/usr
	--bind="$TMP/dpkg:/var/lib/dpkg"
	--bind-ro="$DEBS:/debs"
	--bind-ro="$TMP/tools:/opt/dt-tools"
	--bind="$TMP/results:/results"
	--bind-ro="$TMP/tools/dt-test.service:/etc/systemd/system/dt-test.service"
)
[ -d /etc/alternatives ] && binds+=(--bind-ro=/etc/alternatives)
rc=0
timeout --kill-after=10 150 systemd-nspawn -q -D / --volatile=yes --boot --register=no --keep-unit \
	--private-network --machine="dt-deb-$$" --console=pipe "${binds[@]}" \
	-- systemd.firstboot=off systemd.wants=dt-test.service >"$TMP/nspawn.log" 2>&1 </dev/null || rc=$?
nspawn_cleanup
cat "$TMP/results/inner.log" 2>/dev/null || true
[ -s "$TMP/results/inner.log" ] || fail "the container did not run the test (nspawn exit $rc): $(tail -n 20 "$TMP/nspawn.log")"
[ $rc -eq 124 ] && fail "timed out"
grep -q '^PASSED$' "$TMP/results/inner.log" || fail "the test inside the container failed (nspawn exit $rc)"
[ $rc -eq 0 ] || fail "nspawn exited with $rc"
echo "ok: installed, started, attached, purged in a fresh root"

#!/usr/bin/env bash
# The systemd units: `systemd-analyze verify` says nothing at all about them
# (it exits 0 on unknown keys and bad values, so any stderr output fails),
# `systemd-analyze security --offline=yes` scores the service at 2.0 or
# lower, systemd-sysusers creates the user and the group the units name,
# and the units agree with the daemon (socket names and paths, user).
source "$(dirname "$0")/../lib/common.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing"
UNITS="$(dirname "$0")/../../units"

# ExecStart= must exist for verify: point it at the build output.
mkdir -p "$TMP/units"
for u in dirtytrackd.service dirtytrackd.socket dirtytrackd-api.socket; do
	sed "s|@sbindir@|$BUILD|; s|@docdir@|/usr/share/doc/dirtytrackd|" "$UNITS/$u" >"$TMP/units/$u"
done
check "ExecStart= is the build output" grep -qx "ExecStart=$BUILD/dirtytrackd" "$TMP/units/dirtytrackd.service"

(cd "$TMP/units" && systemd-analyze verify dirtytrackd.service dirtytrackd.socket \
	dirtytrackd-api.socket) >"$TMP/verify.out" 2>"$TMP/verify.err" ||
	fail "systemd-analyze verify failed: $(cat "$TMP/verify.err")"
[ -s "$TMP/verify.err" ] && fail "systemd-analyze verify warns: $(cat "$TMP/verify.err")"
echo "ok: systemd-analyze verify: exit 0, nothing on stderr"

systemd-analyze security --offline=yes --threshold=20 "$TMP/units/dirtytrackd.service" \
	>"$TMP/security.out" 2>&1 || fail "exposure above 2.0: $(grep -v '^✓' "$TMP/security.out")"
echo "ok: $(grep 'Overall exposure' "$TMP/security.out")"
grep '^✗' "$TMP/security.out" | sed 's/^/    /'

# The service's sandbox keeps what the daemon needs.
svc="$TMP/units/dirtytrackd.service"
check "Type=notify with a watchdog and a reload" \
	grep -q '^Type=notify$' "$svc" && grep -q '^WatchdogSec=' "$svc" && grep -q '^ExecReload=' "$svc"
check "no capabilities" grep -qx 'CapabilityBoundingSet=' "$svc"
check "process_vm_readv is allowed (@system-service has it, the deny list does not)" \
	bash -c "systemd-analyze syscall-filter @system-service | grep -qx '    @ipc' &&
		systemd-analyze syscall-filter @ipc | grep -qx '    process_vm_readv' &&
		! systemd-analyze syscall-filter @privileged @resources | grep -qx '    process_vm_readv'"

# Socket names and paths are what the daemon takes and binds by default.
check "attach socket: SOCK_SEQPACKET, named attach, at the default path" \
	grep -qx 'ListenSequentialPacket=/run/dirtytrackd/attach.sock' "$UNITS/dirtytrackd.socket"
check "attach socket name" grep -qx 'FileDescriptorName=attach' "$UNITS/dirtytrackd.socket"
check "API socket name" grep -qx 'FileDescriptorName=api' "$UNITS/dirtytrackd-api.socket"
check "API socket path" grep -qx 'ListenStream=/run/dirtytrackd/api.sock' "$UNITS/dirtytrackd-api.socket"
defaults=$("$BUILD/dirtytrackd" --config /dev/null --test-config 2>&1)
check "the built-in defaults are valid" test "$defaults" = "configuration is valid"
check "the shipped configuration is valid" \
	"$BUILD/dirtytrackd" --config "$UNITS/../config/dirtytrackd.conf" --test-config

# sysusers creates the user and the group the units name.
command -v systemd-sysusers >/dev/null || skip "systemd-sysusers is missing"
mkdir -p "$TMP/root/etc"
systemd-sysusers --root="$TMP/root" - <"$UNITS/dirtytrackd.sysusers" 2>"$TMP/sysusers.err" ||
	fail "systemd-sysusers: $(cat "$TMP/sysusers.err")"
check "sysusers: user dirtytrackd" grep -q '^dirtytrackd:' "$TMP/root/etc/passwd"
check "sysusers: group dirtytrackd" grep -q '^dirtytrackd:' "$TMP/root/etc/group"
check "sysusers: group dirtytrack" grep -q '^dirtytrack:' "$TMP/root/etc/group"
check "the socket's group is created by sysusers" \
	grep -qx "SocketGroup=$(cut -d: -f1 "$TMP/root/etc/group" | grep -x dirtytrack)" "$UNITS/dirtytrackd.socket"
check "the API socket is 0660, its group created by sysusers" \
	sh -c "grep -qx 'SocketMode=0660' '$UNITS/dirtytrackd-api.socket' &&
		grep -qx \"SocketGroup=\$(cut -d: -f1 '$TMP/root/etc/group' | grep -x dirtytrack-api)\" '$UNITS/dirtytrackd-api.socket'"
check "the service's user is created by sysusers" \
	grep -qx "User=$(cut -d: -f1 "$TMP/root/etc/passwd" | grep -x dirtytrackd)" "$svc"
if [ -f "$UNITS/org.dirtytrack.DirtyTrack1.service" ]; then
	check "D-Bus activation names the same user and unit" \
		grep -qx 'User=dirtytrackd' "$UNITS/org.dirtytrack.DirtyTrack1.service"
	grep -qx 'SystemdService=dirtytrackd.service' "$UNITS/org.dirtytrack.DirtyTrack1.service" ||
		fail "D-Bus activation does not name dirtytrackd.service"
fi

# tmpfiles gives /run/dirtytrackd to that user (before the socket units run).
systemd-tmpfiles --root="$TMP/root" --create - <"$UNITS/dirtytrackd.tmpfiles" 2>"$TMP/tmpfiles.err" ||
	fail "systemd-tmpfiles: $(cat "$TMP/tmpfiles.err")"
uid=$(awk -F: '$1 == "dirtytrackd" { print $3 }' "$TMP/root/etc/passwd")
check "tmpfiles: /run/dirtytrackd owned by dirtytrackd, 0755" \
	test "$(stat -c '%u %a' "$TMP/root/run/dirtytrackd")" = "$uid 755"

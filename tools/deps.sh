#!/bin/sh
# Install the Debian packages dirtytrackd needs to build, test and run its
# demo. Does nothing when they are all present.
set -eu
pkgs="build-essential pkg-config clang libclang-rt-14-dev
libsystemd-dev libmicrohttpd-dev libjson-c-dev libinih-dev libroaring-dev libcurl4-openssl-dev
curl jq python3 valgrind iproute2 util-linux dbus systemd libglib2.0-bin
prometheus wrk chromium python3-pil openssl
systemd-container libdbus-1-dev scdoc groff-base
dpkg-dev debhelper lintian fakeroot
libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing

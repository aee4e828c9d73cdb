#!/bin/sh
# Install the Debian packages dirtytrackd needs. Does nothing when they are
# all present.
#   tools/deps.sh demo   what `make demo` needs: the build, and QEMU when
#                        /dev/kvm is there (the demo's stock QEMU guest)
#   tools/deps.sh test   all of that, and what `make check` uses (clang for
#                        the fuzzers, dbus, systemd-container, libvirt,
#                        Prometheus's promtool, ...)
set -eu
what=${1:-test}
build="build-essential pkg-config
libsystemd-dev libmicrohttpd-dev libjson-c-dev libinih-dev libroaring-dev libcurl4-openssl-dev
libvirt-dev"
qemu="qemu-system-x86"
test="clang libclang-rt-14-dev curl jq python3 valgrind iproute2 util-linux dbus systemd libglib2.0-bin
prometheus wrk chromium python3-pil openssl
systemd-container libdbus-1-dev scdoc groff-base
dpkg-dev debhelper lintian fakeroot
libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients $qemu"
case $what in
demo)
	pkgs="$build jq curl" # the demo reads the API with curl and jq
	[ -c /dev/kvm ] && pkgs="$pkgs $qemu"
	;;
test) pkgs="$build $test" ;;
*)
	echo "usage: $0 demo|test" >&2
	exit 2
	;;
esac
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

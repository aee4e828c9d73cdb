#!/usr/bin/env bash
# Negative controls for the stateful protocol fuzzer: it must find a known
# bug. The sanitizer build (SAN=1) carries planted bugs that DT_PLANT=name
# switches on (common/dt_plant.h); fuzz-protocol.sh is run against each and
# must fail, for the right reason:
#  - bitmap-drop-bit (every 64th bitmap word taken loses a bit): the
#    bystander's pages are no longer exact;
#  - remove-slot-stale (REMOVE_SLOT leaves the freed bitmap in the
#    collector): the daemon crashes with a sanitizer report.
# Without the plant the same runs pass (fuzz-protocol.sh). Skips where the
# build has no plants (not SAN=1). FUZZ_NEG_DURATION (seconds, default 20).
source "$(dirname "$0")/../lib/common.sh"
[ -x "$BUILD/dtfuzz" ] || fail "$BUILD/dtfuzz is missing (make tests)"
DT_PLANT=bitmap-drop-bit start_daemon
grep -q "planted bug 'bitmap-drop-bit' is on" "$TMP/daemon.log" ||
	skip "$BUILD/dirtytrackd has no planted bugs (build it with SAN=1)"
stop_daemon
DURATION=${FUZZ_NEG_DURATION:-20}
here=$(dirname "$0")

# plant, what the failing run must print
expect_found() {
	local out="$TMP/$1.out" rc=0
	DT_PLANT=$1 FUZZ_DURATION=$DURATION FUZZ_SEED=${FUZZ_SEED:-1} bash "$here/fuzz-protocol.sh" \
		>"$out" 2>&1 || rc=$?
	[ $rc -ne 0 ] || { tail -20 "$out"; fail "the fuzzer did not find planted bug $1"; }
	grep -q -- "$2" "$out" || { tail -40 "$out"; fail "planted bug $1: the run failed, but not with '$2'"; }
	echo "ok: planted bug $1 found: $(grep -m1 -- "$2" "$out" | cut -c1-160)"
}
expect_found bitmap-drop-bit "bystander: NOT exact"
expect_found remove-slot-stale "AddressSanitizer: heap-use-after-free"

#!/usr/bin/env bash
# dtguest under a real QEMU (-accel kvm, no preload): the bare-metal test
# guest and its host harness (tests/lib/dtguest.py) give ground truth.
#  - two WRITE phases: the pages stamped in each phase's sequence range are
#    exactly the pages the pattern recomputed from its seed says, page for
#    page, and nothing is stamped once a WRITE is acked;
#  - RUN at a commanded rate is paced by the guest itself within 10%, and the
#    guest's TSC calibration agrees with the host clock;
#  - a live migration to a second local QEMU (-incoming unix:) while the
#    guest writes; VERIFY on the destination passes (every ledgered page
#    holds its last stamp), and the destination keeps writing;
#  - negative control: one page's stamp and another's ledger entry damaged in
#    the destination's RAM file: VERIFY reports exactly those pages bad.
source "$(dirname "$0")/../lib/common.sh"
LIB=$(cd "$(dirname "$0")/../lib" && pwd)
dtg() { python3 "$LIB/dtguest.py" "$@"; }
for c in qemu-system-x86_64 python3 jq; do
	command -v "$c" >/dev/null || skip "$c is missing (qemu-system-x86, python3, jq)"
done
python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null ||
	skip "/dev/kvm is not usable (absent or no permission)"
if [ ! -f "$BUILD/dtguest.elf" ]; then
	printf 'void _start(void){for(;;);}\n' | gcc -m32 -ffreestanding -nostdlib -static -x c -o /dev/null - \
		>/dev/null 2>&1 || skip "gcc -m32 cannot build the 32-bit guest (no $BUILD/dtguest.elf)"
	fail "$BUILD/dtguest.elf is missing (make builds it)"
fi
export BUILD

G="$TMP/g"
mkdir -p "$G"
SRC_RAM=/dev/shm/dtg-test-$$-src.ram
DST_RAM=/dev/shm/dtg-test-$$-dst.ram
qg_cleanup() {
	local f
	for f in "$G"/*.pid; do
		if [ -f "$f" ]; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
	done
	rm -f "$SRC_RAM" "$DST_RAM"
}
qg_exit() {
	local rc=$?
	qg_cleanup
	(exit "$rc")
	cleanup
}
trap qg_exit EXIT

# start NAME ARGS...: a detached QEMU with the guest, its pid in $G/NAME.pid
start() {
	local name=$1
	shift
	dtg start --workdir "$G" --name "$name" --memory 256M --pidfile "$G/$name.pid" "$@" \
		>"$G/$name.start" 2>"$G/$name.err" || fail "QEMU $name did not start: $(cat "$G/$name.err")"
}
src() { dtg cmd --mem "$SRC_RAM" "$@"; }
dst() { dtg cmd --mem "$DST_RAM" "$@"; }

t0=$SECONDS
start src --mem-file "$SRC_RAM"
boot=$(jq -r .boot_seconds "$G/src.start")
N=$(jq -r .status.test_pages "$G/src.start")
[ "$(jq -r .status.state_name "$G/src.start")" = idle ] || fail "guest not idle after boot: $(cat "$G/src.start")"
[ "$N" -gt 40000 ] || fail "test region of $N pages in a 256 MiB guest"
echo "ok: guest booted in ${boot}s: $N test pages, TSC $(jq -r .status.tsc_hz "$G/src.start") Hz"

# phase PAGES ARGS...: WRITE, then the truth for its sequence range must be
# the recomputed pattern, page for page (compared as lists here, not only
# by the harness's own --check).
phase() {
	local name=$1
	shift
	src write "$@" >"$G/$name.json" || fail "$name: write failed"
	local from to
	from=$(jq -r .seq_from "$G/$name.json")
	to=$(jq -r .seq_to "$G/$name.json")
	src truth --seq-from "$from" --seq-to "$to" --list >"$G/$name.truth"
	src expect "$@" --list >"$G/$name.expect"
	[ -s "$G/$name.expect" ] || fail "$name: nothing expected"
	cmp -s "$G/$name.truth" "$G/$name.expect" ||
		fail "$name: truth differs from the pattern: $(diff "$G/$name.expect" "$G/$name.truth" | head -5)"
	echo "ok: $name: seq ($from, $to]: $(wc -l <"$G/$name.truth") distinct pages, exactly the pattern's"
}
phase phase1 --pages 3000 --pattern random --seed 3 --wss 10000
phase phase2 --pages 2500 --pattern sequential --seed 7 --base 20000 --wss 2000
# phase 2's window is disjoint from phase 1's: phase 1's truth is unchanged
p1to=$(jq -r .seq_to "$G/phase1.json")
src truth --seq-from 0 --seq-to "$p1to" --list | cmp -s - "$G/phase1.truth" || fail "phase 1 truth changed by phase 2"
src write --pages 4000 --pattern hotcold --seed 11 --base 30000 --wss 500 --hot 80 --check >"$G/phase3.json" ||
	fail "hotcold: $(cat "$G/phase3.json")"
echo "ok: hotcold phase exact (harness check): $(jq -r .distinct "$G/phase3.json") distinct pages"
p3to=$(jq -r .seq_to "$G/phase3.json")
sleep 0.3
[ "$(src truth --seq-from "$p3to" | jq .count)" = 0 ] || fail "pages stamped after the WRITE was acked"
[ "$(src status | jq .seq)" = "$p3to" ] || fail "the idle guest's sequence moved"
echo "ok: an acked WRITE leaves the guest idle: no stamp after it"

# RUN at a rate: paced by the guest (TSC calibrated at boot), checked by the host clock.
RATE=5000 # well below the ~50k/s the guest reaches alone, so a loaded host still keeps up
src run --rate $RATE --pattern random --seed 5 >/dev/null
src rate --seconds 3 >"$G/rate.json"
jq -e --argjson r $RATE '(.host_rate - $r | fabs) < $r * 0.10' "$G/rate.json" >/dev/null ||
	fail "RUN at $RATE/s achieved $(jq .host_rate "$G/rate.json")/s"
jq -e '(.guest_seconds / .host_seconds - 1 | fabs) < 0.02' "$G/rate.json" >/dev/null ||
	fail "guest TSC clock disagrees with the host's: $(cat "$G/rate.json")"
echo "ok: RUN at $RATE pages/s: achieved $(jq '.host_rate | floor' "$G/rate.json")/s (host clock)"

# Live migration while the guest writes 10k pages/s over the whole region.
src run --rate 10000 --pattern random --seed 9 >/dev/null
start dst --mem-file "$DST_RAM" --incoming "unix:$G/mig.sock" --no-wait
dtg migrate --src "$G/src.qmp" --dst "$G/dst.qmp" --uri "unix:$G/mig.sock" >"$G/mig.json" ||
	fail "migration failed"
jq -e '.status == "completed" and .source_status == "postmigrate" and .dirty_sync_count >= 2' \
	"$G/mig.json" >/dev/null || fail "migration: $(cat "$G/mig.json")"
echo "ok: migrated in $(jq .total_time_ms "$G/mig.json") ms, downtime $(jq .downtime_ms "$G/mig.json") ms," \
	"$(jq .ram_transferred "$G/mig.json") bytes, $(jq .dirty_sync_count "$G/mig.json") dirty syncs"
s1=$(dst status | jq .seq)
sleep 0.3
s2=$(dst status | jq .seq)
[ "$s2" -gt "$s1" ] || fail "the destination guest does not run its workload ($s1 -> $s2)"
dst idle >/dev/null
dst verify >"$G/verify.json"
jq -e '.bad == 0 and .checked > 5000' "$G/verify.json" >/dev/null || fail "VERIFY on the destination: $(cat "$G/verify.json")"
dst host-verify | jq -e '.bad == 0' >/dev/null || fail "host-side verify of the destination RAM"
echo "ok: VERIFY on the destination: $(jq .checked "$G/verify.json") pages intact"

# Negative control: damage one stamp and one ledger entry, VERIFY names them.
pa=$(sed -n 1p "$G/phase2.truth")
pb=$(sed -n 1p "$G/phase1.truth")
[ "$pa" -gt "$pb" ] || fail "control pages not ordered ($pb, $pa)"
dst corrupt --page "$pa" --what stamp >/dev/null
dst verify >"$G/verify2.json"
jq -e --argjson p "$pa" '.bad == 1 and .first_bad == $p and .last_bad == $p' "$G/verify2.json" >/dev/null ||
	fail "a damaged stamp on page $pa: $(cat "$G/verify2.json")"
dst corrupt --page "$pb" --what ledger >/dev/null
dst verify >"$G/verify3.json"
jq -e --argjson a "$pb" --argjson b "$pa" '.bad == 2 and .first_bad == $a and .last_bad == $b' \
	"$G/verify3.json" >/dev/null || fail "damaged ledger on page $pb: $(cat "$G/verify3.json")"
echo "ok: negative control: VERIFY reports exactly the damaged pages ($pb ledger, $pa stamp)"

dtg stop --qmp "$G/dst.qmp" --pidfile "$G/dst.pid" --mem-file "$DST_RAM"
dtg stop --qmp "$G/src.qmp" --pidfile "$G/src.pid" --mem-file "$SRC_RAM"
echo "ok: all in $((SECONDS - t0)) s"

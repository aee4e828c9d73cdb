#!/usr/bin/env bash
# Attach churn: does the daemon keep its epochs' pace while VMMs come and go,
# and does its memory return to the baseline once they are gone?
# A bystander VM (dtsim, ring+bitmap) runs the whole time at 100 ms epochs;
# CHURN_PAR simulated VMMs at a time attach, dirty for 0.3-1.5 s and then
# either detach cleanly or are killed (SIGKILL: a VMM that dies), for
# SECONDS_LOAD seconds, with /metrics scraped and a VM listed over REST
# every 0.1 s. A short retention (1 s) removes each detached VM soon after.
# Prints: VMs churned, RSS (KiB) at the baseline (after a warm-up round of
# churn and its removal), at the peak, and after the churned VMs are
# removed; the daemon's tick lateness (its /metrics histogram: share of
# ticks later than 10 ms and 50 ms, the worst) and skipped ticks during the
# churn; and whether the bystander's counters moved every epoch.
# Ratio: RSS after / RSS baseline against 1.05 (5 %), worst lateness /
# epoch against 0.10.
# Usage: bench/bench-churn.sh [BUILD]; SECONDS_LOAD=30 CHURN_PAR=6
set -euo pipefail
BUILD=${1:-build}
DUR=${SECONDS_LOAD:-30}
PAR=${CHURN_PAR:-6}
for c in curl jq; do command -v "$c" >/dev/null || { echo "SKIP: $c is missing"; exit 77; }; done
source "$(dirname "$0")/lib.sh"
bench_init churn
printf '[daemon]\nretention = 1s\n[attach]\nmax_vms = 256\n' >"$TMP/conf"
"$BUILD/dirtytrackd" -c "$TMP/conf" --state-dir "" --runtime-dir "$TMP/run" --listen-tcp off \
	--dbus off --epoch 100ms >"$TMP/daemon.log" 2>&1 &
DPID=$!
PIDS+=($DPID)
SOCK="$TMP/run/attach.sock"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"; }
wait_attach_socket
"$BUILD/dtsim" --connect "$SOCK" --name bystander --memory 512M --vcpus 2 --mode ring+bitmap \
	--rate 20000 --wss 60000 --seed 1 >/dev/null 2>&1 &
PIDS+=($!)

# churn SECONDS [COUNTFILE]: PAR workers, each attaching VMs one after another.
churn() {
	local end=$((SECONDS + $1)) w workers=()
	for w in $(seq "$PAR"); do
		(
			n=0
			while [ $SECONDS -lt $end ]; do
				n=$((n + 1))
				mode=$(((n + w) % 3))
				modes=(ring bitmap ring+bitmap)
				life=$((300 + (RANDOM % 1200)))
				"$BUILD/dtsim" --connect "$SOCK" --name "churn-$w-$n" --memory $(((RANDOM % 4 + 1) * 64))M \
					--vcpus $((RANDOM % 4 + 1)) --mode "${modes[$mode]}" --rate 30000 \
					--seed "$n" --duration 10s >/dev/null 2>&1 &
				p=$!
				sleep "$(printf '0.%03d' $((life % 1000)))"
				[ $life -ge 1000 ] && sleep 1
				if [ $((n % 2)) = 0 ]; then kill -KILL $p; else kill -INT $p; fi
				wait $p 2>/dev/null || true
			done
			echo $n >>"$TMP/count.$w"
		) &
		workers+=($!)
	done
	wait "${workers[@]}"
}
settle() { # until only the bystander is listed
	for _ in $(seq 100); do
		[ "$(api /v1/vms | jq '.vms | length')" = 1 ] && return 0
		sleep 0.1
	done
	echo "note: churned VMs still listed after 10 s"
}
lateness() { # share over 10 ms, over 50 ms (from the histogram) and the worst
	api /metrics | awk '
		/^dirtytrackd_tick_lateness_seconds_bucket\{le="0.010000"\}/ {b10 = $2}
		/^dirtytrackd_tick_lateness_seconds_bucket\{le="0.050000"\}/ {b50 = $2}
		/^dirtytrackd_tick_lateness_seconds_count/ {n = $2}
		/^dirtytrackd_tick_lateness_max_seconds/ {mx = $2}
		/^dirtytrackd_ticks_skipped_total/ {sk = $2}
		END {printf "%d %d %d %s %d\n", n, b10, b50, mx, sk}'
}
sleep 2
echo "warm-up churn (5 s)"
churn 5
settle
sleep 1
rm -f "$TMP"/count.*
RSS0=$(rss)
read -r n0 a10 a50 _ sk0 < <(lateness)
e0=$(api /v1/vms/bystander | jq .epochs_harvested)
echo "baseline RSS ${RSS0} KiB; churning for ${DUR} s with ${PAR} VMMs at a time"
PEAK=$RSS0
(while kill -0 $DPID 2>/dev/null; do r=$(rss); [ "$r" -gt "$(cat "$TMP/peak" 2>/dev/null || echo 0)" ] && echo "$r" >"$TMP/peak"; sleep 0.2; done) &
PIDS+=($!)
(end=$((SECONDS + DUR)); while [ $SECONDS -lt $end ]; do api /metrics >/dev/null; api /v1/vms >/dev/null; sleep 0.1; done) &
SCRAPER=$!
churn "$DUR"
wait $SCRAPER || true
read -r n1 b10 b50 mx sk1 < <(lateness)
e1=$(api /v1/vms/bystander | jq .epochs_harvested)
settle
sleep 1
RSS1=$(rss)
PEAK=$(cat "$TMP/peak" 2>/dev/null || echo "$RSS0")
VMS=$(cat "$TMP"/count.* | awk '{s += $1} END {print s}')
ticks=$((n1 - n0))
late10=$(((ticks - (b10 - a10)) * 1000 / (ticks > 0 ? ticks : 1)))
late50=$(((ticks - (b50 - a50)) * 1000 / (ticks > 0 ? ticks : 1)))
printf 'VMs churned: %d (%d VMMs at a time, half killed)\n' "$VMS" "$PAR"
printf 'RSS: baseline %d KiB, peak %d KiB, after removal %d KiB; ratio after/baseline %.3f (limit 1.05)\n' \
	"$RSS0" "$PEAK" "$RSS1" "$(echo "$RSS1 / $RSS0" | bc -l)"
printf 'ticks: %d during the churn, %d.%d %% later than 10 ms, %d.%d %% later than 50 ms, skipped %d\n' \
	"$ticks" $((late10 / 10)) $((late10 % 10)) $((late50 / 10)) $((late50 % 10)) $((sk1 - sk0))
printf 'worst tick lateness since start: %s s; ratio worst / epoch %.3f (limit 0.10)\n' "$mx" "$(echo "$mx / 0.1" | bc -l)"
printf 'bystander: %d epochs harvested in %d s of churn (%.1f per s at 10 per s)\n' $((e1 - e0)) "$DUR" \
	"$(echo "($e1 - $e0) / $DUR" | bc -l)"
kill -0 $DPID || { echo "the daemon died"; exit 1; }

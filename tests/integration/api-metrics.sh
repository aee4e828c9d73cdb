#!/usr/bin/env bash
# /metrics: promtool (Prometheus's own linter) accepts the exposition, the
# series the issue asks for are there with bounded labels, counters move,
# and a real Prometheus server scraping the daemon on loopback gets them.
source "$(dirname "$0")/../lib/common.sh"
command -v promtool >/dev/null || skip "promtool is missing (Debian package prometheus; make deps installs it)"
PORT=$(free_port)
start_daemon --epoch 200ms --listen-tcp "127.0.0.1:$PORT"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name 'm "quoted"\vm' --uuid 0b7c4c4e-1a7e-4bd9-9c3e-7e7f7a7b7c7d \
	--memory 64M --vcpus 2 --rate 10000 --duration 60 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name bm --memory 64M --mode bitmap --rate 10000 --duration 60 >"$TMP/sim2.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/bm || fail "bm did not attach"
sleep 1.5

BM=$(vm_field bm .id)
api /metrics >"$TMP/m1"
promtool check metrics <"$TMP/m1" >"$TMP/lint" 2>&1 || fail "promtool check metrics: $(cat "$TMP/lint")"
echo "ok: promtool check metrics accepts the exposition ($(wc -l <"$TMP/m1") lines)"
for s in dirtytrackd_build_info dirtytrackd_vm_info dirtytrackd_vm_dirtied_pages_total \
	dirtytrackd_vm_dirtied_bytes_total dirtytrackd_vm_harvests_total dirtytrackd_vm_harvest_errors_total \
	"dirtytrackd_vm_working_set_bytes{vm=\"$BM\",window_seconds=\"1\"}" \
	"dirtytrackd_vm_window_observed_seconds{vm=\"$BM\",window_seconds=\"300\"}" \
	'dirtytrackd_harvest_duration_seconds_bucket{le="+Inf"}' dirtytrackd_harvest_duration_seconds_count; do
	grep -qF "$s" "$TMP/m1" || fail "series $s missing"
done
# 1.5 s of history: the 300 s window is not covered, so it has no gauge value
! grep -qF "dirtytrackd_vm_working_set_bytes{vm=\"$BM\",window_seconds=\"300\"}" "$TMP/m1" ||
	fail "the 300 s working set is exported before 300 s were observed"
grep -qF 'name="m \"quoted\"\\vm"' "$TMP/m1" || fail "label value not escaped: $(grep vm_info "$TMP/m1")"
grep -q 'vm_info{vm="'$BM'",name="bm",uuid="[0-9a-f-]*",vmm="dtsim",mode="bitmap"} 1' "$TMP/m1" || fail "info metric of bm"
grep -qF 'dirtytrackd_vm_fidelity_info{vm="'$BM'",fidelity="exact"} 1' "$TMP/m1" || fail "fidelity of bm (dtsim: every writer)"
# bounded labels: only these label names appear
labels=$(grep -v '^#' "$TMP/m1" | grep -o '[a-z_]*="' | sort -u | tr -d '="' | tr '\n' ' ')
[ "$labels" = "fidelity le link microhttpd mode name protocol source state uuid version vm vmm window_seconds " ] ||
	fail "unexpected label names: $labels"
# counters move
v1=$(awk -v id="$BM" '$0 ~ "^dirtytrackd_vm_harvests_total\\{vm=\"" id "\"\\}"{print $2}' "$TMP/m1")
sleep 0.6
v2=$(api /metrics | awk -v id="$BM" '$0 ~ "^dirtytrackd_vm_harvests_total\\{vm=\"" id "\"\\}"{print $2}')
[ "$v2" -gt "$v1" ] || fail "harvests_total did not move ($v1 -> $v2)"
echo "ok: series present, labels bounded, counters move ($v1 -> $v2)"

# The default reference link (10Gbit/300ms): a plan per VM, same as REST's.
grep -qF 'dirtytrackd_reference_link_bandwidth_bytes_per_second{link="10Gbit/300ms"} 1250000000' "$TMP/m1" ||
	fail "reference link gauge missing"
# Planned on their own thread after each epoch: a scrape shows them once the first plan is back.
converges() { api /metrics | awk -v id="$BM" '$0 ~ "^dirtytrackd_vm_precopy_converges\\{vm=\"" id "\""{print $2}'; }
for _ in $(seq 100); do
	conv=$(converges)
	[ -n "$conv" ] && break
	sleep 0.1
done
[ -n "$conv" ] || fail "no dirtytrackd_vm_precopy_converges for bm within 10 s"
[ "$conv" = "$(api "/v1/vms/bm/plan?bandwidth=10Gbit&downtime=300ms" | jq -r 'if .converges then 1 else 0 end')" ] ||
	fail "reference-link verdict $conv differs from REST's plan"
echo "ok: reference-link plan gauges (bm converges at 10Gbit/300ms: $conv, as REST says)"

# OpenMetrics when asked: content type, counter families without _total, units, # EOF last.
curl -sf -D "$TMP/om.h" -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' \
	--unix-socket "$API_SOCK" http://localhost/metrics >"$TMP/om" || fail "OpenMetrics request"
grep -qi '^content-type: application/openmetrics-text; version=1.0.0; charset=utf-8' "$TMP/om.h" ||
	fail "OpenMetrics content type: $(grep -i content-type "$TMP/om.h")"
[ "$(tail -n1 "$TMP/om")" = "# EOF" ] || fail "OpenMetrics exposition does not end with # EOF"
grep -qx '# TYPE dirtytrackd_vm_harvests counter' "$TMP/om" || fail "OpenMetrics counter family keeps _total"
grep -q '^dirtytrackd_vm_harvests_total{' "$TMP/om" || fail "OpenMetrics counter samples lack _total"
grep -qx '# UNIT dirtytrackd_harvest_duration_seconds seconds' "$TMP/om" || fail "no UNIT for the histogram"
! grep -q '^# EOF' "$TMP/m1" || fail "the text format has # EOF"
curl -sf -D "$TMP/txt.h" -H 'Accept: text/plain' --unix-socket "$API_SOCK" http://localhost/metrics >/dev/null
grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/txt.h" || fail "text/plain not served as text"
echo "ok: OpenMetrics 1.0.0 when the scraper asks for it, text format otherwise"

# A real Prometheus server scraping the loopback listener.
command -v prometheus >/dev/null || skip "prometheus server is missing (make deps installs it)"
start_prometheus "$PORT"
q() { prom_query "$1"; }
got() { q "$1" | jq -e '.data.result | length > 0' >/dev/null; }
wait_until 30 got 'up{job="dirtytrackd"} == 1' || fail "Prometheus did not scrape the daemon: $(tail -5 "$TMP/prom.log")"
wait_until 10 got 'dirtytrackd_vm_harvests_total{vm="'$BM'"} > 0' || fail "harvests not scraped"
wait_until 10 got 'dirtytrackd_vm_working_set_bytes{window_seconds="1"}' || fail "WSS gauges not scraped"
wait_until 10 got 'dirtytrackd_vm_info{mode="bitmap",name="bm"}' || fail "info not scraped"
wait_until 10 got 'dirtytrackd_harvest_duration_seconds_count > 0' || fail "histogram not scraped"
wait_until 10 got 'rate(dirtytrackd_vm_dirtied_bytes_total[5s]) > 0' || fail "no dirty-byte rate in Prometheus"
echo "ok: a real Prometheus server scraped the daemon: $(q 'count({__name__=~"dirtytrackd_.*"})' | jq -r '.data.result[0].value[1]') series"

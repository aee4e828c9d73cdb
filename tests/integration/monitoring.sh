#!/usr/bin/env bash
# The monitoring mixin (monitoring/): promtool checks the rules and runs
# their unit tests (every alert fires and does not fire, on hand-written
# series; a broken expectation must fail), and every PromQL expression of
# both dashboards is evaluated by a real Prometheus that scrapes a real
# daemon (OpenMetrics negotiated, two reference links) with simulated VMMs
# attached and evaluates the mixin's recording rules: each must return data.
source "$(dirname "$0")/../lib/common.sh"
M=$PWD/monitoring
for c in promtool prometheus jq python3; do
	command -v "$c" >/dev/null || skip "$c is missing (packages prometheus, jq; make deps installs them)"
done

promtool check rules "$M/rules/dirtytrackd.rules.yml" >"$TMP/check" 2>&1 || fail "promtool check rules: $(cat "$TMP/check")"
echo "ok: promtool check rules: $(grep -o '[0-9]* rules found' "$TMP/check")"
(cd "$M/tests" && promtool test rules dirtytrackd.rules.test.yml) >"$TMP/test" 2>&1 ||
	fail "promtool test rules: $(cat "$TMP/test")"
alerts=$(grep -c '^      - alert:' "$M/rules/dirtytrackd.rules.yml")
tested=$(grep -o 'alertname: [A-Za-z]*' "$M/tests/dirtytrackd.rules.test.yml" | sort -u | wc -l)
[ "$alerts" = "$tested" ] || fail "$alerts alerts but $tested have tests"
for a in $(grep -o '^      - alert: [A-Za-z]*' "$M/rules/dirtytrackd.rules.yml" | awk '{print $3}'); do
	awk -v a="$a" '$0 ~ "alertname: " a "$" {getline; if ($0 ~ /exp_alerts: \[\]/) ok=1} END {exit !ok}' \
		"$M/tests/dirtytrackd.rules.test.yml" || fail "alert $a has no case where it must not fire"
	grep -q "^## $a\$" "$M/runbook.md" || fail "alert $a is not in monitoring/runbook.md"
done
echo "ok: promtool test rules: all $alerts alerts tested firing and not firing, each in the runbook"
# Negative control: an expectation that is wrong (the other host) must fail.
mkdir -p "$TMP/neg/tests" "$TMP/neg/rules"
cp "$M/rules/dirtytrackd.rules.yml" "$TMP/neg/rules/"
sed '0,/exp_labels: { severity: warning, job: dirtytrackd, instance: "h1:9111" }/s//exp_labels: { severity: warning, job: dirtytrackd, instance: "h2:9111" }/' \
	"$M/tests/dirtytrackd.rules.test.yml" >"$TMP/neg/tests/t.yml"
! cmp -s "$M/tests/dirtytrackd.rules.test.yml" "$TMP/neg/tests/t.yml" || fail "negative control not made"
! (cd "$TMP/neg/tests" && promtool test rules t.yml) >/dev/null 2>&1 || fail "promtool test rules passed a wrong expectation"
echo "ok: negative control: a wrong expected alert fails promtool test rules"

for d in "$M"/dashboards/*.json; do
	jq -e '.uid and .title and (.panels | length > 0)' "$d" >/dev/null || fail "$d is not a dashboard"
	jq -e '[.panels[] | .targets[]? | .expr] | all(length > 0)' "$d" >/dev/null || fail "$d has an empty expression"
done

# A real daemon with two reference links, three VMMs, on a TCP listener.
PORT=$(free_port)
cat >"$TMP/d.conf" <<CONF
[metrics]
wss_windows = 1s, 2s, 10s
reference_links = 10Gbit/300ms, 100Mbit/10ms
CONF
start_daemon --config "$TMP/d.conf" --epoch 200ms --listen-tcp "127.0.0.1:$PORT"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name web-frontend --uuid 0b7c4c4e-1a7e-4bd9-9c3e-7e7f7a7b7c7d \
	--memory 256M --vcpus 2 --mode ring --pattern hotcold --rate 20000 --wss 20000 --duration 120 >"$TMP/s1.log" 2>&1 &
BG_PIDS+=($!)
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name batch-etl --memory 256M --vcpus 2 --mode bitmap \
	--pattern sequential --rate 40000 --wss 60000 --duration 120 >"$TMP/s2.log" 2>&1 &
BG_PIDS+=($!)
wait_until 10 api /v1/vms/batch-etl || fail "batch-etl did not attach"

start_prometheus "$PORT" "$M/rules/dirtytrackd.rules.yml"
q() { prom_query "$1"; }
# Polled (wait_until): a scrape that a loaded host makes late leaves the
# series stale until the next one.
has_data() { q "$1" | jq -e '.status == "success" and (.data.result | length > 0)' >/dev/null; }
has_label() { q "$1" | jq -e --arg l "$2" '.data.result | map(.metric[$l]) | all(. != null) and length > 0' >/dev/null; }
wait_until 30 has_data 'up{job="dirtytrackd"} == 1' || fail "Prometheus did not scrape the daemon: $(tail -5 "$TMP/prom.log")"

# OpenMetrics was negotiated: metadata names the counter family without
# _total and carries the UNIT, which only the OpenMetrics parser records.
meta() { curl -sfG "http://127.0.0.1:$PPORT/api/v1/metadata" --data-urlencode "metric=$1"; }
wait_until 10 eval 'meta dirtytrackd_vm_harvests | jq -e ".data.dirtytrackd_vm_harvests[0].type == \"counter\"" >/dev/null' ||
	fail "no OpenMetrics counter family in Prometheus' metadata: $(meta dirtytrackd_vm_harvests)"
meta dirtytrackd_harvest_duration_seconds | jq -e '.data.dirtytrackd_harvest_duration_seconds[0].unit == "seconds"' >/dev/null ||
	fail "no unit in Prometheus' metadata: $(meta dirtytrackd_harvest_duration_seconds)"
has_data 'scrape_samples_scraped{job="dirtytrackd"} > 50' || fail "few samples scraped"
echo "ok: Prometheus scraped the daemon with OpenMetrics (counter family dirtytrackd_vm_harvests, unit seconds)"

# Grafana's variables: a host regex, a VM name, the window and intervals.
subst() {
	sed -e 's/\$__rate_interval/30s/g' -e 's/\$__interval/5s/g' -e 's/\$instance/.+/g' \
		-e "s/\\\$vm/$1/g" -e 's/\$window/10/g'
}
# label_values(SELECTOR, LABEL) variables: the selector must have series with LABEL.
label_query() { sed -n 's/^label_values(\(.*\), *\([a-z_]*\))$/\1 \2/p'; }
exprs() { jq -r '[.panels[] | .targets[]? | .expr] | .[] | gsub("\n"; " ")' "$1"; }

# The recording rules, the 10 s window and the plans need a few seconds.
wait_until 40 has_data 'dirtytrackd:vm_working_set_bytes{window_seconds="10",name="web-frontend"}' ||
	fail "the 10 s working set never reached Prometheus"
wait_until 20 has_data 'dirtytrackd:harvest_duration_seconds:p99_5m' || fail "no harvest p99"
sleep 2
n=0
for d in "$M"/dashboards/*.json; do
	for vmname in web-frontend batch-etl; do
		while IFS= read -r e; do
			x=$(printf '%s' "$e" | subst "$vmname")
			wait_until 10 has_data "$x" || fail "$(basename "$d"), VM $vmname: no data for: $x ($(q "$x" | head -c 300))"
			n=$((n + 1))
		done < <(exprs "$d")
		while IFS= read -r v; do
			read -r sel lab <<<"$(printf '%s' "$v" | subst "$vmname" | label_query)"
			[ -n "$sel" ] || fail "$(basename "$d"): variable query not understood: $v"
			wait_until 10 has_label "$sel" "$lab" || fail "$(basename "$d"): variable $v has no values"
			n=$((n + 1))
		done < <(jq -r '.templating.list[] | select(.type == "query") | .definition' "$d")
	done
done
echo "ok: all $n dashboard expressions and variable queries (both VMs) return data from Prometheus"
# The reference links made it through, per VM and link, with name and uuid.
for l in 10Gbit/300ms 100Mbit/10ms; do
	has_data "dirtytrackd:vm_precopy_converges{link=\"$l\",name=\"web-frontend\",uuid=\"0b7c4c4e-1a7e-4bd9-9c3e-7e7f7a7b7c7d\"}" ||
		fail "no plan for web-frontend at $l"
done
# Negative control: the same check refuses an expression with no data.
! has_data 'dirtytrackd:vm_working_set_bytes{name="no-such-vm"}' || fail "has_data accepted an expression without data"
echo "ok: negative control: an expression without data is refused"

#!/usr/bin/env bash
# The stateful protocol fuzzer (build/dtfuzz) against the real daemon, a
# bounded run: concurrent hostile sessions (wrong values, wrong fds, half
# closes, unread replies, shared memory rewritten under the daemon) while a
# bystander VM writes known pages. The daemon must stay alive and answer
# /v1/health after every batch, log no sanitizer report, and the
# bystander's pages over the run must equal its truth page for page, never
# detached. FUZZ_DURATION (seconds, default 40), FUZZ_SEED (default: the
# date, printed; rerun a failure with it), FUZZ_WORKERS (default 6).
# make fuzz-long runs it for DURATION.
source "$(dirname "$0")/../lib/common.sh"
[ -x "$BUILD/dtfuzz" ] || fail "$BUILD/dtfuzz is missing (make tests)"
DURATION=${FUZZ_DURATION:-40}
SEED=${FUZZ_SEED:-$(date +%Y%m%d)}
cat >"$TMP/fuzz.conf" <<CONF
[daemon]
epoch = 100ms
# Fuzz VMs come and go: their detached entries are removed soon.
retention = 3s
snapshot_epochs = 20
[stats]
# The bystander's exact sets are collected every batch: keep 100 s of them.
recent_epochs = 1000
CONF
start_daemon --config "$TMP/fuzz.conf"
echo "fuzz: seed $SEED, $DURATION s (rerun: FUZZ_SEED=$SEED)"
rc=0
"$BUILD/dtfuzz" --attach "$ATTACH_SOCK" --api "$API_SOCK" --pid "$DAEMON_PID" \
	--log "$TMP/daemon.log" --seed "$SEED" --duration "$DURATION" \
	--workers "${FUZZ_WORKERS:-6}" --batch 2 | tee "$TMP/dtfuzz.out" || rc=$?
[ $rc -eq 0 ] || fail "dtfuzz reported a failure (exit $rc), seed $SEED"
grep -q '^dtfuzz: bystander: exact' "$TMP/dtfuzz.out" || fail "bystander not reported exact"
execs=$(sed -n 's/.*execs \([0-9]*\), sequences \([0-9]*\).*/\1/p' "$TMP/dtfuzz.out" | tail -1)
seqs=$(sed -n 's/.*execs \([0-9]*\), sequences \([0-9]*\).*/\2/p' "$TMP/dtfuzz.out" | tail -1)
[ "${execs:-0}" -gt 1000 ] || fail "only ${execs:-0} messages sent: the fuzzer did not run"
[ "${seqs:-0}" -gt 50 ] || fail "only ${seqs:-0} sessions"
daemon_alive || fail "daemon died"
check "daemon still healthy" api /v1/health
echo "ok: $execs messages in $seqs sessions, daemon alive, bystander exact"

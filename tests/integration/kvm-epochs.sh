#!/usr/bin/env bash
# Page for page, epoch by epoch (the KVM selftests' dirty_log_test check):
# every page a real KVM guest wrote is reported dirty in the epoch it was
# written in or the one after, and every page reported in an epoch was
# written in that epoch or the one before. Uses the daemon's documented
# GET /v1/vms/{id}/epochs/{n}/pages (notes/daemon-behaviour.md); skips,
# saying so, while the daemon does not serve it yet.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/kvm-lib.inc"
kvm_preflight
start_daemon --epoch 100ms

dtvm_start kvm-ep-ring --mode ring --memory 128M --vcpus 2 --rate 40000 --duration 2.5 \
	--wss 20000 --truth-pages --seed 31
P1=$DTVM_PID
dtvm_start kvm-ep-bitmap --mode bitmap --memory 128M --vcpus 1 --rate 40000 --duration 2.5 \
	--wss 20000 --truth-pages --seed 32
P2=$DTVM_PID
dtvm_wait $P1 kvm-ep-ring
dtvm_wait $P2 kvm-ep-bitmap

status=$(api_status /v1/vms/kvm-ep-ring/epochs/0/pages)
[ "$status" = 200 ] || skip "daemon does not serve GET /v1/vms/{id}/epochs/{n}/pages yet (HTTP $status): per-epoch page check not run"

for vm in kvm-ep-ring kvm-ep-bitmap; do
	api "/v1/vms/$vm/history?since=0&limit=100000" >"$TMP/$vm.history.json"
	mkdir -p "$TMP/$vm.epochs"
	for n in $(jq '.epochs[].epoch' "$TMP/$vm.history.json"); do
		api "/v1/vms/$vm/epochs/$n/pages?limit=100000" >"$TMP/$vm.epochs/$n.json" ||
			fail "$vm: epoch $n pages not served"
		jq -e '.next == null' "$TMP/$vm.epochs/$n.json" >/dev/null || fail "$vm: epoch $n has more than one page"
	done
	late=$(vm_field "$vm" .counters.late_syncs)
	python3 - "$TMP/$vm.json" "$TMP/$vm.history.json" "$TMP/$vm.epochs" "$late" <<'PY' || fail "$vm: per-epoch sets wrong"
import bisect, json, os, sys

truth = json.load(open(sys.argv[1]))
hist = sorted(json.load(open(sys.argv[2]))["epochs"], key=lambda e: e["epoch"])
ends = [e["end_us"] for e in hist]
sets = []
for e in hist:
    s = set()
    for first, count in json.load(open(os.path.join(sys.argv[3], f"{e['epoch']}.json")))["ranges"]:
        s.update(range(first, first + count))
    sets.append(s)
# Each batch's writes happened within [t0_us, t_us] (dtvm records both).
# A sync the VMM answered after the daemon's deadline (a starved host) moves
# its pages one epoch later: allow that many, and say so.
LATE = int(sys.argv[4])
if LATE:
    print(f"note: {LATE} late syncs: allowing up to {LATE} more epochs of lag")

def epoch_of(t):  # index of the first epoch whose end is >= t
    return bisect.bisect_left(ends, t)

bad = 0
writes_of = {}
for b in truth["batches"]:
    lo, hi = epoch_of(b["t0_us"]), epoch_of(b["t_us"]) + 1 + LATE
    for p in b["pages"]:
        writes_of.setdefault(p, []).append((b["t0_us"], b["t_us"]))
        if not any(p in sets[k] for k in range(lo, min(hi, len(sets) - 1) + 1)):
            bad += 1
            if bad <= 5:
                print(f"gpa page {p:#x} written at {b['t_us']} not reported in epochs {lo}..{hi}")
for k, s in enumerate(sets):
    start = ends[k - 2 - LATE] if k >= 2 + LATE else 0
    for p in s:
        if not any(t0 <= ends[k] and t1 > start for t0, t1 in writes_of.get(p, [])):
            bad += 1
            if bad <= 10:
                print(f"gpa page {p:#x} reported in epoch {k} but not written then")
print(f"{truth['name']}: {len(truth['batches'])} batches over {len(sets)} epochs, {bad} errors")
sys.exit(1 if bad else 0)
PY
	echo "ok: $vm: every write reported in its epoch or the next, nothing reported unwritten"
done

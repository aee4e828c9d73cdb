#!/usr/bin/env bash
# D-Bus on a private system bus with the project's policy: introspection
# equals docs/org.dirtytrack.DirtyTrack1.xml; the object tree, every
# property and every method through busctl and gdbus; InterfacesAdded,
# InterfacesRemoved and PropertiesChanged (per-epoch ones at most once per
# interval); the documented errors; and every figure equal to REST's for
# the same epoch.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/dbus-lib.inc"

start_bus
cat >"$TMP/dt.conf" <<EOF
[daemon]
# Long enough for the checks between the detach and the removal on a loaded host (ASan).
retention = 15s
EOF
start_daemon --config "$TMP/dt.conf" --dbus system --epoch 100ms
wait_name
grep -q "D-Bus: serving $DBUS_NAME on the system bus" "$TMP/daemon.log" || fail "no 'serving' line in the log"

# Two independent listeners for the signals.
stdbuf -oL busctl --system --json=short monitor "$DBUS_NAME" >"$TMP/busctl-monitor.log" 2>&1 &
BG_PIDS+=($!)
stdbuf -oL gdbus monitor --system --dest "$DBUS_NAME" >"$TMP/gdbus-monitor.log" 2>&1 &
BG_PIDS+=($!)
sleep 0.5

jqe() { jq -e "$@" >/dev/null; }

# --- the Manager -------------------------------------------------------------
mgr() { busctl --system --json=short get-property "$DBUS_NAME" "$DBUS_PATH" "$DBUS_MGR" "$1" | jq -c .data; }
check "Manager.Version is 1" [ "$(mgr Version)" = '"1"' ]
check "Manager.EpochSeconds is 0.1" [ "$(mgr EpochSeconds)" = 0.1 ]
check "Manager.PropertiesIntervalSeconds is 1" [ "$(mgr PropertiesIntervalSeconds)" = 1 ]
check "no VMs yet" [ "$(mgr VMs)" = 0 ]

# --- a VM comes ---------------------------------------------------------------
SIM_START=$(date +%s%N)
# It runs until the test stops it (SIGINT: a clean detach), however long the
# calls below take on a loaded host.
sim a 600 --mode ring+bitmap --seed 7
P=$(vm_path a)
check "GetVM(name) gives an escaped path" [ "$P" = "$DBUS_PATH/vm/_31" ]
check "GetVM(id) gives the same" [ "$(vm_path 1)" = "$P" ]
check "GetVM(uuid) gives the same" [ "$(vm_path "$(vm_field a .uuid)")" = "$P" ]
check "ListVMs lists it" [ "$(busctl --system --json=short call "$DBUS_NAME" "$DBUS_PATH" "$DBUS_MGR" ListVMs | jq -c '.data[0][0]')" = "[1,\"a\",\"$(vm_field a .uuid)\",\"attached\",\"$P\"]" ]
check "Manager.AttachedVMs is 1" [ "$(mgr AttachedVMs)" = 1 ]
busctl --system tree "$DBUS_NAME" >"$TMP/tree"
check "busctl tree shows the VM" grep -q "$P" "$TMP/tree"

# Introspection (busctl and gdbus) against the documented interface.
busctl --system introspect --xml-interface "$DBUS_NAME" "$DBUS_PATH" >"$TMP/mgr.xml"
gdbus introspect --system --dest "$DBUS_NAME" --object-path "$P" --xml >"$TMP/vm.xml"
check "live introspection equals docs/$DBUS_NAME.xml" \
	python3 "$SRC/tests/integration/dbus-xml-compare.py" "$SRC/docs/$DBUS_NAME.xml" "$TMP/mgr.xml" "$TMP/vm.xml"
check "the Manager lists vm as a child node" grep -q '<node name="vm"/>' "$TMP/mgr.xml"

# GetManagedObjects (both clients).
busctl --system --json=short call "$DBUS_NAME" "$DBUS_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects >"$TMP/managed.json"
check "GetManagedObjects has the VM with its interface" \
	jqe --arg p "$P" --arg i "$DBUS_VM" '.data[0][$p][$i].Name.data == "a"' "$TMP/managed.json"
gdbus call --system --dest "$DBUS_NAME" --object-path "$DBUS_PATH" \
	--method org.freedesktop.DBus.ObjectManager.GetManagedObjects >"$TMP/managed.gv"
check "gdbus GetManagedObjects has it too" grep -q "objectpath '$P'" "$TMP/managed.gv"

# Every property, one Get each (the names come from the live introspection).
props=$(python3 -c 'import sys, xml.etree.ElementTree as E
for i in E.parse(sys.argv[1]).getroot().iter("interface"):
    if i.get("name") == sys.argv[2]:
        print(" ".join(p.get("name") for p in i.iter("property")))' "$TMP/vm.xml" "$DBUS_VM")
n=0
for p in $props; do
	busctl --system get-property "$DBUS_NAME" "$P" "$DBUS_VM" "$p" >/dev/null || fail "Get $p"
	gdbus call --system --dest "$DBUS_NAME" --object-path "$P" --method org.freedesktop.DBus.Properties.Get "$DBUS_VM" "$p" >/dev/null || fail "gdbus Get $p"
	n=$((n + 1))
done
check "read all $n VM properties with busctl and gdbus" [ "$n" -ge 25 ]
gdbus call --system --dest "$DBUS_NAME" --object-path "$P" --method org.freedesktop.DBus.Properties.GetAll "$DBUS_VM" >"$TMP/getall.gv"
check "gdbus GetAll has the working-set curve" grep -q "'WorkingSet': <\[(0.1" "$TMP/getall.gv"

# Methods while it runs.
sleep 1.5
busctl --system --json=short call "$DBUS_NAME" "$P" "$DBUS_VM" GetHistory tu 0 1000 >"$TMP/hist.json"
check "GetHistory returns epochs in order" jqe '.data[0] | length > 5 and (map(.[0]) == (map(.[0]) | sort))' "$TMP/hist.json"
check "GetHistory(since, limit) honours both" \
	[ "$(busctl --system --json=short call "$DBUS_NAME" "$P" "$DBUS_VM" GetHistory tu 3 2 | jq -c '[.data[0][][0]]')" = "[3,4]" ]
busctl --system --json=short call "$DBUS_NAME" "$P" "$DBUS_VM" Plan tt 125000000 300000 >"$TMP/plan.json"
check "Plan at 1 Gbit/s, 300 ms converges" jqe '.data[0].converges.data == true and .data[0].verdict.data == "converges" and .data[0].advice.data == "none" and (.data[0].round_list.data | length) == .data[0].rounds.data' "$TMP/plan.json"
check "Plan states its inputs" jqe '.data[0].bandwidth.data == 125000000 and .data[0].max_downtime_usec.data == 300000 and .data[0].memory_pages.data == 65536 and (.data[0].curve.data | length) >= 1' "$TMP/plan.json"
busctl --system --json=short call "$DBUS_NAME" "$P" "$DBUS_VM" Plan tt 125000 1000 >"$TMP/plan-slow.json"
check "Plan at 1 Mbit/s does not converge and advises" jqe '.data[0].converges.data == false and (.data[0].advice.data | IN("throttle", "postcopy")) and (.data[0] | has("postcopy_total_seconds"))' "$TMP/plan-slow.json"
check "Plan below 1 Mbit/s is refused, naming the bound" sh -c '! busctl --system call "$0" "$1" "$2" Plan tt 100000 1000 2>"$3" && grep -q "at least 125000" "$3"' "$DBUS_NAME" "$P" "$DBUS_VM" "$TMP/plan-err"
gdbus call --system --dest "$DBUS_NAME" --object-path "$P" --method "$DBUS_VM.GetHistory" 0 3 >"$TMP/hist.gv"
check "gdbus calls GetHistory" grep -q '^(\[(uint64 0,' "$TMP/hist.gv"

# The documented errors.
wrong_signature() { # busctl reports sd-bus's InvalidArgs message
	local out
	out=$(busctl --system call "$DBUS_NAME" "$DBUS_PATH" "$DBUS_MGR" GetVM u 1 2>&1) && return 1
	[[ $out == *"Invalid arguments 'u'"* ]]
}
gerr() { # gdbus call ... ; prints the error name
	gdbus call --system --dest "$DBUS_NAME" "$@" 2>&1 | grep -o 'GDBus.Error:[A-Za-z0-9_.]*' | cut -d: -f2
}
check "GetVM of an unknown VM: NoSuchVM" [ "$(gerr --object-path "$DBUS_PATH" --method "$DBUS_MGR.GetVM" nope)" = "$DBUS_NAME.Error.NoSuchVM" ]
check "GetHistory limit 0: InvalidArgument" [ "$(gerr --object-path "$P" --method "$DBUS_VM.GetHistory" 0 0)" = "$DBUS_NAME.Error.InvalidArgument" ]
check "GetHistory limit 100001: InvalidArgument" [ "$(gerr --object-path "$P" --method "$DBUS_VM.GetHistory" 0 100001)" = "$DBUS_NAME.Error.InvalidArgument" ]
check "Plan bandwidth 0: InvalidArgument" [ "$(gerr --object-path "$P" --method "$DBUS_VM.Plan" 0 300000)" = "$DBUS_NAME.Error.InvalidArgument" ]
check "GetVM with a wrong signature: InvalidArgs" wrong_signature
check "a VM path that does not exist: UnknownObject" [ "$(gerr --object-path "$DBUS_PATH/vm/_39" --method "$DBUS_VM.GetHistory" 0 1)" = "org.freedesktop.DBus.Error.UnknownObject" ]
check "another spelling of a VM's path is not the VM" [ "$(gerr --object-path "$DBUS_PATH/vm/_2b1" --method "$DBUS_VM.GetHistory" 0 1)" = "org.freedesktop.DBus.Error.UnknownObject" ]
check "Properties.Set is refused by the bus policy" [ "$(gerr --object-path "$P" --method org.freedesktop.DBus.Properties.Set "$DBUS_VM" Name "<'x'>")" = "org.freedesktop.DBus.Error.AccessDenied" ]

# --- it detaches: figures are frozen, compare everything with REST ----------
enough_epochs() { [ "$(vm_field a .epochs_harvested)" -gt 40 ]; }
wait_until 20 enough_epochs || fail "a harvested only $(vm_field a .epochs_harvested) epochs"
kill -INT $SIM_PID
wait $SIM_PID || fail "dtsim failed: $(cat "$TMP/a.log")"
wait_until 5 vm_state_is a detached || fail "a did not detach"
SIM_END=$(date +%s%N)
sleep 0.3
api /v1/vms/a >"$TMP/rest.json"
busctl --system --json=short call "$DBUS_NAME" "$P" org.freedesktop.DBus.Properties GetAll s "$DBUS_VM" |
	jq '.data[0] | map_values(.data)' >"$TMP/bus.json"
api /v1/vms/a >"$TMP/rest2.json"
check "REST unchanged while D-Bus was read" cmp -s "$TMP/rest.json" "$TMP/rest2.json"
compare() { # description jq-expression-over-{bus,rest}
	local what=$1 expr=$2
	jqe -n --slurpfile b "$TMP/bus.json" --slurpfile r "$TMP/rest.json" \
		"\$b[0] as \$bus | \$r[0] as \$rest | $expr" >/dev/null || {
		echo "bus: $(jq -c . "$TMP/bus.json" | cut -c1-600)"
		echo "rest: $(jq -c . "$TMP/rest.json" | cut -c1-600)"
		fail "D-Bus and REST differ: $what"
	}
	echo "ok: D-Bus == REST: $what"
}
compare identity '$bus.Id == $rest.id and $bus.Name == $rest.name and $bus.Uuid == $rest.uuid and $bus.Vmm == $rest.vmm and $bus.Mode == $rest.mode'
compare state '$bus.State == "detached" and $bus.State == $rest.state and $bus.DetachReason == $rest.detach_reason'
compare "state directory" '$bus.StateError == "" and $rest.state_error == null and ($rest | has("state_error"))'
compare sizes '$bus.MemoryBytes == $rest.memory_bytes and $bus.PageSize == $rest.page_size and $bus.VCpus == $rest.vcpus and $bus.EpochSeconds == $rest.epoch_seconds'
compare "epoch and generation" '$bus.EpochsHarvested == $rest.epochs_harvested and $bus.Generation == $rest.generation and $bus.EpochsHarvested > 30'
compare "working-set curve" '$bus.WorkingSet == [$rest.wss[] | [.window_seconds, .pages, .bytes, .dirty_rate_bytes_per_second, .observed_seconds, .complete]] and ($bus.WorkingSet | length) >= 5'
# a few seconds of history: the last window (1 h) is not covered; its rate is over what was observed
compare "window not yet covered" '$bus.WorkingSet[-1] as $w | $w[0] == 3600 and $w[5] == false and $w[4] < 60 and $w[4] == $rest.epochs_harvested * $rest.epoch_seconds and (($w[3] - $w[2] / $w[4]) | fabs) <= 1e-9 * $w[3] and $bus.WorkingSet[0][5] == true'
compare "per-vCPU rates" '$bus.VCpuRates == [$rest.vcpus_detail[] | [.vcpu, .ring, .entries, [.wss[] | [.window_seconds, .pages, .bytes, .dirty_rate_bytes_per_second, .observed_seconds, .complete]]]]'
compare slots '$bus.Slots == [$rest.slots[] | [.slot, .gpa, .pages, [.wss[] | [.window_seconds, .pages, .bytes, .dirty_rate_bytes_per_second, .observed_seconds, .complete]]]] and ($bus.Slots | length) >= 1'
compare counters '$rest.counters as $c | $bus.Harvests == $c.harvests and $bus.RingEntries == $c.ring_entries and $bus.InvalidEntries == $c.invalid_entries and $bus.BitmapPages == $c.bitmap_pages and $bus.RingFull == $c.ring_full and $bus.Resets == $c.resets and $bus.LateSyncs == $c.late_syncs and $bus.Attaches == $c.attaches and $bus.DirtiedPages == $c.dirtied_pages and ($bus.HarvestUSec / 1e6) == $c.harvest_seconds and $bus.HistoryBytes == $c.history_bytes and $bus.BitmapPages > 0 and $bus.RingEntries > 0'
busctl --system --json=short call "$DBUS_NAME" "$P" "$DBUS_VM" GetHistory tu 5 20 | jq -c '.data[0]' >"$TMP/bus-hist.json"
api "/v1/vms/a/history?since=5&limit=20" | jq -c '[.epochs[] | [.epoch, .end_us, .pages, .entries, .bytes]]' >"$TMP/rest-hist.json"
check "GetHistory == REST history" cmp -s "$TMP/bus-hist.json" "$TMP/rest-hist.json"

# --- retention over: the object goes --------------------------------------
wait_until 25 sh -c "! curl -sf --unix-socket '$API_SOCK' http://localhost/v1/vms/a >/dev/null" || fail "a was not removed after retention"
sleep 0.3
check "GetVM no longer finds it" [ "$(gerr --object-path "$DBUS_PATH" --method "$DBUS_MGR.GetVM" a)" = "$DBUS_NAME.Error.NoSuchVM" ]
check "Manager.VMs is 0 again" [ "$(mgr VMs)" = 0 ]
# A cached client learns it from the signal: REMOVED comes after the unlink.
vms0() { jq -cR 'fromjson? | select(.type == "signal" and .member == "PropertiesChanged" and .path == "'"$DBUS_PATH"'" and .payload.data[1].VMs.data == 0)' "$TMP/busctl-monitor.log" | grep -q .; }
check "Manager PropertiesChanged VMs = 0 after the removal" wait_until 2 vms0

# --- the signals -------------------------------------------------------------
sig() { # jq filter over the busctl monitor's signals
	jq -cR "fromjson? | select(.type == \"signal\") | $1" "$TMP/busctl-monitor.log"
}
check "InterfacesAdded for the VM, with its properties" \
	[ "$(sig "select(.member == \"InterfacesAdded\" and .payload.data[0] == \"$P\") | .payload.data[1][\"$DBUS_VM\"].Id.data")" = 1 ]
check "InterfacesRemoved for the VM" \
	[ "$(sig "select(.member == \"InterfacesRemoved\" and .payload.data[0] == \"$P\") | .payload.data[1][0]")" = "\"$DBUS_VM\"" ]
check "PropertiesChanged with State = detached" \
	[ -n "$(sig "select(.member == \"PropertiesChanged\" and .path == \"$P\" and .payload.data[1].State.data == \"detached\") | 1")" ]
check "Manager PropertiesChanged AttachedVMs" \
	[ -n "$(sig "select(.member == \"PropertiesChanged\" and .path == \"$DBUS_PATH\" and .payload.data[1].AttachedVMs != null) | 1")" ]
# Per-epoch invalidations: the flushes, without values.
sig "select(.member == \"PropertiesChanged\" and .path == \"$P\" and (.payload.data[1] | length) == 0 and (.payload.data[2] | index(\"EpochsHarvested\")))" >"$TMP/flushes"
nflush=$(wc -l <"$TMP/flushes")
secs=$(((SIM_END - SIM_START) / 1000000000 + 1))
check "per-epoch PropertiesChanged: $nflush over ~${secs}s at 10 epochs/s (at most one per second)" \
	test "$nflush" -ge 2 -a "$nflush" -le $((secs + 1))
# The live introspection's EmitsChangedSignal of each VM property, as a JSON object.
emits=$(python3 -c 'import sys, json, xml.etree.ElementTree as E
A = "org.freedesktop.DBus.Property.EmitsChangedSignal"
for i in E.parse(sys.argv[1]).getroot().iter("interface"):
    if i.get("name") == sys.argv[2]:
        print(json.dumps({p.get("name"): next((a.get("value") for a in p.iter("annotation") if a.get("name") == A), "true") for p in i.iter("property")}))' "$TMP/vm.xml" "$DBUS_VM")
check "they invalidate, listing every per-epoch property" \
	jqe -s 'all(.payload.data[2] | length == 16 and index("WorkingSet") and index("VCpuRates") and index("Generation"))' "$TMP/flushes"
check "a flush invalidates exactly the properties introspected as EmitsChangedSignal=invalidates" \
	jqe -s --argjson e "$emits" 'all(.payload.data[2] | sort == ($e | to_entries | map(select(.value == "invalidates") | .key) | sort))' "$TMP/flushes"
sig "select(.member == \"PropertiesChanged\" and .path == \"$P\" and .payload.data[1].State.data == \"detached\")" >"$TMP/state-signal"
check "a State change carries the EmitsChangedSignal=true ones with values and invalidates the rest" \
	jqe -s --argjson e "$emits" '.[0].payload.data as $d | ($d[1] | keys | sort) == ($e | to_entries | map(select(.value == "true") | .key) | sort) and ($d[2] | sort) == ($e | to_entries | map(select(.value == "invalidates") | .key) | sort)' "$TMP/state-signal"
check "flushes are at least 0.9 s apart" \
	jqe -s '[.[]."timestamp-realtime"] | [range(1; length) as $i | .[$i] - .[$i - 1]] | all(. >= 900000)' "$TMP/flushes"
check "gdbus monitor saw InterfacesAdded and InterfacesRemoved" \
	grep -q "InterfacesAdded (objectpath '$P'" "$TMP/gdbus-monitor.log"
grep -q "InterfacesRemoved (objectpath '$P'" "$TMP/gdbus-monitor.log" || fail "gdbus monitor: no InterfacesRemoved"
check "gdbus monitor saw PropertiesChanged" grep -q "$P: org.freedesktop.DBus.Properties.PropertiesChanged" "$TMP/gdbus-monitor.log"

stop_daemon

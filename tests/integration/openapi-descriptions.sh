#!/usr/bin/env bash
# docs/openapi.json describes every field: walking every schema (components,
# responses, parameters, inline objects and arrays' items), each property
# has a non-empty description. A copy with one description removed must
# fail the same walk (negative control).
source "$(dirname "$0")/../lib/common.sh"
command -v python3 >/dev/null || skip "python3 is missing"
walk() {
	python3 - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
missing, seen = [], 0
def walk(o, path):
    global seen
    if isinstance(o, dict):
        props = o.get("properties")
        if isinstance(props, dict):
            for name, p in props.items():
                seen += 1
                if not (isinstance(p, dict) and str(p.get("description", "")).strip()):
                    missing.append(f"{path}/properties/{name}")
        for k, v in o.items():
            walk(v, f"{path}/{k}")
    elif isinstance(o, list):
        for i, v in enumerate(o):
            walk(v, f"{path}/{i}")
walk(doc, "#")
for m in missing:
    print(f"no description: {m}")
print(f"{seen} properties, {len(missing)} without a description")
sys.exit(1 if missing or seen == 0 else 0)
PY
}
walk docs/openapi.json >"$TMP/out" || fail "$(cat "$TMP/out")"
echo "ok: $(tail -n1 "$TMP/out")"
# the counters object's members and Vcpu.entries are among them
python3 -c '
import json; c = json.load(open("docs/openapi.json"))["components"]["schemas"]
assert "history_bytes" in c["Vm"]["allOf"][1]["properties"]["counters"]["properties"]
assert "not the ring" in c["Vcpu"]["properties"]["entries"]["description"]
' || fail "counters members or Vcpu.entries not described"
python3 -c '
import json; d = json.load(open("docs/openapi.json"))
del d["components"]["schemas"]["Vcpu"]["properties"]["entries"]["description"]
json.dump(d, open("'"$TMP"'/neg.json", "w"))'
! walk "$TMP/neg.json" >"$TMP/neg" || fail "the walk accepted a property without a description"
grep -q 'no description: #/components/schemas/Vcpu/properties/entries' "$TMP/neg" || fail "negative control: $(cat "$TMP/neg")"
echo "ok: negative control: a property without a description fails the walk"

#!/usr/bin/env python3
"""Compare the org.dirtytrack.* interfaces of a documented introspection file
with live introspection files: methods and their arguments (in order),
properties (type, access, EmitsChangedSignal, "true" when not annotated),
signals. Comments and formatting do not matter. Exit 1 with a diff."""
import sys
import xml.etree.ElementTree as ET

ECS = "org.freedesktop.DBus.Property.EmitsChangedSignal"


def canon(paths):
    out = {}
    for path in paths:
        for iface in ET.parse(path).getroot().iter("interface"):
            name = iface.get("name")
            if not name.startswith("org.dirtytrack."):
                continue
            lines = []
            for el in iface:
                ann = {a.get("name"): a.get("value") for a in el.findall("annotation")}
                if el.tag == "property":
                    lines.append("property %s %s %s %s" % (el.get("name"), el.get("type"),
                                 el.get("access"), ann.pop(ECS, "true")))
                elif el.tag in ("method", "signal"):
                    args = ", ".join("%s %s %s" % (a.get("direction", "out" if el.tag == "signal" else "in"),
                                     a.get("type"), a.get("name")) for a in el.findall("arg"))
                    lines.append("%s %s(%s)" % (el.tag, el.get("name"), args))
                else:
                    continue
                for k, v in sorted(ann.items()):
                    lines.append("  annotation %s %s=%s" % (el.get("name"), k, v))
            out[name] = sorted(lines)
    return out


doc = canon(sys.argv[1:2])
live = canon(sys.argv[2:])
if doc == live:
    sys.exit(0)
for name in sorted(set(doc) | set(live)):
    d, l = set(doc.get(name, [])), set(live.get(name, []))
    for x in sorted(d - l):
        print("%s: only documented: %s" % (name, x))
    for x in sorted(l - d):
        print("%s: only live: %s" % (name, x))
sys.exit(1)

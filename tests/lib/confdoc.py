#!/usr/bin/env python3
"""Check config/dirtytrackd.conf and dirtytrackd.conf(5) against the key table.

usage: confdoc.py KEYS.tsv dirtytrackd.conf dirtytrackd.conf.5.txt

KEYS.tsv is `dirtytrackd --dump-config-keys` (key, type, default, min, max,
reload|restart, doc); the page is the man page rendered as text (groff
-Tutf8 -P-cbou, long lines). For every key of the table:
- the shipped file has it under its [section]: `key = DEFAULT`, or
  `#key = ...` when the default is derived ("-"); no key the table lacks;
- the comment lines above it (back to the previous key or section) say
  "MIN to MAX" when the key has bounds, and "Restart" exactly when a reload
  does not apply it;
- the page has an entry `key = ...` under its [section] heading that says
  "default DEFAULT" ("default empty" for an empty one), "MIN to MAX", and
  "Restart" exactly when the table does; no entry the table lacks.
Prints one line per problem, naming the key; exit 1 if any.
"""
import re
import sys


def load_keys(path):
    keys = {}
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != 7:
            sys.exit(f"{path}: not 7 tab-separated fields: {line!r}")
        name, typ, default, lo, hi, reload, doc = f
        keys[name] = dict(type=typ, default=None if default == "-" else default,
                          min=None if lo == "-" else lo, max=None if hi == "-" else hi,
                          restart=reload == "restart")
    return keys


def conf_entries(path):
    """section.key -> (value or None if commented out, comment text above it)."""
    out, section, comment = {}, None, []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = re.fullmatch(r"\[([a-z]+)\]", line)
        if m:
            section, comment = m.group(1), []
            continue
        m = re.fullmatch(r"(#?)([a-z_]+) =(?: (.*))?", line)
        if m and section:
            name = f"{section}.{m.group(2)}"
            if name in out:
                out[name + " (twice)"] = out[name]
            out[name] = (None if m.group(1) else (m.group(3) or ""), " ".join(comment))
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# "))
        # a blank line keeps the comment: a block may describe the keys below it
    return out


def page_entries(path):
    """section.key -> the entry's text (whitespace collapsed)."""
    out, section, cur = {}, None, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line and not line.startswith(" "):
            m = re.fullmatch(r"\[([a-z]+)\]", line.strip())
            section, cur = (m.group(1) if m else None), None
            continue
        m = re.fullmatch(r" {7}([a-z_]+) =.*", line)
        if m and section:
            cur = f"{section}.{m.group(1)}"
            out[cur] = line.strip()
        elif cur and line.strip():
            out[cur] += " " + line.strip()
    return {k: re.sub(r"\s+", " ", v) for k, v in out.items()}


def main():
    keys = load_keys(sys.argv[1])
    conf = conf_entries(sys.argv[2])
    page = page_entries(sys.argv[3])
    bad = []
    for name, k in keys.items():
        bound = f"{k['min']} to {k['max']}" if k["min"] and k["max"] else None
        # the shipped file
        if name not in conf:
            bad.append(f"{name}: missing from {sys.argv[2]}")
        else:
            value, comment = conf[name]
            if k["default"] is None and value is not None:
                bad.append(f"{name}: derived default, but {sys.argv[2]} sets it (comment it out)")
            elif k["default"] is not None and value != k["default"]:
                bad.append(f"{name}: {sys.argv[2]} shows {value!r}, the default is {k['default']!r}")
            if bound and bound not in comment:
                bad.append(f"{name}: the comment above it in {sys.argv[2]} lacks {bound!r}")
            if k["restart"] != ("Restart" in comment):
                bad.append(f"{name}: the comment above it in {sys.argv[2]} "
                           + ("lacks \"Restart\"" if k["restart"] else "says \"Restart\", but a reload applies it"))
        # the page
        if name not in page:
            bad.append(f"{name}: missing from the page (under [{name.split('.')[0]}])")
            continue
        text = page[name]
        if k["default"] is not None:
            d = k["default"] or "empty"
            if not re.search(r"(?i)\bdefault:? " + re.escape(d) + r"(?=[ ,.;:)]|$)", text):
                bad.append(f"{name}: the page does not say \"default {d}\": {text}")
        if bound and bound not in text:
            bad.append(f"{name}: the page does not say {bound!r}: {text}")
        if k["restart"] != ("Restart" in text):
            bad.append(f"{name}: the page " + ("does not say \"Restart\"" if k["restart"]
                                               else "says \"Restart\", but a reload applies it"))
    for name in sorted(set(conf) - set(keys)):
        bad.append(f"{name}: in {sys.argv[2]}, not a key of the table")
    for name in sorted(set(page) - set(keys)):
        bad.append(f"{name}: on the page, not a key of the table")
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

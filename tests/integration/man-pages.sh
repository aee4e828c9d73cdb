#!/usr/bin/env bash
# The man pages, built from docs/man/*.scd by make (scdoc): they render
# without a groff warning; dirtytrackd.conf(5) documents every key of
# config/dirtytrackd.conf (and of the daemon's key table) under its
# section; dirtytrackctl(1) every command of the CLI's table and every
# option; dirtytrackd(8) every option of the daemon. The lists come from
# the sources. make install puts the pages under $(PREFIX)/share/man and
# make uninstall removes them.
source "$(dirname "$0")/../lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v scdoc >/dev/null || skip "scdoc is missing (Debian package scdoc; make deps installs it)"
command -v groff >/dev/null || skip "groff is missing (Debian package groff-base)"
cd "$SRC"
M="$BUILD/man"
for p in dirtytrackd.8 dirtytrackctl.1 dirtytrackd.conf.5; do
	[ -s "$M/$p" ] || fail "$M/$p was not built (make builds it when scdoc is there)"
	[ "$M/$p" -nt "docs/man/$p.scd" ] || fail "$M/$p is older than docs/man/$p.scd"
	LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$M/$p" 2>"$TMP/warn"
	[ ! -s "$TMP/warn" ] || fail "$p: groff warns: $(head -5 "$TMP/warn")"
	# Text without hyphenation or overstrikes, long lines: words stay whole.
	LC_ALL=C.UTF-8 groff -man -Tutf8 -rHY=0 -rLL=250n -P-cbou "$M/$p" >"$TMP/$p.txt"
	head -n1 "$TMP/$p.txt" | grep -q "^${p%.*}(${p##*.})" || fail "$p: title line: $(head -n1 "$TMP/$p.txt")"
done
echo "ok: three pages built, groff renders them without a warning"

# Text of the part of a page under heading $2 (a line at column 0), up to the next heading.
part() { awk -v h="$2" '/^[^ ]/ { on = ($0 == h) ; next } on' "$TMP/$1.txt"; }

# --- dirtytrackd.conf(5): every key of the shipped file, under its section
keys=$(awk '/^\[[a-z]+\]$/ { s = substr($0, 2, length($0) - 2); next }
	match($0, /^#?[a-z_]+ =/) { k = substr($0, 1, RLENGTH - 2); sub(/^#/, "", k); print s "." k }' config/dirtytrackd.conf)
[ "$(wc -l <<<"$keys")" -ge 30 ] || fail "only $(wc -l <<<"$keys") keys found in config/dirtytrackd.conf"
# and of the daemon's key table (the parser), which must be the same set
table=$(grep -o '^	\(STR\|RAW\|ARR\)("[a-z]*\.[a-z_]*"' daemon/config.c | sed 's/.*("//; s/"$//')
[ "$(sort <<<"$keys")" = "$(sort <<<"$table")" ] ||
	fail "config/dirtytrackd.conf and daemon/config.c differ: $(diff <(sort <<<"$keys") <(sort <<<"$table") | grep '^[<>]' | tr '\n' ' ')"
missing=()
for sk in $keys; do
	part dirtytrackd.conf.5 "[${sk%%.*}]" | grep -Eq "^ +${sk#*.} =( |$)" || missing+=("$sk")
done
[ ${#missing[@]} = 0 ] || fail "dirtytrackd.conf(5) lacks (under its section): ${missing[*]}"
echo "ok: dirtytrackd.conf(5) documents all $(wc -l <<<"$keys") keys of config/dirtytrackd.conf under their sections"

# --- dirtytrackctl(1): every command of the table, every option of the tool
cmds=$(grep -o '^	{ "[a-z-]*", ctl_[a-z_]*,' tools/dirtytrackctl/main.c | sed 's/^	{ "//; s/".*//')
[ "$(wc -l <<<"$cmds")" -ge 7 ] || fail "only $(wc -l <<<"$cmds") commands found in tools/dirtytrackctl/main.c"
missing=()
for c in $cmds; do part dirtytrackctl.1 COMMANDS | grep -Eq "^ {7}$c( |$)" || missing+=("$c"); done
[ ${#missing[@]} = 0 ] || fail "dirtytrackctl(1) lacks the commands: ${missing[*]}"
# ... and the built tool has no command the page lacks (--help lists them)
for c in $("$BUILD/dirtytrackctl" --help | awk '/^  [a-z]/ { print $1 }'); do
	grep -qx "$c" <<<"$cmds" || fail "dirtytrackctl --help lists '$c', not in its command table"
done
opts=$(cat tools/dirtytrackctl/*.c | grep -o '{ "[a-z-]*", \(no\|required\)_argument' | sed 's/{ "//; s/".*//' | sort -u)
missing=()
for o in $opts; do grep -q -- "--$o\b" "$TMP/dirtytrackctl.1.txt" || missing+=("--$o"); done
[ ${#missing[@]} = 0 ] || fail "dirtytrackctl(1) lacks the options: ${missing[*]}"
echo "ok: dirtytrackctl(1) documents its $(wc -l <<<"$cmds") commands ($(echo $cmds)) and $(wc -l <<<"$opts") options"

# --- dirtytrackd(8): every option of the daemon
opts=$(grep -o '{ "[a-z-]*", \(no\|required\)_argument' app/main.c | sed 's/{ "//; s/".*//')
missing=()
for o in $opts; do part dirtytrackd.8 OPTIONS | grep -Eq -- "^ {7}--$o( |$)" || missing+=("--$o"); done
[ ${#missing[@]} = 0 ] || fail "dirtytrackd(8) lacks the options: ${missing[*]}"
echo "ok: dirtytrackd(8) documents its $(wc -l <<<"$opts") options"

# --- make install / uninstall
D="$TMP/dest"
NOBUILD=(-o "$BUILD/dirtytrackd" -o "$BUILD/dirtytrackctl" -o "$BUILD/libdirtytrack.a")
make -s -C "$SRC" "${NOBUILD[@]}" BUILD="$BUILD" install DESTDIR="$D" PREFIX=/usr >"$TMP/install.log" 2>&1 ||
	fail "make install: $(tail -5 "$TMP/install.log")"
for p in man8/dirtytrackd.8 man1/dirtytrackctl.1 man5/dirtytrackd.conf.5; do
	cmp -s "$D/usr/share/man/$p" "$M/${p#*/}" || fail "make install did not put $p under /usr/share/man"
done
MANPATH="$D/usr/share/man" man -w dirtytrackd.conf 2>/dev/null | grep -q "man5/dirtytrackd.conf.5" ||
	fail "man does not find dirtytrackd.conf(5) in the installed tree"
make -s -C "$SRC" BUILD="$BUILD" uninstall DESTDIR="$D" PREFIX=/usr >"$TMP/uninstall.log" 2>&1 ||
	fail "make uninstall: $(tail -5 "$TMP/uninstall.log")"
[ -z "$(find "$D/usr/share/man" -type f 2>/dev/null)" ] || fail "make uninstall left: $(find "$D/usr/share/man" -type f)"
echo "ok: make install puts them in \$(PREFIX)/share/man/man{1,5,8}, man finds them, make uninstall removes them"

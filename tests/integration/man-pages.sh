#!/usr/bin/env bash
# The man pages, built from docs/man/*.scd by make (scdoc): they render
# without a groff warning; dirtytrackd.conf(5) and config/dirtytrackd.conf
# document every key of the daemon's key table (dirtytrackd
# --dump-config-keys) under its section, with its default, bounds and
# whether a reload applies it; dirtytrackctl(1) every command of the CLI's
# table and every option; dirtytrackd(8) every option of the daemon. The
# lists come from the sources. make install puts the pages under
# $(PREFIX)/share/man and make uninstall removes them.
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

# --- dirtytrackd.conf(5) and config/dirtytrackd.conf against the daemon's key table
# (dirtytrackd --dump-config-keys): every key in both, under its section; the
# shipped file shows the default (commented out when it is derived), the page
# says "default X"; both give the bounds as "MIN to MAX", and say "Restart"
# exactly for the keys a reload does not apply. tests/lib/confdoc.py does it.
"$BUILD/dirtytrackd" --dump-config-keys >"$TMP/keys.tsv" || fail "dirtytrackd --dump-config-keys failed"
[ "$(wc -l <"$TMP/keys.tsv")" -ge 40 ] || fail "only $(wc -l <"$TMP/keys.tsv") keys in --dump-config-keys"
python3 "$SRC/tests/lib/confdoc.py" "$TMP/keys.tsv" config/dirtytrackd.conf "$TMP/dirtytrackd.conf.5.txt" ||
	fail "config/dirtytrackd.conf or dirtytrackd.conf(5) does not match the key table (above)"
echo "ok: config/dirtytrackd.conf and dirtytrackd.conf(5) document all $(wc -l <"$TMP/keys.tsv") keys of the table with its defaults, bounds and restart marks"
# Negative control: the check fails on a shipped file with one key gone, one
# default changed, one bound changed, and on a page with one key gone.
sed '/^max_vcpus = /d' config/dirtytrackd.conf >"$TMP/neg1.conf"
sed 's/^snapshot_epochs = 60$/snapshot_epochs = 61/' config/dirtytrackd.conf >"$TMP/neg2.conf"
sed 's/1 to 1000000/1 to 100000/' config/dirtytrackd.conf >"$TMP/neg3.conf"
for n in 1 2 3; do
	! python3 "$SRC/tests/lib/confdoc.py" "$TMP/keys.tsv" "$TMP/neg$n.conf" "$TMP/dirtytrackd.conf.5.txt" >"$TMP/neg$n.out" 2>&1 ||
		fail "negative control $n: the check passed on a broken config/dirtytrackd.conf"
done
grep -q 'attach.max_vcpus' "$TMP/neg1.out" || fail "negative control 1 does not name the key: $(cat "$TMP/neg1.out")"
grep -q 'daemon.snapshot_epochs' "$TMP/neg2.out" || fail "negative control 2 does not name the key: $(cat "$TMP/neg2.out")"
awk '/^ +max_memory =/ { skip = 1; next } skip && /^ +[a-z_]+ =/ { skip = 0 } !skip' \
	"$TMP/dirtytrackd.conf.5.txt" >"$TMP/neg4.txt"
! python3 "$SRC/tests/lib/confdoc.py" "$TMP/keys.tsv" config/dirtytrackd.conf "$TMP/neg4.txt" >"$TMP/neg4.out" 2>&1 ||
	fail "negative control 4: the check passed on a page without max_memory"
grep -q 'attach.max_memory' "$TMP/neg4.out" || fail "negative control 4 does not name the key: $(cat "$TMP/neg4.out")"
echo "ok: negative controls: a key missing, a default or a bound changed in the file, a key missing from the page, each fails naming the key"

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

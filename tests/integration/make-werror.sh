#!/usr/bin/env bash
# make check's -Werror pass compiles every source with -Werror even when a
# build without it is already there (its objects were up to date, so the
# pass compiled nothing). Dry run (make -n) on a tree holding such objects.
source "$(dirname "$0")/../lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ -d "$BUILD/obj" ] || fail "$BUILD/obj is missing (build first)"
B="$TMP/b"
mkdir -p "$B"
cp -a "$BUILD/obj" "$B/obj" # objects newer than every source, from a build with other flags
make -n -C "$SRC" BUILD="$B" V=1 check >"$TMP/n.log" 2>&1 || fail "make -n check: $(tail -5 "$TMP/n.log")"
cd "$SRC"
srcs=$(ls common/*.c proto/*.c stats/*.c collectors/*.c daemon/*.c api/*.c app/*.c tools/dirtytrackctl/*.c \
	tools/dtsim/*.c tools/dtvm/*.c 2>/dev/null | sort)
n=$(wc -l <<<"$srcs")
grep -F -- " -c -o $B/werror/obj/" "$TMP/n.log" >"$TMP/cc" || true
[ "$(grep -c -- '-Werror' "$TMP/cc")" = "$(wc -l <"$TMP/cc")" ] || fail "a compile of the -Werror pass without -Werror"
got=$(sed 's/.* -c -o [^ ]* \([^ ]*\.c\)$/\1/' "$TMP/cc" | sort)
missing=$(comm -23 <(echo "$srcs") <(echo "$got"))
[ -z "$missing" ] || fail "the -Werror pass does not compile: $(echo $missing) ($(wc -l <"$TMP/cc") of $n compiled)"
echo "ok: with objects of another build present, make check compiles all $n sources with -Werror (in $B/werror)"

#!/bin/bash
# dtsim's command line: every bad option exits 2 with a one-line message that
# names the option; --help exits 0. Needs no daemon: option errors come first.
set -euo pipefail

BUILD=${BUILD:-build}
DTSIM=$BUILD/dtsim
[ -x "$DTSIM" ] || { echo "dtsim-options: $DTSIM not built" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# A valid base command line; the socket does not exist, which only matters
# once the options are accepted.
base=(--connect "$tmp/none.sock" --name vm1 --memory 64M --rate 1000 --duration 1)

# expect_bad OPTION-NAMED-IN-MESSAGE ARGS...
expect_bad() {
	local opt=$1 rc=0
	shift
	"$DTSIM" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne 2 ]; then
		echo "FAIL: dtsim $* exited $rc, expected 2" >&2
		fail=1
	elif ! grep -qF -- "$opt" "$tmp/err"; then
		echo "FAIL: dtsim $*: message does not name $opt: $(cat "$tmp/err")" >&2
		fail=1
	elif [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
		echo "FAIL: dtsim $*: message is not one line: $(cat "$tmp/err")" >&2
		fail=1
	fi
}

# --help
rc=0
"$DTSIM" --help >"$tmp/help" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] || ! grep -q -- '--connect' "$tmp/help" || ! grep -q -- '--pattern' "$tmp/help"; then
	echo "FAIL: dtsim --help (exit $rc)" >&2
	fail=1
fi

# required options
expect_bad --connect --name vm1 --memory 64M --rate 1000
expect_bad --name --connect "$tmp/s" --memory 64M --rate 1000
expect_bad --memory --connect "$tmp/s" --name vm1 --rate 1000
expect_bad --rate --connect "$tmp/s" --name vm1 --memory 64M

# malformed values
expect_bad --memory "${base[@]}" --memory 64X
expect_bad --memory "${base[@]}" --memory 0
expect_bad --memory "${base[@]}" --memory 4097
expect_bad --memory "${base[@]}" --memory 2T
expect_bad --page-size "${base[@]}" --page-size 3000
expect_bad --page-size "${base[@]}" --page-size 128K
expect_bad --vcpus "${base[@]}" --vcpus 0
expect_bad --vcpus "${base[@]}" --vcpus two
expect_bad --mode "${base[@]}" --mode dirty
expect_bad --pattern "${base[@]}" --pattern random
expect_bad --rate "${base[@]}" --rate -5
expect_bad --rate "${base[@]}" --rate fast
expect_bad --wss "${base[@]}" --wss 0
expect_bad --wss "${base[@]}" --wss 16385
expect_bad --duration "${base[@]}" --duration 0
expect_bad --duration "${base[@]}" --duration 10x
expect_bad --seed "${base[@]}" --seed -1
expect_bad --uuid "${base[@]}" --uuid not-a-uuid
expect_bad --name "${base[@]}" --name ''
expect_bad --name "${base[@]}" --name "$(printf 'a%.0s' {1..64})"
expect_bad --connect "${base[@]}" --connect "/tmp/$(printf 'x%.0s' {1..120})"
expect_bad --slots "${base[@]}" --slots 0
expect_bad --ring-entries "${base[@]}" --ring-entries 1000
expect_bad --ring-entries "${base[@]}" --ring-entries 64
expect_bad --ring-entries "${base[@]}" --ring-entries 131072
expect_bad --dma-fraction "${base[@]}" --mode ring+bitmap --dma-fraction 1.5
expect_bad --dma-fraction "${base[@]}" --mode ring --dma-fraction 0.2
expect_bad --dirty-limit "${base[@]}" --dirty-limit 0
expect_bad --vcpu-rates "${base[@]}" --vcpus 2 --vcpu-rates 1
expect_bad --vcpu-rates "${base[@]}" --vcpus 2 --vcpu-rates 1,2,3
expect_bad --vcpu-rates "${base[@]}" --vcpus 2 --vcpu-rates 1,x
expect_bad --vcpu-rates "${base[@]}" --vcpus 2 --vcpu-rates 0,0
expect_bad --truth "${base[@]}" --truth ''
expect_bad --trace "${base[@]}" --trace ''
expect_bad --memory "${base[@]}" --memory
expect_bad --bogus "${base[@]}" --bogus
expect_bad extra "${base[@]}" extra

# accepted options get as far as connecting: exit 1, naming the socket
rc=0
"$DTSIM" "${base[@]}" --uuid 12345678-9abc-def0-1234-56789abcdef0 --memory 8G --slots 3 \
	--vcpus 4 --mode ring+bitmap --pattern zipf --wss 1000 --seed 7 --duration 500ms \
	--ring-entries 256 --dma-fraction 0.25 --dirty-limit 100 --vcpu-rates 1,1,2,0 \
	--page-size 64K --truth "$tmp/t.json" --trace "$tmp/t.bin" 2>"$tmp/err" || rc=$?
if [ "$rc" -ne 1 ] || ! grep -qF "$tmp/none.sock" "$tmp/err"; then
	echo "FAIL: valid options: exit $rc, expected 1 (no daemon): $(cat "$tmp/err")" >&2
	fail=1
fi

[ "$fail" -eq 0 ] && echo "dtsim-options: ok"
exit "$fail"

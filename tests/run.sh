#!/usr/bin/env bash
# Run every test: unit programs (build/.../tests/test_*), integration scripts
# (tests/integration/*.sh) and a short bounded fuzz run. Exit status 77 means
# skipped (the test says why). Tests named kvm-* need a usable /dev/kvm;
# qemu-* need Debian's qemu-system-x86_64 with /dev/kvm too.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
export BUILD FUZZ_BUILD
pass=0 fail=0 skip=0 kvm_ran=0 kvm_skipped=0 qemu_ran=0 qemu_skipped=0
failed=()
logdir=$(mktemp -d /tmp/dirtytrack-tests.XXXXXX)

run() { # name kind command...
	local name=$1 kind=$2
	shift 2
	local log="$logdir/${name//\//_}.log" start end rc
	start=$(date +%s%N)
	timeout --kill-after=10 "${TEST_TIMEOUT:-300}" "$@" >"$log" 2>&1
	rc=$?
	end=$(date +%s%N)
	local ms=$(((end - start) / 1000000))
	local secs="$((ms / 1000)).$(((ms % 1000) / 100))"
	case $rc in
	0)
		pass=$((pass + 1))
		[ "$kind" = kvm ] && kvm_ran=$((kvm_ran + 1))
		[ "$kind" = qemu ] && qemu_ran=$((qemu_ran + 1))
		printf 'PASS  %-40s %6ss\n' "$name" "$secs"
		;;
	77)
		skip=$((skip + 1))
		[ "$kind" = kvm ] && kvm_skipped=$((kvm_skipped + 1))
		[ "$kind" = qemu ] && qemu_skipped=$((qemu_skipped + 1))
		printf 'SKIP  %-40s %s\n' "$name" "$(grep -m1 -i 'skip' "$log" | cut -c1-120)"
		;;
	*)
		fail=$((fail + 1))
		failed+=("$name")
		printf 'FAIL  %-40s (exit %d) log: %s\n' "$name" "$rc" "$log"
		tail -n 30 "$log" | sed 's/^/      | /'
		;;
	esac
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run "unit/$(basename "$t")" unit "$t"
done
for t in tests/integration/*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	kind=integration
	case $name in kvm-*) kind=kvm ;; qemu-*) kind=qemu ;; esac
	run "integration/$name" "$kind" bash "$t"
done
for f in "$FUZZ_BUILD"/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus="tests/fuzz/corpus/${name#fuzz_}"
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
	run "fuzz/$name" fuzz "$f" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=1024 -error_exitcode=1 "$work"
	rm -rf "$work"
done

echo
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then kvm_state="usable"; else kvm_state="not usable"; fi
echo "real-KVM tests: $kvm_ran ran, $kvm_skipped skipped (/dev/kvm $kvm_state)"
command -v qemu-system-x86_64 >/dev/null && qemu_state="$(qemu-system-x86_64 --version | head -1)" || qemu_state="no qemu-system-x86_64"
echo "real-QEMU tests: $qemu_ran ran, $qemu_skipped skipped ($qemu_state)"
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && rm -rf "$logdir"
[ "$fail" -eq 0 ]

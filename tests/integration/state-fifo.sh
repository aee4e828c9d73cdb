#!/usr/bin/env bash
# A FIFO (or any file that is not a regular one) where a configuration file,
# a drop-in, a state file or a journal is expected is an error naming the
# path, never a read that blocks: --test-config answers at once, a daemon
# with a FIFO in its state directory starts and restores the VMs beside it
# (the journal FIFO is moved aside, its snapshot still loads), a SIGHUP with
# a FIFO drop-in keeps the running configuration and the daemon answers,
# and `--cat-config` says which file it could not read. /dev/null still
# reads as an empty file (the masking convention). On the old code each of
# these blocked in open() or read() for ever.
source "$(dirname "$0")/../lib/common.sh"
command -v timeout >/dev/null || skip "timeout is missing (coreutils)"
U1=33333333-4444-4555-8666-777777777777
U2=44444444-5555-4666-8777-888888888888

# --- configuration -----------------------------------------------------------
printf '[daemon]\nretention = 5min\n' >"$TMP/main.conf"
mkdir "$TMP/main.conf.d"
mkfifo "$TMP/main.conf.d/10-fifo.conf"
rc=0
timeout 10 "$BUILD/dirtytrackd" --config "$TMP/main.conf" --test-config >"$TMP/test-config.out" 2>&1 || rc=$?
cat "$TMP/test-config.out"
[ $rc -ne 124 ] || fail "--test-config blocked on a FIFO drop-in"
[ $rc -ne 0 ] || fail "--test-config accepted a FIFO drop-in"
grep -q "$TMP/main.conf.d/10-fifo.conf.*not a regular file" "$TMP/test-config.out" || fail "the error does not name the FIFO and say what is wrong"
echo "ok: a FIFO drop-in is refused at once (exit $rc), named"
mkfifo "$TMP/fifo-main.conf"
rc=0
timeout 10 "$BUILD/dirtytrackd" --config "$TMP/fifo-main.conf" --test-config >"$TMP/test-config2.out" 2>&1 || rc=$?
[ $rc -ne 124 ] || fail "--test-config blocked on a FIFO main file"
grep -q "fifo-main.conf.*not a regular file" "$TMP/test-config2.out" || fail "a FIFO main file: $(cat "$TMP/test-config2.out")"
rc=0
timeout 10 "$BUILD/dirtytrackd" --config "$TMP/main.conf" --cat-config >"$TMP/cat.out" 2>&1 || rc=$?
[ $rc -ne 124 ] || fail "--cat-config blocked on a FIFO drop-in"
grep -q "10-fifo.conf: not a regular file" "$TMP/cat.out" || fail "--cat-config: $(cat "$TMP/cat.out")"
ln -s /dev/null "$TMP/main.conf.d/20-masked.conf"
rm "$TMP/main.conf.d/10-fifo.conf"
timeout 10 "$BUILD/dirtytrackd" --config "$TMP/main.conf" --test-config >/dev/null 2>&1 || fail "a drop-in linked to /dev/null is not read as empty"
echo "ok: FIFO main file refused; /dev/null still masks"

# --- state directory ---------------------------------------------------------
start_daemon --epoch 100ms
PYTHONPATH="$(dirname "$0")/../lib" ATTACH_SOCK="$ATTACH_SOCK" python3 - "$U2" <<'PY'
import mmap, os, struct, sys, uuid
from dtpeer import *
p = Peer(os.environ["ATTACH_SOCK"])
p.attach("beside-fifo", mode=2, vcpus=1, uuid=uuid.UUID(sys.argv[1]).bytes)
assert p.request(T["ADD_SLOT"], add_slot(0, 0, 512))[0] == T["ACK"]
fd = memfd(4096)
assert p.request(T["ADD_BITMAP"], add_bitmap(0), [fd])[0] == T["ACK"]
bm = mmap.mmap(fd, 4096)
struct.pack_into("<Q", bm, 0, 0xffff)
p.pump(0.5)
assert p.request(T["DETACH"], struct.pack("<II", 0, 0))[0] == T["ACK"]
PY
wait_until 5 vm_state_is beside-fifo detached || fail "the VM did not detach"
PAGES=$(vm_field beside-fifo .counters.dirtied_pages)
[ "$PAGES" = 16 ] || fail "expected 16 dirtied pages, not $PAGES"
stop_daemon
test -s "$STATE_DIR/$U2.state" || fail "no state file"
mkfifo "$STATE_DIR/$U1.state" "$STATE_DIR/$U2.journal"
# start_daemon fails if the daemon is not up in 5 s
start_daemon --epoch 100ms
wait_until 5 vm_state_is beside-fifo detached || fail "the VM beside the FIFOs was not restored"
check "its figures are whole" test "$(vm_field beside-fifo .counters.dirtied_pages)" = "$PAGES"
grep -q "state: $STATE_DIR/$U1.state not restored: not a regular file" "$TMP/daemon.log" || fail "the FIFO state file is not named in the log"
grep -q "journal $STATE_DIR/$U2.journal not replayed: not a regular file" "$TMP/daemon.log" || fail "the FIFO journal is not named in the log"
check "the FIFO journal is moved aside" test -p "$STATE_DIR/$U2.journal.bad"

# --- reload with a FIFO drop-in ----------------------------------------------
stop_daemon
printf '[daemon]\nretention = 5min\n' >"$TMP/live.conf"
mkdir "$TMP/live.conf.d"
start_daemon --epoch 100ms --config "$TMP/live.conf"
mkfifo "$TMP/live.conf.d/50-fifo.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
timeout 5 curl -sf --unix-socket "$API_SOCK" http://localhost/v1/health >/dev/null || fail "the daemon does not answer after a reload with a FIFO drop-in"
grep -q "reload: .*50-fifo.conf: cannot read: not a regular file; keeping the running configuration" "$TMP/daemon.log" || fail "the reload error is not logged"
echo "ok: a reload with a FIFO drop-in keeps the running configuration, the daemon answers"
daemon_alive || fail "daemon died"

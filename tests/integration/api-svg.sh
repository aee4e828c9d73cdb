#!/usr/bin/env bash
# The SVG pictures render in a real browser: headless Chromium loads the
# heatmap and the working-set plot from the running daemon (loopback TCP),
# takes a screenshot, and the screenshot is not blank (many non-white
# pixels, several colours).
source "$(dirname "$0")/../lib/common.sh"
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || skip "chromium is missing (Debian package chromium; make deps installs it)"
PY=/usr/bin/python3
$PY -c 'import PIL' 2>/dev/null || skip "python3-pil is missing (make deps installs it)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
start_daemon --epoch 200ms --listen-tcp "127.0.0.1:$PORT"
"$BUILD/dtsim" --connect "$ATTACH_SOCK" --name pic --memory 256M --vcpus 2 --pattern hotcold --rate 40000 \
	--wss 30000 --duration 60 >"$TMP/sim.log" 2>&1 &
BG_PIDS+=($!)
wait_until 5 api /v1/vms/pic || fail "pic did not attach"
sleep 2

shot() { # URL PNG
	timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$TMP/chrome-$RANDOM" --hide-scrollbars --window-size=800,700 \
		--screenshot="$2" "$1" >"$TMP/chrome.log" 2>&1 || true
	[ -s "$2" ] || fail "chromium took no screenshot of $1: $(tail -3 "$TMP/chrome.log")"
}
check_png() { # PNG: 0 when not blank
	$PY - "$1" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
px = list(im.getdata())
nonwhite = sum(1 for p in px if sum(p) < 720)
colours = len(set(px))
print(f"{sys.argv[1]}: {im.size[0]}x{im.size[1]}, {nonwhite} non-white pixels, {colours} colours")
sys.exit(0 if nonwhite > 2000 and colours >= 4 else 1)
PY
}
not_blank() { check_png "$1" || fail "$2: the screenshot is blank"; }
for p in heatmap.svg wss.svg "heatmap.svg?window=1s"; do
	png="$TMP/$(echo "$p" | tr -c 'a-z0-9' _).png"
	shot "http://127.0.0.1:$PORT/v1/vms/pic/$p" "$png"
	not_blank "$png" "$p"
	echo "ok: $p renders in Chromium"
done
# A control: a blank page must fail the check (the check can fail).
echo '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>' >"$TMP/blank.svg"
shot "file://$TMP/blank.svg" "$TMP/blank.png"
if check_png "$TMP/blank.png"; then fail "the blank control passed the check"; fi
echo "ok: a blank page fails the same check"

#!/usr/bin/env python3
"""Hostile HTTP clients for dirtytrackd's REST listeners, on raw sockets.

    httpabuse.py ADDR slowloris N SECONDS   N connections that send a request
                                            line, then a header byte now and then
    httpabuse.py ADDR idle N SECONDS        N connections that send nothing
    httpabuse.py ADDR bigheader BYTES       one request with a BYTES-long header
    httpabuse.py ADDR bigurl BYTES          one request with a BYTES-long target
    httpabuse.py ADDR longpolls N PATH      N parked long-polls (PATH?index=..&wait=..),
                                            hung up on after a second
    httpabuse.py ADDR hammer SECONDS PATH.. GETs of the paths in a loop, 4 at a time
ADDR is a Unix socket path or HOST:PORT; "@SRC" after it picks the source
address on TCP (127.0.0.2 is another client of a 127.0.0.1 listener).
Prints what it saw as one JSON line; exit 0 unless the tool itself broke.
"""
import json, os, socket, sys, threading, time


def connect(addr, blocking=True):
    src = None
    if "@" in addr:
        addr, src = addr.split("@", 1)
    if addr.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = addr
    else:
        host, port = addr.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src:
            s.bind((src, 0))
        target = (host, int(port))
    s.settimeout(5 if blocking else 0.0)
    try:
        s.connect(target)
    except (BlockingIOError, InterruptedError):
        pass
    return s


def status_of(s, timeout=5.0):
    """Read a response's status code (0 when the server hangs up or stalls)."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
    except OSError:
        pass
    try:
        return int(buf.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def request(addr, target, extra=b"", timeout=5.0):
    try:
        s = connect(addr)
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: l\r\n" + extra + b"Connection: close\r\n\r\n")
        code = status_of(s, timeout)
        s.close()
        return code
    except OSError:
        return 0


def hold(addr, n, seconds, trickle):
    socks, failed = [], 0
    for _ in range(n):
        try:
            s = connect(addr, blocking=False)
            if trickle:
                try:
                    s.send(b"GET /v1/health HTTP/1.1\r\nHost: l\r\n")
                except OSError:
                    pass
            socks.append(s)
        except OSError:
            failed += 1
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        if trickle:
            for s in socks:
                try:
                    s.send(b"X: y\r\n")
                except OSError:
                    pass
    for s in socks:
        s.close()
    return {"opened": len(socks), "failed": failed}


def longpolls(addr, n, path):
    socks = []
    for _ in range(n):
        try:
            s = connect(addr)
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: l\r\n\r\n")
            socks.append(s)
        except OSError:
            pass
    time.sleep(1)
    for s in socks:
        s.close()
    return {"sent": len(socks)}


def hammer(addr, seconds, paths):
    """Requests back to back from 4 threads for `seconds`: the statuses, and the paths that got
    none (0). Each waits up to 15 s: the answer is checked here, the latency by the probes (a
    loaded host with ASan stalled some responses past 5 s)."""
    counts, unanswered, lock = {}, {}, threading.Lock()
    end = time.monotonic() + seconds

    def worker(i):
        k = i
        while time.monotonic() < end:
            path = paths[k % len(paths)]
            code = request(addr, path.encode(), timeout=15.0)
            k += 1
            with lock:
                counts[str(code)] = counts.get(str(code), 0) + 1
                if code == 0:
                    unanswered[path] = unanswered.get(path, 0) + 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"statuses": counts, "unanswered": unanswered}


def main(argv):
    addr, what = argv[1], argv[2]
    if what in ("slowloris", "idle"):
        out = hold(addr, int(argv[3]), float(argv[4]), what == "slowloris")
    elif what == "bigheader":
        out = {"status": request(addr, b"/v1/health", b"X-Big: " + b"a" * int(argv[3]) + b"\r\n")}
    elif what == "bigurl":
        out = {"status": request(addr, b"/v1/vms/" + b"a" * int(argv[3]))}
    elif what == "longpolls":
        out = longpolls(addr, int(argv[3]), argv[4])
    elif what == "hammer":
        out = hammer(addr, float(argv[3]), argv[4:])
    else:
        sys.exit(f"unknown abuse '{what}'")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv)

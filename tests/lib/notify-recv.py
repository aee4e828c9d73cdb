#!/usr/bin/python3
"""A NOTIFY_SOCKET for tests: bind a datagram socket, write one line per
datagram (newlines inside it shown as '|'), prefixed with CLOCK_MONOTONIC
microseconds. With --probe PATH..., on the first READY=1 it connects to each
Unix socket PATH at once and logs "PROBE path ok|refused": readiness must
mean the sockets already answer."""
import os
import socket
import sys
import time

def probe(path):
    for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.connect(path)
            return "ok"
        except OSError as e:
            err = e.strerror
        finally:
            s.close()
    return "failed (%s)" % err

def main():
    path, out = sys.argv[1], sys.argv[2]
    probes = sys.argv[4:] if len(sys.argv) > 3 and sys.argv[3] == "--probe" else []
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    ready_seen = False
    with open(out, "a", buffering=1) as f:
        f.write("LISTENING\n")
        while True:
            data = s.recv(4096)  # one datagram per recv
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            text = data.decode(errors="replace").strip("\n").replace("\n", "|")
            f.write("%d %s\n" % (now, text))
            if not ready_seen and "READY=1" in text.split("|"):
                ready_seen = True
                for p in probes:
                    f.write("PROBE %s %s\n" % (p, probe(p)))

if __name__ == "__main__":
    main()

"""The daemon's REST API for tests, over its Unix socket (python3 stdlib).

    api = Api(sock)
    api.vm(uuid)                       the VM's summary
    api.last_epoch(vm)                 newest closed epoch number, -1 if none
    api.wait_epochs_after(vm, n, k)    until k epochs closed after epoch n
    api.pages(vm, first, last, lo, hi) union of the epochs' page sets (GFNs in [lo, hi))
"""
import http.client
import json
import socket
import time


class _Conn(http.client.HTTPConnection):
    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class ApiError(Exception):
    pass


class Api:
    def __init__(self, sock):
        self.sock = sock

    def get(self, path, ok=(200,)):
        c = _Conn(self.sock)
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status not in ok:
            raise ApiError(f"GET {path}: {r.status} {body[:200]!r}")
        return json.loads(body) if body else None

    def vm(self, vm):
        return self.get(f"/v1/vms/{vm}")

    def try_vm(self, vm):
        try:
            return self.vm(vm)
        except (ApiError, OSError):
            return None

    def history(self, vm, since=0, limit=100000):
        return self.get(f"/v1/vms/{vm}/history?since={since}&limit={limit}")["epochs"]

    def last_epoch(self, vm):
        h = self.get(f"/v1/vms/{vm}/history?since=0&limit=100000")["epochs"]
        return max((e["epoch"] for e in h), default=-1)

    def wait_epochs_after(self, vm, n, k=2, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            e = self.last_epoch(vm)
            if e >= n + k:
                return e
            time.sleep(0.05)
        raise ApiError(f"VM {vm}: no {k} epochs after {n} in {timeout} s")

    def epoch_pages(self, vm, n):
        r = self.get(f"/v1/vms/{vm}/epochs/{n}/pages", ok=(200, 404))
        if r.get("status") == 404:
            # an epoch that dirtied nothing has no page set: empty, if the history has it
            rec = self.get(f"/v1/vms/{vm}/history?since={n}&limit=1")["epochs"]
            if rec and rec[0]["epoch"] == n and rec[0]["pages"] == 0:
                return {"epoch": n, "pages": 0, "ranges": []}
            raise ApiError(f"VM {vm}: epoch {n} is not held: {r}")
        ranges = r["ranges"]
        while r.get("next"):  # the set comes in pages of at most ?limit= ranges
            r = self.get(r["next"])
            ranges += r["ranges"]
        r["ranges"] = ranges
        return r

    def pages(self, vm, first, last, lo=0, hi=1 << 64):
        """Union of the page sets of epochs first..last (inclusive), GFNs in [lo, hi)."""
        out = set()
        for n in range(first, last + 1):
            for g, cnt in self.epoch_pages(vm, n)["ranges"]:
                for p in range(max(g, lo), min(g + cnt, hi)):
                    out.add(p)
        return out

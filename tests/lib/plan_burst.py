#!/usr/bin/env python3
"""12 concurrent plan requests for VM spread: plan_burst.py API_SOCK MAX_PENDING_PLANS.

Fewer than 12 allowed: at least one is refused (503 naming the limit);
12 or more: none is.
"""
import http.client, json, socket, sys, threading
sock, limit = sys.argv[1], int(sys.argv[2])
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock)
codes, bodies, conns = [], [], []
# Open every connection first, then send all requests at once: the loop
# reads them in one turn, while the planner thread still works on the first.
# 12: under [api] max_connections_per_client (16).
for i in range(12):
    c = C("localhost", timeout=30); c.connect(); conns.append(c)
def one(i):
    c = conns[i]
    c.request("GET", f"/v1/vms/spread/plan?bandwidth={i + 1}Mbit&downtime=1ms&max_rounds=100")
    r = c.getresponse(); b = r.read()
    codes.append(r.status)
    if r.status == 503:
        bodies.append(json.loads(b)["detail"])
ts = [threading.Thread(target=one, args=(i,)) for i in range(12)]
for t in ts: t.start()
for t in ts: t.join()
busy = codes.count(503)
print(f"{codes.count(200)} planned, {busy} refused")
assert set(codes) <= {200, 503}, codes
assert codes.count(200) >= 1, codes
if limit < 12:
    assert busy >= 1, f"no plan was refused at max_pending_plans = {limit}"
else:
    assert busy == 0, f"{busy} plans refused under max_pending_plans = {limit}"
assert all(d.startswith(f"{limit} plans are being computed") for d in bodies), bodies

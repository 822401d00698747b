"""Webhooks benchmark driver: a local receiver, then two measurements.

1. Throughput: with no dispatcher running, queues N test events to E endpoints (spread
   over two tenants), then starts one `tenantry worker` (WORKER_CMD) and times the
   deliveries until the receiver has all of them: deliveries per second.
2. Latency: with that worker running, emits events at RATE per second for SECONDS and
   measures, per message, from its commit (the event's `timestamp`, taken inside the
   transaction, so a little before the commit) to the arrival of its first attempt.

Usage: python3 webhooks.py BASE_URL WORKER_CMD [N E RATE SECONDS]
Prints the figures; exit 1 when a message is missing.
"""

import datetime
import http.client
import http.server
import json
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

base = sys.argv[1]
worker_cmd = sys.argv[2]
total = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
endpoints_n = int(sys.argv[4]) if len(sys.argv) > 4 else 4
rate = float(sys.argv[5]) if len(sys.argv) > 5 else 20
seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 10
url = urllib.parse.urlparse(base)

arrivals = {}  # webhook-id -> (arrival time, body)
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        now = time.time()
        with lock:
            arrivals.setdefault(self.headers["webhook-id"], (now, body))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = f"http://127.0.0.1:{server.server_address[1]}/hook"


def call(conn, method, path, body=None, token=None):
    headers = {}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, payload, headers)
    res = conn.getresponse()
    data = res.read()
    return res.status, (json.loads(data) if data else None)


def tenant():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    slug = "hooks-" + uuid.uuid4().hex[:10]
    status, body = call(conn, "POST", "/api/v1/tenants", {
        "name": slug, "slug": slug,
        "admin": {"email": f"admin@{slug}.example.com", "password": "correct horse battery"},
    })
    assert status == 201, (status, body)
    return body["tokens"]["access_token"]


tokens = [tenant(), tenant()]
endpoints = []  # (token, endpoint id)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
for i in range(endpoints_n):
    token = tokens[i % 2]
    status, body = call(conn, "POST", "/api/v1/webhooks/endpoints",
                        {"url": hook, "event_types": ["webhook.test"]}, token)
    assert status == 201, (status, body)
    endpoints.append((token, body["id"]))


def emit(jobs):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for token, endpoint in jobs:
        status, body = call(c, "POST", f"/api/v1/webhooks/endpoints/{endpoint}/test", None, token)
        assert status == 202, (status, body)


# 1. Throughput: queue everything first, then let one worker drain it.
jobs = [endpoints[i % len(endpoints)] for i in range(total)]
threads = [threading.Thread(target=emit, args=(jobs[k::8],)) for k in range(8)]
started = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
queued_in = time.time() - started
worker = subprocess.Popen(shlex.split(worker_cmd))
try:
    began = time.time()
    deadline = began + 300
    while len(arrivals) < total and time.time() < deadline:
        time.sleep(0.01)
    with lock:
        got = len(arrivals)
        last = max(a for a, _ in arrivals.values()) if arrivals else began
        first = min(a for a, _ in arrivals.values()) if arrivals else began
    print(f"queued {total} test events to {endpoints_n} endpoints of 2 tenants in {queued_in:.1f} s "
          f"({total / queued_in:.0f} commits/s)")
    print(f"throughput: {got}/{total} delivered in {last - began:.2f} s after the worker started "
          f"(first after {first - began:.2f} s: process start); "
          f"{got / max(last - first, 1e-9):.0f} deliveries/s once running")
    if got < total:
        sys.exit(1)

    # 2. Latency from commit to the first attempt, at a steady rate.
    with lock:
        arrivals.clear()
    sent = 0
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    t0 = time.time()
    ids = []
    while time.time() - t0 < seconds:
        token, endpoint = endpoints[sent % len(endpoints)]
        status, body = call(c, "POST", f"/api/v1/webhooks/endpoints/{endpoint}/test", None, token)
        assert status == 202, (status, body)
        ids.append(body["message_id"])
        sent += 1
        next_at = t0 + sent / rate
        time.sleep(max(0, next_at - time.time()))
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if all(i in arrivals for i in ids):
                break
        time.sleep(0.05)
    lat = []
    with lock:
        for i in ids:
            if i not in arrivals:
                continue
            at, body = arrivals[i]
            ts = json.loads(body)["timestamp"]
            committed = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
            lat.append(at - committed)
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
    print(f"latency: {len(lat)}/{len(ids)} messages at {rate:.0f}/s for {seconds:.0f} s; commit to "
          f"first attempt p50 {pct(0.50):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1] * 1000:.1f} ms")
    if len(lat) < len(ids):
        sys.exit(1)
finally:
    worker.terminate()
    worker.wait(timeout=30)

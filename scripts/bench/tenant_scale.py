"""Onboards N tenants through the API from several clients, each with one resource.

Usage: python3 tenant_scale.py BASE_URL N CLIENTS OUT_FILE
Writes "<access token> <resource id>" per tenant to OUT_FILE and prints the onboarding
rate overall and per block of 500 tenants (to show whether it slows as schemas grow).
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

base, count, clients, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
url = urllib.parse.urlparse(base)
run = uuid.uuid4().hex[:6]
lock = threading.Lock()
todo = iter(range(count))
done_at = []
lines = []
latencies = []


def call(conn, method, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, json.dumps(body), headers)
    res = conn.getresponse()
    data = res.read()
    return res.status, json.loads(data) if data else None


def client():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    while True:
        with lock:
            i = next(todo, None)
        if i is None:
            return
        slug = f"t{run}-{i}"
        started = time.perf_counter()
        status, body = call(conn, "POST", "/api/v1/tenants", {
            "name": f"Tenant {i}", "slug": slug,
            "admin": {"email": f"admin@{slug}.example.com", "password": "tenant scale pw 1"}})
        elapsed = time.perf_counter() - started
        if status != 201:
            sys.exit(f"onboarding failed: {status} {body}")
        token = body["tokens"]["access_token"]
        status, resource = call(conn, "POST", "/api/v1/resources", {"name": "r"}, token)
        if status != 201:
            sys.exit(f"resource failed: {status} {resource}")
        status, key = call(conn, "POST", "/api/v1/api-keys", {"name": "bench", "role": "viewer"}, token)
        if status != 201:
            sys.exit(f"API key failed: {status} {key}")
        with lock:
            latencies.append(elapsed * 1000)
            done_at.append(time.perf_counter())
            lines.append(f"{token} {resource['id']} {key['key']}\n")


started = time.perf_counter()
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
total = time.perf_counter() - started
with open(out, "w") as f:
    f.writelines(lines)
latencies.sort()
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"onboarding: {count} tenants in {total:.0f} s = {count / total:.1f}/s "
      f"({clients} clients; p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms)")
blocks, previous = [], started
for end in range(500, count + 1, 500):
    at = done_at[end - 1]
    blocks.append(f"{end - 500}-{end}: {500 / (at - previous):.1f}/s")
    previous = at
if blocks:
    print("  by block: " + ", ".join(blocks))

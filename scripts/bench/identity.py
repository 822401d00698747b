"""Identity benchmark client: onboarding latency, then credentials for wrk.

Usage: python3 identity.py BASE_URL N OUT_DIR
Onboards N tenants one after another (keep-alive connection), prints p50/p99/max, then
writes a JWT, an API key and a login body for the wrk runs into OUT_DIR.
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse
import uuid

base, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)


def call(method, path, body=None, headers=None):
    headers = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, payload, headers)
    res = conn.getresponse()
    data = res.read()
    return res.status, (json.loads(data) if data else None)


password = "benchmark password 1"
latencies = []
first = None
run = uuid.uuid4().hex[:8]
for i in range(count):
    slug = f"b{run}-{i}"
    body = {"name": f"Bench {i}", "slug": slug,
            "admin": {"email": f"admin@{slug}.example.com", "password": password}}
    started = time.perf_counter()
    status, answer = call("POST", "/api/v1/tenants", body)
    latencies.append((time.perf_counter() - started) * 1000)
    if status != 201:
        sys.exit(f"onboarding failed: {status} {answer}")
    first = first or (slug, answer)

latencies.sort()
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"onboarding: n={count} p50={p(0.50):.1f} ms p90={p(0.90):.1f} ms "
      f"p99={p(0.99):.1f} ms max={latencies[-1]:.1f} ms mean={statistics.mean(latencies):.1f} ms")

slug, answer = first
token = answer["tokens"]["access_token"]
status, key = call("POST", "/api/v1/api-keys", {"name": "bench", "role": "admin"},
                   {"Authorization": f"Bearer {token}"})
if status != 201:
    sys.exit(f"api key failed: {status} {key}")
with open(f"{out}/jwt", "w") as f:
    f.write(token)
with open(f"{out}/api_key", "w") as f:
    f.write(key["key"])
with open(f"{out}/login.json", "w") as f:
    json.dump({"tenant": slug, "email": f"admin@{slug}.example.com", "password": password}, f)

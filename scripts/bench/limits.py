"""Setup for scripts/bench-limits.sh: a tenant whose own limit will not throttle the run.

Usage: python3 limits.py BASE_URL OUT_DIR
Onboards a tenant, raises its rate limit as the platform operator (so the benchmark
measures the cost of checking limits, not refusals), creates an API key and a resource,
and writes the key and the resource's path into OUT_DIR.
"""

import http.client
import json
import sys
import urllib.parse
import uuid

base, out = sys.argv[1], sys.argv[2]
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
    if res.status >= 300:
        sys.exit(f"{method} {path}: {res.status} {data[:300]!r}")
    return json.loads(data) if data else None


slug = f"lim{uuid.uuid4().hex[:8]}"
password = "benchmark password 1"
onboarded = call("POST", "/api/v1/tenants", {
    "name": "Bench", "slug": slug,
    "admin": {"email": f"admin@{slug}.example.com", "password": password}})
tenant = onboarded["tenant"]["id"]
token = onboarded["tokens"]["access_token"]
ops = call("POST", "/api/v1/admin/login",
           {"email": "ops@bench.example.com", "password": password})["access_token"]
call("PUT", f"/api/v1/tenants/{tenant}/rate-limit",
     {"requests_per_minute": 10_000_000, "burst": 1_000_000},
     {"Authorization": f"Bearer {ops}"})
key = call("POST", "/api/v1/api-keys", {"name": "bench", "role": "admin"},
           {"Authorization": f"Bearer {token}"})["key"]
resource = call("POST", "/api/v1/resources", {"name": "Widget", "data": {"colour": "red"}},
                {"X-API-Key": key})["id"]
with open(f"{out}/api_key", "w") as f:
    f.write(key)
with open(f"{out}/path", "w") as f:
    f.write(f"/api/v1/resources/{resource}")
with open(f"{out}/tenant", "w") as f:
    f.write(tenant)

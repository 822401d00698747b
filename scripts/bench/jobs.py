"""Jobs benchmark setup: onboards a tenant, creates an admin API key and prints
"<tenant id> <key>" (wrk then submits the jobs; the shell script measures in SQL).
With N > 0 it also submits N echo jobs itself over THREADS keep-alive connections.

Usage: python3 jobs.py BASE_URL [N THREADS]
"""

import http.client
import json
import sys
import threading
import urllib.parse
import uuid

base = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 0
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
url = urllib.parse.urlparse(base)


def call(conn, method, path, body=None, headers=None):
    headers = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, path, payload, headers)
    res = conn.getresponse()
    data = res.read()
    return res.status, (json.loads(data) if data else None)


conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
slug = "bench-" + uuid.uuid4().hex[:10]
status, body = call(conn, "POST", "/api/v1/tenants", {
    "name": slug, "slug": slug,
    "admin": {"email": f"admin@{slug}.example.com", "password": "correct horse battery"},
})
assert status == 201, (status, body)
tenant_id = body["tenant"]["id"]
# An API key: no token expiry during a long run, and the cheaper authentication.
status, key = call(conn, "POST", "/api/v1/api-keys", {"name": "bench", "role": "admin"},
                   {"Authorization": "Bearer " + body["tokens"]["access_token"]})
assert status == 201, (status, key)
headers = {"X-API-Key": key["key"]}
print(tenant_id, key["key"], flush=True)


def submit(n):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for i in range(n):
        status, res = call(c, "POST", "/api/v1/jobs", {"type": "echo", "payload": {"i": i}}, headers)
        assert status == 202, (status, res)


per = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
workers = [threading.Thread(target=submit, args=(n,)) for n in per]
for w in workers:
    w.start()
for w in workers:
    w.join()

"""Job fairness benchmark driver (see scripts/bench-jobs-fairness.sh).

  python3 fairness.py setup BASE_URL N        onboards N noisy tenants and one quiet
                                              tenant; prints "<role> <tenant id> <key>"
  python3 fairness.py load BASE_URL FILE SECONDS BACKLOG DELAY_MS
                                              the noisy tenants keep BACKLOG echo jobs of
                                              DELAY_MS queued each, the quiet tenant
                                              submits one echo job a second; prints the
                                              quiet jobs' ids, one a line

The figures are read from the database by the shell script.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid


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


def connect(base):
    url = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=30)


def onboard(base, role):
    conn = connect(base)
    slug = f"{role}-{uuid.uuid4().hex[:10]}"
    status, body = call(conn, "POST", "/api/v1/tenants", {
        "name": slug, "slug": slug,
        "admin": {"email": f"admin@{slug}.example.com", "password": "correct horse battery"},
    })
    assert status == 201, (status, body)
    status, key = call(conn, "POST", "/api/v1/api-keys", {"name": "bench", "role": "admin"},
                       {"Authorization": "Bearer " + body["tokens"]["access_token"]})
    assert status == 201, (status, key)
    return body["tenant"]["id"], key["key"]


def setup(base, noisy):
    for _ in range(noisy):
        print("noisy", *onboard(base, "noisy"), flush=True)
    print("quiet", *onboard(base, "quiet"), flush=True)


def queued(conn, key):
    status, body = call(conn, "GET", "/api/v1/jobs?status=queued&limit=100", None, {"X-API-Key": key})
    assert status == 200, (status, body)
    return len(body["items"])


def load(base, file, seconds, backlog, delay_ms):
    tenants = [line.split() for line in open(file) if line.strip()]
    noisy = [key for role, _, key in tenants if role == "noisy"]
    quiet = next(key for role, _, key in tenants if role == "quiet")
    end = time.monotonic() + seconds
    job = {"type": "echo", "payload": {"delay_ms": delay_ms}}

    def flood(key):
        conn = connect(base)
        while time.monotonic() < end:
            # Keep at least BACKLOG queued (the list shows 100 at most: top up past it).
            missing = backlog - queued(conn, key)
            for _ in range(max(missing, 0)):
                status, res = call(conn, "POST", "/api/v1/jobs", job, {"X-API-Key": key})
                assert status == 202, (status, res)
            time.sleep(0.2)

    threads = [threading.Thread(target=flood, args=(key,)) for key in noisy]
    for t in threads:
        t.start()
    time.sleep(2)  # the flood fills the workers first
    conn = connect(base)
    while time.monotonic() < end:
        started = time.monotonic()
        status, res = call(conn, "POST", "/api/v1/jobs", {"type": "echo"}, {"X-API-Key": quiet})
        assert status == 202, (status, res)
        print(res["id"], flush=True)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    for t in threads:
        t.join()


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2], int(sys.argv[3]))
    else:
        load(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))

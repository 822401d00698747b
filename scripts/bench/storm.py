"""Onboarding and login storms against a running server, sampling its memory.

Usage: python3 storm.py BASE_URL SERVER_PID ONBOARDINGS LOGINS CLIENTS
Onboards ONBOARDINGS tenants from CLIENTS threads, then logs in LOGINS times from CLIENTS
threads (alternating right and wrong passwords), while a sampler reads the server's RSS
from /proc. Prints the rates and the peak and final RSS.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

base, pid = sys.argv[1], int(sys.argv[2])
onboardings, logins, clients = (int(a) for a in sys.argv[3:6])
url = urllib.parse.urlparse(base)
password = "benchmark password 1"
run = uuid.uuid4().hex[:8]


def rss_kib():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


peak = [0]
sampling = [True]


def sample():
    while sampling[0]:
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.05)


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    res = conn.getresponse()
    res.read()
    return res.status


def storm(name, count, make):
    todo = iter(range(count))
    lock = threading.Lock()
    failures = [0]

    def client():
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            path, body, expected = make(i)
            if post(conn, path, body) not in expected:
                failures[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    print(f"{name}: {count} in {elapsed:.1f} s = {count / elapsed:.1f}/s, "
          f"{failures[0]} unexpected answers, peak RSS so far {peak[0] / 1024:.0f} MiB")


def onboard(i):
    slug = f"s{run}-{i}"
    return "/api/v1/tenants", {
        "name": f"Storm {i}", "slug": slug,
        "admin": {"email": f"admin@{slug}.example.com", "password": password}}, (201,)


def login(i):
    slug = f"s{run}-{i % onboardings}"
    # Right and wrong passwords alike cost one argon2 verification.
    given = password if i % 2 == 0 else "wrong password 1"
    return "/api/v1/auth/login", {
        "tenant": slug, "email": f"admin@{slug}.example.com", "password": given}, (200, 401)


threading.Thread(target=sample, daemon=True).start()
print(f"server RSS at start: {rss_kib() / 1024:.0f} MiB")
storm("onboarding storm", onboardings, onboard)
storm("login storm", logins, login)
sampling[0] = False
print(f"peak RSS {peak[0] / 1024:.0f} MiB, final {rss_kib() / 1024:.0f} MiB")

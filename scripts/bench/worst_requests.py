"""The worst request allowed of each kind, against a running server, measured there.

Usage: python3 worst_requests.py BASE_URL SERVER_PID DATABASE_URL REPEAT
For each kind: sets the data up, sends the request once to warm up, then REPEAT times,
reading the server's /proc/<pid>/stat (utime + stime) around the repeats for the CPU per
request, and for memory resets the peak (`5 > /proc/<pid>/clear_refs`) and reads VmHWM
minus the VmRSS before each request (the server runs with MIMALLOC_PURGE_DELAY=0, so
freed memory returns to the OS between requests and a repeat cannot hide in it).
Prints one Markdown row per kind: route, worst input, status, CPU ms, peak MiB.
"""

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

base, pid, database_url, repeat = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
url = urllib.parse.urlparse(base)
tick = os.sysconf("SC_CLK_TCK")


def call(method, path, body=None, headers=None, raw=None, content_type="application/json"):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    headers = dict(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if data is not None:
        headers["Content-Type"] = content_type
    conn.request(method, path, data, headers)
    res = conn.getresponse()
    answer = res.read()
    conn.close()
    try:
        return res.status, json.loads(answer) if answer else None
    except ValueError:
        return res.status, answer[:200]


def expect(status, answer, wanted, what):
    if status != wanted:
        sys.exit(f"{what} failed: {status} {str(answer)[:300]}")
    return answer


def psql(sql):
    subprocess.run(["psql", database_url, "-qc", sql], check=True, stdout=subprocess.DEVNULL)


def cpu_ticks():
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_kib(field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(route, worst, send, wanted):
    status, answer = send()
    if status != wanted:
        sys.exit(f"{route}: expected {wanted}, got {status} {str(answer)[:300]}")
    peak = 0
    for _ in range(repeat):
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        before = status_kib("VmRSS")
        send()
        peak = max(peak, status_kib("VmHWM") - before)
    started = cpu_ticks()
    for _ in range(repeat):
        send()
    cpu_ms = (cpu_ticks() - started) * 1000 / tick / repeat
    print(f"| {route} | {worst} | {wanted} | {cpu_ms:.1f} | {peak / 1024:.1f} |", flush=True)


slug = f"worst-{uuid.uuid4().hex[:8]}"
onboarded = expect(*call("POST", "/api/v1/tenants", {
    "name": "Worst requests", "slug": slug,
    "admin": {"email": f"admin@{slug}.example.com", "password": "benchmark password 1"},
}), 201, "onboarding")
auth = {"Authorization": "Bearer " + onboarded["tokens"]["access_token"]}
tenant = onboarded["tenant"]["id"]
schema = "t_" + tenant.replace("-", "")
# Premium: the largest plan's bounds (and a send quota that the repeats do not use up).
psql(f"update platform.tenants set plan = 'premium' where id = '{tenant}'")

print("| route | worst input allowed | status | CPU ms | peak MiB |")
print("|---|---|---|---|---|")

# Notifications: the largest template (100 placeholders) with values at the limit.
expect(*call("POST", "/api/v1/notifications/templates", {
    "name": "hundred", "channel": "email", "subject": "Hello", "body": "{{a}}" * 100}, auth),
    201, "a template")
psql(f"insert into {schema}.notification_templates (id, name, channel, subject, body) "
     f"values (gen_random_uuid(), 'legacy', 'email', '{'{{a}}' * 40}', '{'{{a}}' * 13000}')")
big = "x" * (16 * 1024)
measure("POST /notifications/email (template)",
        "100 placeholders × a 16 KiB value (1.6 MB filled): refused before rendering",
        lambda: call("POST", "/api/v1/notifications/email", {
            "to": "eve@example.com", "template": "hundred", "variables": {"a": big}}, auth), 422)
measure("POST /notifications/email (template)",
        "a template stored before the limit, 13,000 placeholders × 16 KiB (213 MB filled)",
        lambda: call("POST", "/api/v1/notifications/email", {
            "to": "eve@example.com", "template": "legacy", "variables": {"a": big}}, auth), 422)
fits = "x" * (256 * 1024 // 100 - 1)
measure("POST /notifications/email (template)",
        "100 placeholders filled to 256 KiB, accepted and queued",
        lambda: call("POST", "/api/v1/notifications/email", {
            "to": "eve@example.com", "template": "hundred", "variables": {"a": fits}}, auth), 202)
measure("POST /notifications/templates",
        "a 64 KiB body of 13,000 placeholders",
        lambda: call("POST", "/api/v1/notifications/templates", {
            "name": "bomb", "channel": "email", "body": "{{a}}" * 13000}, auth), 422)

# Autoscaling simulation: 10,000 samples, each a decision with its reason.
samples = [{"t": i * 0.5, "rps": 1e6 - i * 50.0} for i in range(10000)]
measure("POST /scaling/simulate", "10,000 samples, falling load (the stabilization window full)",
        lambda: call("POST", "/api/v1/scaling/simulate",
                     {"current_capacity": 50, "samples": samples}, auth), 200)

# Usage: the most points one answer may have, every minute metered.
psql(f"insert into platform.usage_rollups (tenant_id, metric, bucket_start, value) "
     f"select '{tenant}', m, '2026-03-01'::timestamptz + n * interval '1 minute', n "
     f"from generate_series(0, 10079) n, unnest(array['api_requests', 'bytes_out']) m")
week = "from=2026-03-01T00:00:00Z&to=2026-03-08T00:00:00Z&granularity=minute"
measure("GET /usage", "a week of minutes × 2 metrics = 20,160 points, all present",
        lambda: call("GET", f"/api/v1/usage?{week}&metric=api_requests,bytes_out",
                     headers=auth), 200)
measure("GET /usage", "a week of minutes × every metric (90,720 points): refused",
        lambda: call("GET", f"/api/v1/usage?{week}", headers=auth), 422)

# Lists: the largest page of the largest rows.
data = {"a": [0] * 32000}  # 64 KiB of the smallest values: the most parsed per byte
for i in range(100):
    expect(*call("POST", "/api/v1/resources", {"name": f"r{i}", "data": data}, auth),
           201, "a resource")
measure("GET /resources", "limit=100 of 64 KiB `data` each (32,000 values apiece): the page stops at 1 MiB, `data` passed through as text",
        lambda: call("GET", "/api/v1/resources?limit=100", headers=auth), 200)
payload = {"p": "x" * (16 * 1024 - 100)}
for i in range(100):
    expect(*call("POST", "/api/v1/jobs", {"type": "echo", "payload": payload}, auth),
           202, "a job")
measure("GET /jobs", "limit=100, status filter, of 16 KiB payloads each",
        lambda: call("GET", "/api/v1/jobs?limit=100&status=queued", headers=auth), 200)

# JSON bodies: the most values a body may hold, and one more.
many = {f"k{i}": 0 for i in range(32000)}
measure("POST /resources (JSON body)", "32,000 values in one object (parsed, then 422: data over 64 KiB)",
        lambda: call("POST", "/api/v1/resources", {"name": "n", "data": many}, auth), 422)
flat = "[" + ",".join(["0"] * 400000) + "]"
measure("POST /resources (JSON body)", "800 KB of `[0,0,…]` (400,000 values): refused on the bytes",
        lambda: call("POST", "/api/v1/resources", headers=auth,
                     raw='{"name":"n","data":{"a":' + flat + "}}"), 422)

# Multipart upload: the free plan's largest file streams through; premium's is 100 × it.
psql(f"update platform.tenants set plan = 'free' where id = '{tenant}'")
boundary = "worst-boundary"
contents = os.urandom(10 * 1024 * 1024)
form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n").encode() + contents + \
       f"\r\n--{boundary}--\r\n".encode()
measure("POST /files (multipart)", "10 MiB (the free plan's largest file), streamed to fs",
        lambda: call("POST", "/api/v1/files", headers=auth, raw=form,
                     content_type=f"multipart/form-data; boundary={boundary}"), 201)

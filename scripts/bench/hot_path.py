"""Hot-path benchmark set-up: one tenant, one resource, a JWT and an API key for wrk.

Usage: python3 hot_path.py BASE_URL OUT_DIR [ADMIN_EMAIL ADMIN_PASSWORD]
Onboards a tenant, creates a resource and an API key (role admin), and writes `jwt`,
`api_key`, `tenant_id`, `resource_id` and `login.json` (the admin's login body) into OUT_DIR. With operator credentials it also
lifts the tenant's rate limit (PUT /api/v1/tenants/{id}/rate-limit) so the benchmark
measures the cost of the limiter's check rather than its 429s; a server without that
route yet is fine.
"""

import http.client
import json
import sys
import urllib.parse
import uuid

base, out = sys.argv[1], sys.argv[2]
admin = sys.argv[3:5]
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
    try:
        return res.status, (json.loads(data) if data else None)
    except ValueError:
        return res.status, data.decode(errors="replace")


def expect(status, answer, wanted, what):
    if status != wanted:
        sys.exit(f"{what} failed: {status} {answer}")
    return answer


slug = f"hot-{uuid.uuid4().hex[:8]}"
onboarded = expect(*call("POST", "/api/v1/tenants", {
    "name": "Hot path", "slug": slug,
    "admin": {"email": f"admin@{slug}.example.com", "password": "benchmark password 1"},
}), 201, "onboarding")
token = onboarded["tokens"]["access_token"]
tenant_id = onboarded["tenant"]["id"]
auth = {"Authorization": f"Bearer {token}"}
resource = expect(*call("POST", "/api/v1/resources",
                        {"name": "bench", "data": {"colour": "blue", "size": 3}}, auth),
                  201, "creating the resource")
key = expect(*call("POST", "/api/v1/api-keys", {"name": "bench", "role": "admin"}, auth),
             201, "creating the API key")

if len(admin) == 2:
    status, login = call("POST", "/api/v1/admin/login",
                         {"email": admin[0], "password": admin[1]})
    if status == 200:
        status, answer = call("PUT", f"/api/v1/tenants/{tenant_id}/rate-limit",
                              {"requests_per_minute": 10_000_000, "burst": 10_000_000},
                              {"Authorization": f"Bearer {login['access_token']}"})
        if status in (404, 405):
            print("rate-limit override: no such route on this server (no limiter yet)")
        elif status >= 300:
            print(f"rate-limit override refused: {status} {answer}")
        else:
            print("rate-limit override: tenant limit lifted for the benchmark")
    else:
        print(f"operator login failed ({status}); tenant limit left at its plan's")

login = json.dumps({"tenant": slug, "email": f"admin@{slug}.example.com",
                    "password": "benchmark password 1"})
for name, value in [("jwt", token), ("api_key", key["key"]), ("tenant_id", tenant_id),
                    ("resource_id", resource["id"]), ("login.json", login)]:
    with open(f"{out}/{name}", "w") as f:
        f.write(value)

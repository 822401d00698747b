-- wrk script: POST the login body in BENCH_LOGIN_FILE.
local f = io.open(os.getenv("BENCH_LOGIN_FILE"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

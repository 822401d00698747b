-- wrk script: BENCH_METHOD (GET) with the header BENCH_HEADER ("Name: value", optional)
-- and the JSON body BENCH_BODY (optional).
local header, body = os.getenv("BENCH_HEADER"), os.getenv("BENCH_BODY")
wrk.method = os.getenv("BENCH_METHOD") or "GET"
if header and header ~= "" then
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

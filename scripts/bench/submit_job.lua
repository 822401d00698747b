-- wrk script: POST /api/v1/jobs (an echo job) with one header, BENCH_HEADER="Name: value".
local name, value = os.getenv("BENCH_HEADER"):match("^([^:]+):%s*(.*)$")
wrk.method = "POST"
wrk.headers[name] = value
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type": "echo", "payload": {"bench": true}}'

function response(status, headers, body)
  if status ~= 202 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end

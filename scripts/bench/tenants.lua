-- wrk script: GET /api/v1/resources/{id}, each request as a random one of the first
-- BENCH_LIMIT tenants of BENCH_CREDS (lines "<access token> <resource id> [<API key>]"),
-- with the tenant's access token, or with its API key when BENCH_AUTH is "key".
local creds, limit = {}, tonumber(os.getenv("BENCH_LIMIT"))
local by_key = os.getenv("BENCH_AUTH") == "key"
for line in io.lines(os.getenv("BENCH_CREDS")) do
  if #creds >= limit then break end
  local token, id, key = line:match("^(%S+) (%S+) ?(%S*)$")
  if by_key then
    assert(key ~= "", "BENCH_CREDS has no API keys: onboard again")
    creds[#creds + 1] = { "X-API-Key", key, "/api/v1/resources/" .. id }
  else
    creds[#creds + 1] = { "Authorization", "Bearer " .. token, "/api/v1/resources/" .. id }
  end
end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000)

request = function()
  local c = creds[math.random(#creds)]
  return wrk.format("GET", c[3], { [c[1]] = c[2] })
end

-- wrk script: GET /api/v1/resources/{id}, each request as a random one of the first
-- BENCH_LIMIT tenants of BENCH_CREDS (lines "<access token> <resource id>").
local creds, limit = {}, tonumber(os.getenv("BENCH_LIMIT"))
for line in io.lines(os.getenv("BENCH_CREDS")) do
  if #creds >= limit then break end
  local token, id = line:match("^(%S+) (%S+)$")
  creds[#creds + 1] = { "Bearer " .. token, "/api/v1/resources/" .. id }
end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000)

request = function()
  local c = creds[math.random(#creds)]
  return wrk.format("GET", c[2], { ["Authorization"] = c[1] })
end

-- GCRA (generic cell rate algorithm) over several buckets at once.
--
-- KEYS[i]: the bucket's key; its value is the theoretical arrival time (TAT) in
-- microseconds of Redis server time, so replicas with skewed clocks agree.
-- ARGV[1]: requests given back first (an amortized slice that expired unused; they
-- were charged to these same buckets). Then three numbers per key: emission interval
-- (µs), burst (requests), and the number of requests wanted (`want`, at least 1).
--
-- Grants g = min(want, what every bucket can still admit) requests and charges g to
-- every bucket; when a bucket admits none, nothing is charged anywhere, so a request
-- that one limit refuses costs the others nothing.
--
-- Returns {granted, then per key: remaining, reset_us, retry_us}: requests left after
-- this answer, time until the bucket is full again, and (when refused) time until one
-- more request fits.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats = {}
local give_back = tonumber(ARGV[1])
local granted = math.huge
for i = 1, n do
  local interval = tonumber(ARGV[i * 3 - 1])
  local burst = tonumber(ARGV[i * 3])
  local want = tonumber(ARGV[i * 3 + 1])
  local tat = (tonumber(redis.call('GET', KEYS[i])) or now) - give_back * interval
  if tat < now then tat = now end
  tats[i] = tat
  local room = math.floor((now + burst * interval - tat) / interval)
  if room < 0 then room = 0 end
  if room < granted then granted = room end
  if want < granted then granted = want end
end
local result = {granted}
for i = 1, n do
  local interval = tonumber(ARGV[i * 3 - 1])
  local burst = tonumber(ARGV[i * 3])
  local tat = tats[i] + granted * interval
  if granted > 0 then
    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX',
      math.floor((tat - now) / 1000) + 1)
  end
  local remaining = math.floor((now + burst * interval - tat) / interval)
  if remaining < 0 then remaining = 0 end
  local retry = 0
  if granted == 0 then
    retry = tat + interval - burst * interval - now
    if retry < 0 then retry = 0 end
  end
  result[#result + 1] = remaining
  result[#result + 1] = tat - now
  result[#result + 1] = retry
end
return result

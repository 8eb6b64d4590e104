-- tollgate-limit: hold an estimate in every budget, atomically, unless one is used up.
--
-- KEYS     2 per budget: its counter (a hash with fields `spent` and `held`), then
--          its holds (a ZSET of `hold id:amount` scored by the hold's deadline).
-- ARGV     estimate, n, now_ms, hold id, deadline_ms, then 2 values per budget:
--          hard limit (-1: none), expires_at_ms.
-- Returns {refused_by (0: admitted, else the 1-based budget), spent1, held1, spent2, ...}.
-- Holds past their deadline (never settled: a replica died, a settle timed out) are
-- given back first.
local estimate = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local member = ARGV[4] .. ':' .. ARGV[1]
local deadline = tonumber(ARGV[5])
local out = {0}
local refused = 0

for i = 1, n do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local lost = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, m in ipairs(lost) do
    local amount = tonumber(string.match(m, ':(%d+)$')) or 0
    local h = redis.call('HINCRBY', counter, 'held', -amount)
    if h < 0 then
      redis.call('HINCRBY', counter, 'held', -h)
    end
  end
  if #lost > 0 then
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  end
  local limit = tonumber(ARGV[5 + (i - 1) * 2 + 1])
  local v = redis.call('HMGET', counter, 'spent', 'held')
  local spent = tonumber(v[1] or '0') or 0
  local held = tonumber(v[2] or '0') or 0
  if refused == 0 and limit >= 0 and spent + held >= limit then
    refused = i
  end
  out[#out + 1] = spent
  out[#out + 1] = held
end

if refused ~= 0 then
  out[1] = refused
  return out
end

for i = 1, n do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  local expires = tonumber(ARGV[5 + (i - 1) * 2 + 2])
  out[2 + (i - 1) * 2 + 1] = redis.call('HINCRBY', counter, 'held', estimate)
  redis.call('ZADD', holds, deadline, member)
  redis.call('PEXPIREAT', counter, expires)
  redis.call('PEXPIREAT', holds, expires)
end
return out

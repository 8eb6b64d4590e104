-- tollgate-limit: hold an estimate in every budget, atomically, unless one is used up.
--
-- KEYS[i]  a budget counter: a hash with fields `spent` and `held`.
-- ARGV     estimate, n, then 2 values per key: hard limit (-1: none), expires_at_ms.
-- Returns {refused_by (0: admitted, else the 1-based key), spent1, held1, spent2, ...}.
local estimate = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local out = {0}
local refused = 0

for i = 1, n do
  local limit = tonumber(ARGV[2 + (i - 1) * 2 + 1])
  local v = redis.call('HMGET', KEYS[i], 'spent', 'held')
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
  local expires = tonumber(ARGV[2 + (i - 1) * 2 + 2])
  out[2 + (i - 1) * 2 + 1] = redis.call('HINCRBY', KEYS[i], 'held', estimate)
  redis.call('PEXPIREAT', KEYS[i], expires)
end
return out

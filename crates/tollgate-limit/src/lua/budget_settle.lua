-- tollgate-limit: release a budget hold and add the real cost, atomically.
--
-- KEYS[i]  a budget counter (see budget_reserve.lua).
-- ARGV     held, actual, then expires_at_ms per key. `held` never goes below zero.
local held = tonumber(ARGV[1])
local actual = tonumber(ARGV[2])

for i = 1, #KEYS do
  local h = redis.call('HINCRBY', KEYS[i], 'held', -held)
  if h < 0 then
    redis.call('HINCRBY', KEYS[i], 'held', -h)
  end
  if actual > 0 then
    redis.call('HINCRBY', KEYS[i], 'spent', actual)
  end
  redis.call('PEXPIREAT', KEYS[i], tonumber(ARGV[2 + i]))
end
return #KEYS

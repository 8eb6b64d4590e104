-- tollgate-limit: release a budget hold and add the real cost, atomically.
--
-- KEYS     2 per budget: its counter and its holds (see budget_reserve.lua).
-- ARGV     hold id, held, actual, then expires_at_ms per budget. The hold is given
--          back only if it is still listed (its deadline may have released it), and
--          `held` never goes below zero.
local member = ARGV[1] .. ':' .. ARGV[2]
local held = tonumber(ARGV[2])
local actual = tonumber(ARGV[3])

for i = 1, #KEYS / 2 do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', holds, member) == 1 then
    local h = redis.call('HINCRBY', counter, 'held', -held)
    if h < 0 then
      redis.call('HINCRBY', counter, 'held', -h)
    end
  end
  if actual > 0 then
    redis.call('HINCRBY', counter, 'spent', actual)
  end
  redis.call('PEXPIREAT', counter, tonumber(ARGV[3 + i]))
end
return #KEYS / 2

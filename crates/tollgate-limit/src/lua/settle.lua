-- tollgate-limit: correct a reservation by the real usage, atomically.
--
-- KEYS[i]  the counter the reservation charged in window i (see reserve.lua).
-- ARGV     now_ms, delta (actual - reserved, may be negative), n, then 4 values per
--          window: kind ('f' or 's'), size_ms, bucket, width_ms.
-- A bucket that has left its window is not touched (its usage left the window anyway).
-- Counters never go below zero. Returns the number of windows corrected.
local now = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local corrected = 0

for i = 1, n do
  local a = 3 + (i - 1) * 4
  local kind = ARGV[a + 1]
  local size = tonumber(ARGV[a + 2])
  local bucket = ARGV[a + 3]
  local width = tonumber(ARGV[a + 4])
  local start = tonumber(bucket)
  if kind == 's' then
    start = start * width
  end
  if start + size > now then
    local k = KEYS[i]
    if kind == 'f' then
      if delta > 0 or redis.call('EXISTS', k) == 1 then
        local v = redis.call('INCRBY', k, delta)
        if v < 0 then
          redis.call('INCRBY', k, -v)
        end
        corrected = corrected + 1
      end
    else
      if delta > 0 or redis.call('HEXISTS', k, bucket) == 1 then
        local v = redis.call('HINCRBY', k, bucket, delta)
        if v < 0 then
          redis.call('HINCRBY', k, bucket, -v)
        end
        corrected = corrected + 1
      end
    end
    if redis.call('PTTL', k) < 0 then
      redis.call('PEXPIRE', k, size + width)
    end
  end
end

return corrected

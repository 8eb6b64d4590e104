-- tollgate-limit: atomic reservation across all windows of one limit key.
--
-- KEYS[i]  the counter of window i: a string for a fixed window (one key per window
--          start), a hash {bucket index -> count} for a sliding window.
-- ARGV     now_ms, cost, n, then 5 values per window:
--          kind ('f' or 's'), size_ms, limit, bucket, width_ms
--          (bucket: the window start in ms when fixed, the current bucket index when
--          sliding; width_ms: the sliding bucket width, also used for the TTL slack).
-- Returns  {allowed (0/1), charged, {window_1, ..., window_n}} where window_i is the
--          flat list start_ms, count of the buckets in the window after the charge,
--          oldest first (fixed: exactly {window_start, used}).
--
-- Admission mirrors window::admit in Rust: used + cost <= limit in every window, else,
-- when every window is empty and no limit is 0, min(cost, smallest limit).
-- Time is the caller's clock (ARGV[1]); Redis' own clock only drives the TTLs, which
-- are garbage collection and never decide what counts.
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])

local kinds, sizes, limits, bkts, widths, used, lists = {}, {}, {}, {}, {}, {}, {}
local min_limit = nil

for i = 1, n do
  local a = 3 + (i - 1) * 5
  kinds[i] = ARGV[a + 1]
  sizes[i] = tonumber(ARGV[a + 2])
  limits[i] = tonumber(ARGV[a + 3])
  bkts[i] = tonumber(ARGV[a + 4])
  widths[i] = tonumber(ARGV[a + 5])
  if min_limit == nil or limits[i] < min_limit then
    min_limit = limits[i]
  end
  local sum = 0
  local list = {}
  if kinds[i] == 'f' then
    sum = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  else
    local h = redis.call('HGETALL', KEYS[i])
    local stale = {}
    for j = 1, #h, 2 do
      local idx = tonumber(h[j])
      local c = tonumber(h[j + 1])
      if idx == nil or c == nil or idx * widths[i] + sizes[i] <= now then
        stale[#stale + 1] = h[j]
      elseif c > 0 then
        -- Buckets ahead of this caller's clock (another replica's clock runs ahead)
        -- count too: they hold real usage.
        list[#list + 1] = { idx, c }
        sum = sum + c
      end
    end
    if #stale > 0 then
      redis.call('HDEL', KEYS[i], unpack(stale))
    end
  end
  used[i] = sum
  lists[i] = list
end

local fits, empty = true, true
for i = 1, n do
  if used[i] + cost > limits[i] then
    fits = false
  end
  if used[i] ~= 0 then
    empty = false
  end
end

local charged = -1
if fits then
  charged = cost
elseif empty and min_limit ~= nil and min_limit > 0 then
  charged = math.min(cost, min_limit)
end

if charged > 0 then
  for i = 1, n do
    if kinds[i] == 'f' then
      redis.call('INCRBY', KEYS[i], charged)
    else
      -- The field is the caller's own decimal string, as settle.lua uses it.
      redis.call('HINCRBY', KEYS[i], ARGV[3 + (i - 1) * 5 + 4], charged)
      local l = lists[i]
      local found = false
      for _, p in ipairs(l) do
        if p[1] == bkts[i] then
          p[2] = p[2] + charged
          found = true
        end
      end
      if not found then
        l[#l + 1] = { bkts[i], charged }
      end
    end
    used[i] = used[i] + charged
    redis.call('PEXPIRE', KEYS[i], sizes[i] + widths[i])
  end
end

local out = {}
for i = 1, n do
  local flat = {}
  if kinds[i] == 'f' then
    flat = { bkts[i], used[i] }
  else
    table.sort(lists[i], function(x, y) return x[1] < y[1] end)
    for _, p in ipairs(lists[i]) do
      flat[#flat + 1] = p[1] * widths[i]
      flat[#flat + 1] = p[2]
    end
  end
  out[i] = flat
end

if charged >= 0 then
  return { 1, charged, out }
end
return { 0, 0, out }

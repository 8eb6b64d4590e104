-- A list's first entry, then its entries from index ARGV[1] on, as many as
-- fit in ARGV[2] bytes (at least one): a follower reads only what is new,
-- and learns from the first entry whether the list was trimmed meanwhile.
-- KEYS[1]: the list. Returns {} when the list does not exist.
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return {} end
local out = {head}
local from = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local used = 0
while true do
  local chunk = redis.call('LRANGE', KEYS[1], from, from + 63)
  if #chunk == 0 then return out end
  for i = 1, #chunk do
    local size = string.len(chunk[i])
    if #out > 1 and used + size > budget then return out end
    out[#out + 1] = chunk[i]
    used = used + size
  end
  from = from + #chunk
end

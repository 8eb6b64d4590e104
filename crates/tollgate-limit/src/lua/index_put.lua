-- Adds one vector to a semantic index and keeps the index bounded.
-- KEYS[1]: the vectors hash (field: entry key, value: vector bytes)
-- KEYS[2]: the expiry ZSET (member: entry key, score: expiry in ms)
-- ARGV: field, vector, expires_ms, now_ms, max_entries, ttl_ms
local h, z = KEYS[1], KEYS[2]
redis.call('HSET', h, ARGV[1], ARGV[2])
redis.call('ZADD', z, ARGV[3], ARGV[1])
-- Expired fields go first, then the soonest to expire beyond max_entries.
local gone = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[4])
for i = 1, #gone do redis.call('HDEL', h, gone[i]) end
redis.call('ZREMRANGEBYSCORE', z, '-inf', ARGV[4])
local over = redis.call('ZCARD', z) - tonumber(ARGV[5])
if over > 0 then
  local old = redis.call('ZRANGE', z, 0, over - 1)
  for i = 1, #old do redis.call('HDEL', h, old[i]) end
  redis.call('ZREMRANGEBYRANK', z, 0, over - 1)
end
redis.call('PEXPIRE', h, ARGV[6])
redis.call('PEXPIRE', z, ARGV[6])
return 0

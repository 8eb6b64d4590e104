-- The live vectors of a semantic index, expired ones deleted first.
-- KEYS[1]: the vectors hash, KEYS[2]: the expiry ZSET; ARGV[1]: now_ms
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for i = 1, #gone do redis.call('HDEL', KEYS[1], gone[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return redis.call('HGETALL', KEYS[1])

-- Numbers, records and publishes a frame of a room that exists. Returns
-- its seq, or -1 if the room does not exist.
--
-- KEYS[1] room, also its channel; ARGV: field, value, frame, TTL ms.
if redis.call('HEXISTS', KEYS[1], 'roster') == 0 then return -1 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', KEYS[1], seq .. '|' .. ARGV[3])
return seq

-- Numbers, records and publishes a frame of a room that exists, and keeps
-- it in the room's history if it is an event. Returns its seq, or -1 if
-- the room does not exist.
--
-- KEYS[1] room, also its channel; KEYS[2] the room's history (a stream).
-- ARGV: field, value, frame, TTL ms, '1' if the frame is an event, now
-- (ms), history length, the frame's id (published as '<seq>|<id>|<frame>').
if redis.call('HEXISTS', KEYS[1], 'roster') == 0 then return -1 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', KEYS[1], seq .. '|' .. ARGV[8] .. '|' .. ARGV[3])
local keep = tonumber(ARGV[7])
if ARGV[5] == '1' and keep > 0 then
  if redis.call('XLEN', KEYS[2]) >= keep then
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1][1]
    local dropped = tonumber(string.match(oldest, '^(%d+)'))
    local hf = tonumber(redis.call('HGET', KEYS[1], 'hf') or '0')
    if dropped > hf then redis.call('HSET', KEYS[1], 'hf', dropped) end
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', keep, seq .. '-0', 'at', ARGV[6], 'f', ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return seq

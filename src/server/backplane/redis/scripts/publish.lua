-- Records a frame of a room that exists, keeps it in the room's history
-- if it is an event, and either numbers and publishes it, or, given its
-- seq, writes a frame that the room's sole instance numbered and
-- delivered itself (nobody else serves the room: nothing to publish).
-- Returns {its seq, 1 if the caller is the room's sole instance}, {-1, 0}
-- if the room does not exist, {-2, 0} if another live instance is its
-- sole one (or, given a seq, if the caller no longer is).
--
-- KEYS[1] room, also its channel; KEYS[2] the room's history (a stream).
-- ARGV: field, value, frame, the history's TTL ms, '1' if the frame is
-- an event, now (ms), history length, the frame's id (published as
-- '<seq>|<id>|<frame>'), the caller's instance id, the prefix of
-- instances' liveness keys, the seq given ('' to number it here).
--
-- The room's hash is not given its TTL again here: commit.lua sets it
-- with every roster change (a seat is taken before any frame), and the
-- upkeep of every instance with a member in the room refreshes it a third
-- of the TTL apart (a PEXPIRE was an eighth of the instructions Redis ran
-- for a typing ping). An event, one frame in many, still gives the history
-- stream its TTL, in case its XADD is the one that created the stream.
if redis.call('HEXISTS', KEYS[1], 'roster') == 0 then return {-1, 0} end
local me, sole = ARGV[9], redis.call('HGET', KEYS[1], 'sole')
local seq
if ARGV[11] ~= '' then
  if sole ~= me then return {-2, 0} end
  seq = tonumber(ARGV[11])
  if seq > tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') then
    redis.call('HSET', KEYS[1], 'seq', seq)
  end
else
  if sole and sole ~= me and redis.call('EXISTS', ARGV[10] .. sole) == 1 then
    return {-2, 0}
  end
  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('PUBLISH', KEYS[1], seq .. '|' .. ARGV[8] .. '|' .. ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
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
return {seq, sole == me and 1 or 0}

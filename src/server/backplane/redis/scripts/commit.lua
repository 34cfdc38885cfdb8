-- Commits a roster change if its version did not move, then numbers and
-- publishes its messages, and keeps its events in the room's history.
-- Returns the room's last seq, or -1 if another instance changed the
-- roster first.
--
-- KEYS[1] room, also its channel; KEYS[2] the room's history (a stream).
-- ARGV: version read, roster JSON ('' deletes the room), TTL ms, lowest
-- seq to continue from, seq read ('' if it may have moved), now (ms),
-- history length, history floor ('' or a seq up to which events may be
-- missing), n fields to delete, the fields, m fields to set, the
-- field-value pairs, then messages: 'r|<conn>' published as it is,
-- 'e|<frame>' numbered, published and kept, 'n|<frame>' numbered and
-- published.
local v = redis.call('HGET', KEYS[1], 'v') or ''
if v ~= ARGV[1] then return -1 end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if ARGV[5] ~= '' and tonumber(ARGV[5]) ~= seq then return -1 end
local floor = tonumber(ARGV[4])
if floor > seq then seq = floor end
local now, keep = ARGV[6], tonumber(ARGV[7])
if ARGV[8] ~= '' then
  local hf = tonumber(redis.call('HGET', KEYS[1], 'hf') or '0')
  if tonumber(ARGV[8]) > hf then redis.call('HSET', KEYS[1], 'hf', ARGV[8]) end
end
local n = tonumber(ARGV[9])
for i = 10, 9 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
local at = 10 + n
local m = tonumber(ARGV[at])
for i = at + 1, at + 2 * m, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = at + 1 + 2 * m, #ARGV do
  local kind, message = string.sub(ARGV[i], 1, 1), string.sub(ARGV[i], 3)
  if kind == 'r' then
    redis.call('PUBLISH', KEYS[1], ARGV[i])
  else
    seq = seq + 1
    redis.call('PUBLISH', KEYS[1], seq .. '|' .. message)
    if kind == 'e' and keep > 0 then
      if redis.call('XLEN', KEYS[2]) >= keep then
        local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1][1]
        local dropped = tonumber(string.match(oldest, '^(%d+)'))
        local hf = tonumber(redis.call('HGET', KEYS[1], 'hf') or '0')
        if dropped > hf then redis.call('HSET', KEYS[1], 'hf', dropped) end
      end
      redis.call('XADD', KEYS[2], 'MAXLEN', keep, seq .. '-0', 'at', now, 'f', message)
    end
  end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  redis.call('HSET', KEYS[1], 'roster', ARGV[2], 'v', (tonumber(v) or 0) + 1, 'seq', seq)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return seq

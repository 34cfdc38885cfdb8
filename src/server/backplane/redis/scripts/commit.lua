-- Commits a roster change if its version did not move, then numbers and
-- publishes its messages. Returns the room's last seq, or -1 if another
-- instance changed the roster first.
--
-- KEYS[1] room, also its channel; ARGV: version read, roster JSON (''
-- deletes the room), TTL ms, lowest seq to continue from, seq read ('' if
-- it may have moved), n fields to delete, the fields, m fields to set, the
-- field-value pairs, then messages ('r|...' as they are, others numbered).
local v = redis.call('HGET', KEYS[1], 'v') or ''
if v ~= ARGV[1] then return -1 end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if ARGV[5] ~= '' and tonumber(ARGV[5]) ~= seq then return -1 end
local floor = tonumber(ARGV[4])
if floor > seq then seq = floor end
local n = tonumber(ARGV[6])
for i = 7, 6 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
local at = 7 + n
local m = tonumber(ARGV[at])
for i = at + 1, at + 2 * m, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = at + 1 + 2 * m, #ARGV do
  local message = ARGV[i]
  if string.sub(message, 1, 2) == 'r|' then
    redis.call('PUBLISH', KEYS[1], message)
  else
    seq = seq + 1
    redis.call('PUBLISH', KEYS[1], seq .. '|' .. message)
  end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'roster', ARGV[2], 'v', (tonumber(v) or 0) + 1, 'seq', seq)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return seq

-- Commits a roster change if its version did not move and no other live
-- instance numbers the room's frames itself, then numbers and publishes
-- its messages, keeps its events in the room's history, and notes which
-- instance serves every connection of the room, if one does ('sole').
-- Returns {the room's last seq, 1 if that instance is the caller}, or
-- {-1, 0} if another instance changed the roster first, {-2, 0} if
-- another live instance is the room's sole one.
--
-- KEYS[1] room, also its channel; KEYS[2] the room's history (a stream).
-- ARGV: the caller's instance id, the prefix of instances' liveness keys,
-- version read, roster JSON ('' deletes the room), TTL ms, lowest seq to
-- continue from, seq read ('' if it may have moved), now (ms), history
-- length, history floor ('' or a seq up to which events may be missing),
-- n fields to delete, the fields, m fields to set, the field-value pairs,
-- then messages: 'r|<conn>' published as it is, 'e|<frame>' numbered,
-- published and kept, 'n|<frame>' numbered and published.
local me, alive = ARGV[1], ARGV[2]
local args = {}
for i = 3, #ARGV do args[i - 2] = ARGV[i] end
local sole = redis.call('HGET', KEYS[1], 'sole')
if sole and sole ~= me and redis.call('EXISTS', alive .. sole) == 1 then return {-2, 0} end
local v = redis.call('HGET', KEYS[1], 'v') or ''
if v ~= args[1] then return {-1, 0} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if args[5] ~= '' and tonumber(args[5]) ~= seq then return {-1, 0} end
local floor = tonumber(args[4])
if floor > seq then seq = floor end
local now, keep = args[6], tonumber(args[7])
if args[8] ~= '' then
  local hf = tonumber(redis.call('HGET', KEYS[1], 'hf') or '0')
  if tonumber(args[8]) > hf then redis.call('HSET', KEYS[1], 'hf', args[8]) end
end
local n = tonumber(args[9])
for i = 10, 9 + n do redis.call('HDEL', KEYS[1], args[i]) end
local at = 10 + n
local m = tonumber(args[at])
for i = at + 1, at + 2 * m, 2 do redis.call('HSET', KEYS[1], args[i], args[i + 1]) end
for i = at + 1 + 2 * m, #args do
  local kind, message = string.sub(args[i], 1, 1), string.sub(args[i], 3)
  if kind == 'r' then
    redis.call('PUBLISH', KEYS[1], args[i])
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
if args[2] == '' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {seq, 0}
end
redis.call('HSET', KEYS[1], 'roster', args[2], 'v', (tonumber(v) or 0) + 1, 'seq', seq)
redis.call('PEXPIRE', KEYS[1], args[3])
redis.call('PEXPIRE', KEYS[2], args[3])
local owner = nil
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'n:' then
    if owner == nil then owner = fields[i + 1]
    elseif owner ~= fields[i + 1] then owner = false end
  end
end
if owner then redis.call('HSET', KEYS[1], 'sole', owner) else redis.call('HDEL', KEYS[1], 'sole') end
return {seq, owner == me and 1 or 0}

-- The caller stops numbering the room's frames itself: another instance
-- asked to serve the room too. Everything it numbered is written already
-- (its writes to the room go out in order, this one last).
--
-- KEYS[1] room. ARGV[1] the caller's instance id.
if redis.call('HGET', KEYS[1], 'sole') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'sole')
end
return {0, 0}

--[[
  cache-fill: stores what a loader produced and releases the fill lock, only while the lock is
  still this load's. A delete or set of the key revokes its fill lock, so a load that was running
  when the key was deleted (and may have read the old data) never writes the old value back.
  Refused past the caller's deadline: a fill the caller gave up on has no later effect.

  KEYS[1]  entry key
  KEYS[2]  fill lock key, in the entry's hash slot

  ARGV[1]  token of this load
  ARGV[2]  deadline, server epoch ms
  ARGV[3]  entry text
  ARGV[4]  entry ttl in ms

  Reply    { 1, now }    stored, lock released
           { 0, now }    not stored: the lock is not this load's any more (the key was deleted or
                         set meanwhile, or the lock expired)
           { -1, now }   not stored, lock released: the deadline had passed
           now is the server's time in epoch ms
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local mine = redis.call('GET', KEYS[2]) == ARGV[1]
if now > tonumber(ARGV[2]) then
  if mine then redis.call('DEL', KEYS[2]) end
  return { -1, now }
end
if not mine then
  return { 0, now }
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[2])
return { 1, now }

--[[
  cache-set: stores a value given by the caller, and revokes any fill lock on the key, so a load
  that started before this write cannot overwrite it with what it read earlier. Refused past the
  caller's deadline: a set the caller gave up on (replayed late by ioredis) must not overwrite a
  newer value.

  KEYS[1]  entry key
  KEYS[2]  fill lock key, in the entry's hash slot

  ARGV[1]  deadline, server epoch ms
  ARGV[2]  entry text
  ARGV[3]  entry ttl in ms

  Reply    { 1, now } stored; { -1, now } the deadline had passed, nothing done
           now is the server's time in epoch ms
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if now > tonumber(ARGV[1]) then
  return { -1, now }
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return { 1, now }

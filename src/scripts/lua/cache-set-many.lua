--[[
  cache-set-many: cache-set for many entries of one hash slot in one call: stores each value given
  by the caller and revokes any fill lock on its key, so a load that started before this write
  cannot overwrite it with what it read earlier. Refused past the caller's deadline: a write the
  caller gave up on (replayed late by ioredis) must not overwrite newer values.

  KEYS[1..n]     entry keys
  KEYS[n+1..2n]  their fill lock keys, in the same order (all keys in one hash slot per call)

  ARGV[1]        deadline, server epoch ms
  ARGV[2i]       text of entry i (i = 1..n)
  ARGV[2i+1]     ttl of entry i in ms

  Reply          { 1, now } stored; { -1, now } the deadline had passed, nothing done
                 now is the server's time in epoch ms
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if now > tonumber(ARGV[1]) then
  return { -1, now }
end
local n = #KEYS / 2
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[2 * i], 'PX', ARGV[2 * i + 1])
end
redis.call('DEL', unpack(KEYS, n + 1, 2 * n))
return { 1, now }

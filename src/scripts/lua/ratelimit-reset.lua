--[[
  ratelimit-reset: forgets one identity (every limit's state and its block), unless it runs
  after its caller gave up (a reset ioredis replays after a reconnection must not wipe what was
  counted since).

  KEYS[1..n]  the identity's block key and state keys (one hash tag)

  ARGV[1]  deadline, server epoch ms

  Reply    the number of keys deleted; too late: minus the server time in ms
]]
local t = redis.call('TIME')
local real = t[1] * 1000 + math.floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
return redis.call('DEL', unpack(KEYS))

--[[
  lock-extend: gives the lock a new ttl only while it still holds this token, and only before the
  caller's deadline (a late extension would keep a lock its holder already counts as lost).

  KEYS[1]  lock key

  ARGV[1]  token of this acquisition
  ARGV[2]  new ttl in ms, counted from now
  ARGV[3]  deadline, server time in epoch ms after which the caller no longer waits; 0 for none

  Reply    { 1, server ms } when extended
           { 0, server ms } when this token no longer holds the lock (expired or taken over)
           { -1, server ms } when it ran after the deadline (nothing was changed)
]]
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now_ms > deadline then
  return { -1, now_ms }
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return { 1, now_ms }
end
return { 0, now_ms }

--[[
  lock-semaphore-extend: gives a holder's permits a new ttl, only while it still holds them and
  only before the caller's deadline.

  KEYS[1]  holders: sorted set, member `<token>:<i>` per permit, score = end ms

  ARGV[1]  token of this acquisition
  ARGV[2]  permits it holds
  ARGV[3]  new ttl in ms, counted from now
  ARGV[4]  deadline, server time in epoch ms after which the caller no longer waits; 0 for none

  Reply    { 1, server ms } when extended
           { 0, server ms } when this token no longer holds its permits (nothing was changed)
           { -1, server ms } when it ran after the deadline (nothing was changed)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[4])
if deadline > 0 and now > deadline then
  return { -1, now }
end
local holders, token = KEYS[1], ARGV[1]
local ends = redis.call('ZSCORE', holders, token .. ':1')
if not ends or tonumber(ends) <= now then
  return { 0, now }
end
local new_end = string.format('%.0f', now + tonumber(ARGV[3]))
for i = 1, tonumber(ARGV[2]) do
  redis.call('ZADD', holders, 'XX', new_end, token .. ':' .. i)
end
local last = redis.call('ZRANGE', holders, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', holders, last[2])
return { 1, now }

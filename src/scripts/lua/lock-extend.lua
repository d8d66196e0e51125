--[[
  lock-extend: gives one or several locks a new ttl, only while every one of them still holds
  this token (a set with one lock lost is lost as a whole), and only before the caller's deadline
  (a late extension would keep a lock its holder already counts as lost).

  KEYS[1] .. KEYS[n]  lock key of each resource (on a Cluster all in one slot)

  ARGV[1]  token of this acquisition
  ARGV[2]  new ttl in ms, counted from now
  ARGV[3]  deadline, server time in epoch ms after which the caller no longer waits; 0 for none

  Reply    { 1, server ms } when extended
           { 0, server ms } when this token no longer holds one of them (nothing was changed)
           { -1, server ms } when it ran after the deadline (nothing was changed)
]]
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now_ms > deadline then
  return { -1, now_ms }
end
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then
    return { 0, now_ms }
  end
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return { 1, now_ms }

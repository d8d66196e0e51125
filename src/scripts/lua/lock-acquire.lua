--[[
  lock-acquire: takes a lock if it is free and hands out a fencing token, in one round trip, so
  no holder ever exists without a token. Refuses to act when it runs after its caller's deadline
  (a command ioredis replayed, or one a stalled server ran late): the caller has given up, and a
  grant nobody knows about would keep the resource locked for a whole ttl.

  Fencing tokens are the server's time in microseconds, or one more than the last token handed out
  for this resource if that is not lower (two grants within one microsecond, a clock stepped back
  by less than the fence key's life). So they keep increasing when the fence key is lost (a
  restart without persistence, an eviction, a failover), and the fence key needs no immortality:
  it lives for the lock's ttl plus 60 s.

  KEYS[1]  lock key: the holder's random token, expiring after the lock's ttl
  KEYS[2]  fence key: the last fencing token handed out for this resource

  ARGV[1]  token, random and unique to this attempt
  ARGV[2]  ttl in ms
  ARGV[3]  deadline, server time in epoch ms after which the caller no longer waits; 0 for none

  Reply    { 1, server ms, fencing token } when acquired
           { 0, server ms, ms until the current holder's lock expires } when it is held
           { -1, server ms } when it ran after the deadline (nothing was changed)
]]
local time = redis.call('TIME')
local seconds, micros = tonumber(time[1]), tonumber(time[2])
local now_ms = seconds * 1000 + math.floor(micros / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now_ms > deadline then
  return { -1, now_ms }
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return { 0, now_ms, redis.call('PTTL', KEYS[1]) }
end
local fence = seconds * 1000000 + micros
local last = tonumber(redis.call('GET', KEYS[2]))
if last and last >= fence then
  fence = last + 1
end
redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', string.format('%.0f', tonumber(ARGV[2]) + 60000))
return { 1, now_ms, fence }

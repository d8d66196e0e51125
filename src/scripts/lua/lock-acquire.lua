--[[
  lock-acquire: takes one or several locks, all or none, and hands out a fencing token for each,
  in one round trip, so no holder ever exists without a token. Refuses to act when it runs after
  its caller's deadline (a command ioredis replayed, or one a stalled server ran late): the caller
  has given up, and a grant nobody knows about would keep the resources locked for a whole ttl.

  Fencing tokens are the server's time in microseconds, or one more than the last token handed out
  for the resource if that is not lower (two grants within one microsecond, a clock stepped back
  by less than the fence key's life). So they keep increasing when the fence key is lost (a
  restart without persistence, an eviction, a failover), and the fence key needs no immortality:
  it lives for the lock's ttl plus 60 s.

  KEYS[1], KEYS[3] .. KEYS[2n-1]  lock key of each of the n resources: the holder's random
                                  token, expiring after the lock's ttl
  KEYS[2], KEYS[4] .. KEYS[2n]    fence key of each resource: the last fencing token handed out
                                  (on a Cluster all keys are in one slot)

  ARGV[1]  token, random and unique to this acquisition
  ARGV[2]  ttl in ms
  ARGV[3]  deadline, server time in epoch ms after which the caller no longer waits; 0 for none

  Reply    { 1, server ms, fencing token 1, ..., fencing token n } when all were acquired (also
           when they already hold this token: the same attempt, resent by ioredis)
           { 0, server ms, ms until a held lock expires (-1: no ttl) } when one is held
           { -1, server ms } when it ran after the deadline (nothing was changed)
]]
local time = redis.call('TIME')
local seconds, micros = tonumber(time[1]), tonumber(time[2])
local now_ms = seconds * 1000 + math.floor(micros / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now_ms > deadline then
  return { -1, now_ms }
end
for i = 1, #KEYS, 2 do
  local holder = redis.call('GET', KEYS[i])
  -- This attempt's own token: ioredis resent the command after a reconnection lost the first
  -- run's reply. Answer as a grant again (a fresh fence, still higher than any before).
  if holder and holder ~= ARGV[1] then
    return { 0, now_ms, redis.call('PTTL', KEYS[i]) }
  end
end
local now_us = seconds * 1000000 + micros
local fence_ttl = string.format('%.0f', tonumber(ARGV[2]) + 60000)
local reply = { 1, now_ms }
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  local fence = now_us
  local last = tonumber(redis.call('GET', KEYS[i + 1]))
  if last and last >= fence then
    fence = last + 1
  end
  redis.call('SET', KEYS[i + 1], string.format('%.0f', fence), 'PX', fence_ttl)
  reply[#reply + 1] = fence
end
return reply

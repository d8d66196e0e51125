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

  Few Redis calls on the common path (TIME, SET NX, SET GET): a lock is taken with SET NX, and the
  holder is read only when that is refused; the fence key is written with SET GET, which returns
  the last token, and written again only in the rare case that token is not below the clock.

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

  Several calls in one run (how the client sends acquisitions issued at the same time): ARGV is
  the key count, token, ttl and deadline of each call in turn, KEYS their keys in the same order,
  and the reply is the list of the calls' replies, each as above. The calls run one after the
  other, judged by the time the run started; a call that fails gets its error in its place, and
  the others run regardless.
]]
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Server µs as an exact decimal string (a Lua number would be sent as %.14g, losing digits).
local now_us = time[1] .. string.sub('00000' .. time[2], -6)
local now_us_number = tonumber(now_us)

local function acquire(first, last, token, ttl, deadline)
  if deadline > 0 and now_ms > deadline then
    return { -1, now_ms }
  end
  local created, resent
  for i = first, last, 2 do
    local key = KEYS[i]
    if redis.call('SET', key, token, 'NX', 'PX', ttl) then
      created = created or {}
      created[#created + 1] = key
    elseif redis.call('GET', key) == token then
      -- This attempt's own token: ioredis resent the command after a reconnection lost the first
      -- run's reply. Answer as a grant again (a fresh fence, still higher than any before).
      resent = resent or {}
      resent[#resent + 1] = key
    else
      local left = redis.call('PTTL', key)
      -- All or none: the locks this call took are given back, so nothing was changed.
      if created then
        redis.call('DEL', unpack(created))
      end
      return { 0, now_ms, left }
    end
  end
  if resent then
    for _, key in ipairs(resent) do
      redis.call('PEXPIRE', key, ttl)
    end
  end
  local fence_ttl = tonumber(ttl) + 60000
  local reply = { 1, now_ms }
  for i = first + 1, last, 2 do
    local fence = now_us_number
    local previous = tonumber(redis.call('SET', KEYS[i], now_us, 'PX', fence_ttl, 'GET'))
    if previous and previous >= fence then
      fence = previous + 1
      redis.call('SET', KEYS[i], string.format('%.0f', fence), 'PX', fence_ttl)
    end
    reply[#reply + 1] = fence
  end
  return reply
end

if #ARGV == 3 then
  return acquire(1, #KEYS, ARGV[1], ARGV[2], tonumber(ARGV[3]))
end
local replies = {}
local first = 1
for i = 1, #ARGV, 4 do
  local last = first + tonumber(ARGV[i]) - 1
  local ok, reply = pcall(acquire, first, last, ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]))
  if ok then
    replies[#replies + 1] = reply
  else
    replies[#replies + 1] = redis.error_reply(type(reply) == 'table' and reply.err or tostring(reply))
  end
  first = last + 1
end
return replies

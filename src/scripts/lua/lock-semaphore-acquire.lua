--[[
  lock-semaphore-acquire: takes `permits` of a counting semaphore's `limit` if they are free, and
  hands out a fencing token, in one round trip. Holders are members of a sorted set scored by the
  server time (ms) their lease ends, so a holder that died frees its permits when its ttl runs
  out; the set itself expires with its last holder. Refuses to act after its caller's deadline,
  as lock-acquire does.

  Fair mode keeps a queue of waiters in arrival order: a waiter gets its permits only when the
  waiters ahead of it have theirs, so a stream of small requests cannot starve a big one. A
  waiter stays queued while it keeps asking (each try renews its place for `queue ttl`); one that
  stopped (crashed, or gave up without a word) is dropped when its place expires.

  KEYS[1]  holders: sorted set, member `<token>:<i>` per permit (i = 1..permits), score = end ms
  KEYS[2]  fence key: the last fencing token handed out for this semaphore
  KEYS[3]  queue (fair mode): sorted set, member `<permits>:<token>`, score = arrival µs (the
           server time, or one above the last waiter's when that is not lower: strict arrival order)
  KEYS[4]  queue places (fair mode): sorted set, same members, score = ms the place expires

  ARGV[1]  token, random and unique to this acquisition
  ARGV[2]  permits wanted (1..limit)
  ARGV[3]  limit: permits in all
  ARGV[4]  ttl in ms
  ARGV[5]  mode: 0 = not fair; 1 = fair, queue up while waiting;
           2 = fair without queueing (tryAcquire): only permits the waiters leave free
  ARGV[6]  queue ttl in ms: how long a place in the queue lasts unless renewed
  ARGV[7]  deadline, server time in epoch ms after which the caller no longer waits; 0 for none

  Reply    { 1, server ms, fencing token } when acquired
           { 0, server ms, ms until the next holder's lease ends (-1: unknown) } when not
           { -1, server ms } when it ran after the deadline (nothing was changed)

  Several calls in one run (how the client sends acquisitions issued at the same time): ARGV is
  the key count (4) and the seven arguments above of each call in turn, KEYS their keys in the
  same order, and the reply is the list of the calls' replies, each as above. The calls run one
  after the other, judged by the time the run started; a call that fails gets its error in its
  place, and the others run regardless.
]]
local time = redis.call('TIME')
local seconds, micros = tonumber(time[1]), tonumber(time[2])
local now = seconds * 1000 + math.floor(micros / 1000)
-- Server µs as an exact decimal string (a Lua number would be sent as %.14g, losing digits).
local now_us = time[1] .. string.sub('00000' .. time[2], -6)
local now_us_number = tonumber(now_us)

local function acquire(holders, fence_key, queue, places, token, permits, limit, ttl, mode, queue_ttl, deadline)
  if deadline > 0 and now > deadline then
    return { -1, now }
  end
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
  -- This attempt's own token already holds permits: ioredis resent the command after a
  -- reconnection lost the first run's reply. Take them out and decide again, so the attempt
  -- holds them once.
  if redis.call('ZSCORE', holders, token .. ':1') then
    for i = 1, permits do
      redis.call('ZREM', holders, token .. ':' .. i)
    end
  end
  local free = limit - redis.call('ZCARD', holders)

  local function next_end()
    local first = redis.call('ZRANGE', holders, 0, 0, 'WITHSCORES')
    if first[2] then
      return tonumber(first[2]) - now
    end
    return -1
  end

  if mode == '0' then
    if free < permits then
      return { 0, now, next_end() }
    end
  else
    -- Forget waiters that stopped asking, a bounded number per call.
    local gone = redis.call('ZRANGEBYSCORE', places, '-inf', now, 'LIMIT', 0, 100)
    for _, member in ipairs(gone) do
      redis.call('ZREM', queue, member)
      redis.call('ZREM', places, member)
    end
    local me = permits .. ':' .. token
    local ahead
    if mode == '1' then
      if not redis.call('ZSCORE', queue, me) then
        -- Arrival order even for waiters of one run (they all read the same TIME; equal scores
        -- would rank by member, a random token) or of a clock stepped back: after the last one.
        local arrival = now_us
        local last = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')[2]
        if last and tonumber(last) >= now_us_number then
          arrival = string.format('%.0f', tonumber(last) + 1)
        end
        redis.call('ZADD', queue, arrival, me)
      end
      ahead = redis.call('ZRANK', queue, me)
    else
      ahead = redis.call('ZCARD', queue)
    end
    -- Each waiter ahead wants at least one permit: past `free` of them, there is no room.
    local wanted = permits
    if ahead >= free then
      wanted = free + 1
    elseif ahead > 0 then
      for _, member in ipairs(redis.call('ZRANGE', queue, 0, ahead - 1)) do
        wanted = wanted + (tonumber(string.match(member, '^(%d+):')) or 1)
      end
    end
    if wanted > free then
      if mode == '1' then
        local queue_ttl_ms = tonumber(queue_ttl)
        redis.call('ZADD', places, string.format('%.0f', now + queue_ttl_ms), me)
        for _, key in ipairs({ queue, places }) do
          if redis.call('PTTL', key) < queue_ttl_ms then
            redis.call('PEXPIRE', key, queue_ttl)
          end
        end
      end
      return { 0, now, next_end() }
    end
    if mode == '1' then
      redis.call('ZREM', queue, me)
      redis.call('ZREM', places, me)
    end
  end

  local ends = string.format('%.0f', now + ttl)
  for i = 1, permits do
    redis.call('ZADD', holders, ends, token .. ':' .. i)
  end
  -- The set lives until its longest lease ends: this one's (a set with no expiry yet, as a new
  -- one), or a later one it already has.
  if redis.call('PEXPIREAT', holders, ends, 'NX') == 0 then
    redis.call('PEXPIREAT', holders, ends, 'GT')
  end

  -- The fence: the last one comes back from the write, and a second write is needed only in
  -- the rare case it is not below the clock.
  local fence = now_us_number
  local fence_ttl = string.format('%.0f', ttl + 60000)
  local previous = tonumber(redis.call('SET', fence_key, now_us, 'PX', fence_ttl, 'GET'))
  if previous and previous >= fence then
    fence = previous + 1
    redis.call('SET', fence_key, string.format('%.0f', fence), 'PX', fence_ttl)
  end
  return { 1, now, fence }
end

local function call(k, a)
  return acquire(
    KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3],
    ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
    ARGV[a + 4], ARGV[a + 5], tonumber(ARGV[a + 6])
  )
end

if #ARGV == 7 then
  return call(1, 1)
end
local replies = {}
local first = 1
for i = 1, #ARGV, 8 do
  local ok, reply = pcall(call, first, i + 1)
  if ok then
    replies[#replies + 1] = reply
  else
    replies[#replies + 1] = redis.error_reply(type(reply) == 'table' and reply.err or tostring(reply))
  end
  first = first + tonumber(ARGV[i])
end
return replies

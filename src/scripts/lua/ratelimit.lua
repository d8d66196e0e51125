--[[
  ratelimit: checks and consumes every limit of an identity atomically: either every limit
  admits the cost and all of them count it, or none counts anything. For any number of limits
  and for blocks; one identity, or a batch of identities decided in one call (each atomically).
  The single-limit scripts (ratelimit-fixed, -anchored, -sliding, -log) are this script's common
  cases, specialised. src/ratelimit/algorithms.ts is the same logic for the in-memory backend:
  change them together.

  KEYS[1..n]  per identity, in order: the block key (only when blockFor > 0), then one state
           key per limit, in the order of the limits in ARGV. A batch repeats the pattern once
           per identity.

  ARGV[1]  deadline, server epoch ms: a call that runs later (a reply its caller gave up on,
           replayed by ioredis after a reconnection) changes nothing and says so
  ARGV[2]  operation: mode letter and cost, 'c<cost>' consume (all or nothing), 'p<cost>' peek
           (read only), 'h<cost>' hit (count even when over, ignore blocks); '' means 'c1'
  ARGV[3]  blockFor in ms; 0 means no block (and no block key)
  ARGV[4]  block mode: 'r' (blocked at least until the refusing limit has room) or 'x' (exactly
           blockFor, then every count of the identity starts afresh)
  ARGV[5]  now in ms (tests), or '': replaces the server clock for the limits, and keys get no
           expiry (time is only what the caller says it is); the deadline still uses TIME
  ARGV[6..] per limit: its shape, '<code><window ms>' (code 'f' fixed window on the clock, 'a'
           fixed window anchored at the first hit, 's' sliding window, 'l' sliding log; 'r' and
           'b' are first-hit windows where a counted hit that leaves the count above the limit
           restarts the window at that hit, 'b' with a length of window * 2^(count - limit - 1),
           as @fastify/rate-limit's continueExceeding and exponentialBackoff; 'g<window ms>:<burst>'
           GCRA), then its limit

  Reply    too late: a negative integer, minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them, an
           identity whose decision failed, e.g. WRONGTYPE, as an error in its place):
           admitted: { now, then per limit: used, and for an anchored limit also its resetAt (the
                      window's end, which a backoff may have moved), for GCRA also its resetAt
                      (when the bucket is full again) }
           refused: { -reason (1 by a limit, 2 blocked), now, retryAfter,
                      then per limit: used, resetAt, retryAfter }
           used counts the window after this call (sliding window: the estimate, rounded up);
           a limit admitted the cost exactly when its retryAfter is 0.

  State    fixed window: hash { <window number> = count }, expiring when the window ends
           anchored fixed window: hash { s = window start ms, c = count, l = window length when a
           hit over the limit changed it }, expiring with it
           sliding window: hash { w = window number, c = count, p = count of window w - 1 }
           sliding log: sorted set of admitted units (score ms, member TIME µs + sequence)
           GCRA: hash { t = time (ms) of its last change, d = how far the theoretical arrival
           time was then ahead of t, in 1/limit ms (cost * window: the bucket's level, which a
           change of limit keeps) }, expiring when the bucket is full again
           block: the time (ms) until which the identity is blocked
]]
-- Globals are slow to reach in a Redis script (a protected environment): keep them in locals.
-- Numbers passed to redis.call are formatted each time, so repeated ones are formatted once;
-- and each table costs an allocation, so per-limit values live in two flat tables.
local call, tonumber, tostring, floor, ceil, sub = redis.call, tonumber, tostring, math.floor, math.ceil, string.sub
local t = call('TIME')
local real = t[1] * 1000 + floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now = tonumber(ARGV[5])
-- Expiry only cleans up (the logic reads window numbers and times, never relies on a key having
-- gone), and Redis expires by its own clock, so a caller's clock turns it off.
local expire = not now
now = now or real

local mode, cost, costArg = 'c', 1, '1'
if ARGV[2] ~= '' then
  mode, costArg = sub(ARGV[2], 1, 1), sub(ARGV[2], 2)
  cost = tonumber(costArg)
end
local blockFor, exact = tonumber(ARGV[3]), ARGV[4] == 'x'
local first = blockFor > 0 and 1 or 0
local count = (#ARGV - 5) / 2
local stride = first + count
-- Tolerates float rounding in the sliding-window estimate; both backends use it.
local EPSILON = 1e-9
local seq = 0

-- L: per limit, once for every identity of the call, at L[7 * (i - 1) + 1 ..]: algorithm,
-- limit, window, window number, its start, the window number as a hash field, and for a
-- first-hit window what a hit over the limit does ('r', 'b' or false), for GCRA its burst.
local L, longest = {}, 0
-- The longest a backoff window grows: 10 years, as any duration option.
local MAX_WINDOW = 315360000000
for i = 1, count do
  local shape, o = ARGV[4 + 2 * i], 7 * (i - 1)
  local code, exceeded, span = sub(shape, 1, 1), false, nil
  local window, limit
  if code == 'g' then
    local w, b = string.match(shape, '^g(%d+):(%d+)$')
    window, exceeded, limit = tonumber(w), tonumber(b), tonumber(ARGV[5 + 2 * i])
    -- Its state matters until an empty bucket has refilled.
    span = ceil(exceeded * window / limit)
  else
    window, limit = tonumber(sub(shape, 2)), tonumber(ARGV[5 + 2 * i])
    span = window
  end
  local w = floor(now / window)
  if code == 'r' or code == 'b' then code, exceeded = 'a', code end
  L[o + 1], L[o + 2], L[o + 3], L[o + 4], L[o + 5], L[o + 6], L[o + 7] =
    code, limit, window, w, w * window, tostring(w), exceeded
  if span > longest then longest = span end
end

-- S: per limit, rewritten for each identity, at S[8 * (i - 1) + 1 ..]: verdict, count, reset
-- time, retry delay, window number or start, stored window (or false), current count, previous
-- count (a first-hit window: its length).
local S = {}

local function decide(base)
  local reason, retryAfter = 0, 0
  if first == 1 then
    local blockedUntil = tonumber(call('GET', KEYS[base + 1]))
    if blockedUntil and blockedUntil > now then
      if mode ~= 'h' then reason, retryAfter = 2, blockedUntil - now end
    elseif blockedUntil and exact then
      -- An exact block has ended: the identity starts afresh.
      call('DEL', unpack(KEYS, base + 1, base + stride))
    end
  end
  -- A blocked identity and a peek only look; consume and hit may count.
  local counting = mode ~= 'p' and reason == 0

  local admitted = reason == 0
  for i = 1, count do
    local o, q = 7 * (i - 1), 8 * (i - 1)
    local code, limit, window, w, start = L[o + 1], L[o + 2], L[o + 3], L[o + 4], L[o + 5]
    local key = KEYS[base + first + i]
    local admit, used, reset, retry, index, stored, current, previous = true, 0, 0, 0, w, false, 0, 0
    if code == 'f' then
      -- Counted first (one command on the hot path) and taken back below if the call is
      -- refused: the script is atomic, so nobody sees the difference.
      if counting then
        current = call('HINCRBY', key, L[o + 6], costArg) - cost
        used = current
      else
        used = tonumber(call('HGET', key, L[o + 6])) or 0
      end
      admit = used + cost <= limit
      reset = start + window
      if not admit then retry = reset - now end
    elseif code == 'a' then
      -- s is the window's start (l its length, when a hit over the limit changed it); a window
      -- that has ended counts nothing, and the next counted hit starts a new one (a peek or a
      -- refusal starts nothing).
      local state = call('HMGET', key, 's', 'c', 'l')
      local s, c, length = tonumber(state[1]), tonumber(state[2]) or 0, tonumber(state[3]) or window
      if s and now < s + length then
        stored = s
      else
        s, c, length = now, 0, window
        -- A leftover length of an ended window must go when the next one starts (noted in the
        -- slot of the current count, which a first-hit window does not use otherwise).
        if state[3] then current = 1 end
      end
      index, used, previous = s, c, length
      admit = c + cost <= limit
      reset = s + length
      if not admit then retry = reset - now end
    elseif code == 'g' then
      -- In units of 1/limit ms, one unit of cost takes `window` to refill: every value is an
      -- integer under 2^53 (burst * window is capped), so the script and algorithms.ts agree
      -- exactly. `ahead` is how far the theoretical arrival time (TAT) is ahead of now.
      -- It drains at limit units per ms since the last change (a clock stepped back drains nothing).
      -- A state this script cannot have written (NaN, infinite, negative, past any burst) is
      -- untrusted input: it counts as none.
      local state = call('HMGET', key, 't', 'd')
      local st, sd = tonumber(state[1]), tonumber(state[2])
      local ahead = 0
      if st and sd and st == st and sd >= 0 and sd <= 1125899906842624 then
        local elapsed = now - st
        if elapsed < 0 then elapsed = 0 end
        ahead = sd - elapsed * limit
        if ahead < 0 then ahead = 0 end
      end
      local span = L[o + 7] * window
      local after = ahead + cost * window
      current = ahead
      used = ceil(ahead / window)
      admit = after <= span
      reset = now + ceil(ahead / limit)
      if not admit then retry = ceil((after - span) / limit) end
    elseif code == 's' then
      local state = call('HMGET', key, 'w', 'c', 'p')
      local sw, c = tonumber(state[1]), tonumber(state[2]) or 0
      -- The stored p belongs to window sw - 1; the count of window w - 1 becomes it.
      local p = 0
      if sw == w then
        p = tonumber(state[3]) or 0
      elseif sw == w - 1 then
        p = c
        c = 0
      else
        c = 0
      end
      stored, current, previous = sw or false, c, p
      local elapsed = now - start
      used = p * (window - elapsed) / window + c
      admit = used + cost <= limit + EPSILON
      reset = start + window
      if not admit then
        if c + cost <= limit and p > 0 then
          -- Room in this window once the previous window's weight has decayed.
          retry = ceil(window - (limit - c - cost) * window / p) - elapsed
        else
          -- Wait into the next window, where this window's count becomes the weighted one.
          local wait = ceil(window - (limit - cost) * window / c)
          retry = window - elapsed + (wait > 0 and wait or 0)
        end
        if retry < 1 then retry = 1 end
      end
    else
      call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      used = call('ZCARD', key)
      admit = used + cost <= limit
      if admit then
        reset = now + window
      else
        local k = used + cost - limit - 1
        retry = call('ZRANGE', key, k, k, 'WITHSCORES')[2] + window - now
        reset = call('ZRANGE', key, -1, -1, 'WITHSCORES')[2] + window
      end
    end
    S[q + 1], S[q + 2], S[q + 3], S[q + 4], S[q + 5], S[q + 6], S[q + 7], S[q + 8] =
      admit, used, reset, retry, index, stored, current, previous
    if not admit then admitted = false end
  end

  local counted = counting and (admitted or mode == 'h')
  for i = 1, count do
    local o, q = 7 * (i - 1), 8 * (i - 1)
    local code, window, key = L[o + 1], L[o + 3], KEYS[base + first + i]
    if code == 'f' then
      if not counting then
        -- Only read.
      elseif not counted then
        if S[q + 7] == 0 then
          call('HDEL', key, L[o + 6])
        else
          call('HINCRBY', key, L[o + 6], -cost)
        end
      elseif S[q + 7] == 0 and expire then
        -- First count in this window: the key ends with it.
        call('PEXPIRE', key, S[q + 3] - now)
      end
    elseif counted then
      if code == 'a' then
        if S[q + 6] then
          call('HINCRBY', key, 'c', costArg)
        else
          call('HSET', key, 's', S[q + 5], 'c', costArg)
          if S[q + 7] == 1 then call('HDEL', key, 'l') end
          if expire then call('PEXPIRE', key, window) end
        end
        local exceeded = L[o + 7]
        if exceeded and S[q + 2] + cost > L[o + 2] then
          -- Over the limit: the window restarts at this hit, or restarts longer each time.
          local length = window
          if exceeded == 'b' then
            length = window * 2 ^ (S[q + 2] + cost - L[o + 2] - 1)
            if length > MAX_WINDOW then length = MAX_WINDOW end
          end
          call('HSET', key, 's', now, 'l', length)
          if expire then call('PEXPIRE', key, length) end
          S[q + 5], S[q + 3] = now, now + length
          if not S[q + 1] then S[q + 4] = length end
        end
      elseif code == 'g' then
        -- The TAT moves on by the cost; the state lives until the bucket is full again.
        local limit = L[o + 2]
        local ahead = S[q + 7] + cost * window
        call('HSET', key, 't', now, 'd', ahead)
        local full = ceil(ahead / limit)
        if expire then call('PEXPIRE', key, full) end
        S[q + 3] = now + full
      elseif code == 's' then
        if S[q + 6] == S[q + 5] then
          call('HINCRBY', key, 'c', costArg)
        else
          call('HSET', key, 'w', L[o + 6], 'c', S[q + 7] + cost, 'p', S[q + 8])
          if expire then call('PEXPIRE', key, S[q + 3] + window - now) end
        end
      else
        -- Members are the server's TIME in µs and a sequence number: unique per unit even within
        -- one millisecond and after a refund. NX never moves an existing entry; should a clock
        -- stepped back collide, the loop adds fresh ones until every unit counts.
        local stamp = t[1] .. string.format('%06d', t[2]) .. ':'
        local missing = cost
        while missing > 0 do
          local members, m = {}, 0
          for _ = 1, (missing < 500 and missing or 500) do
            seq = seq + 1
            members[m + 1] = now
            members[m + 2] = stamp .. seq
            m = m + 2
          end
          missing = missing - call('ZADD', key, 'NX', unpack(members, 1, m))
        end
        if expire then call('PEXPIRE', key, window) end
      end
    end
    if counted then S[q + 2] = S[q + 2] + cost end
  end

  if reason == 0 and not admitted then
    reason = 1
    for i = 1, count do
      local q = 8 * (i - 1)
      if not S[q + 1] and S[q + 4] > retryAfter then retryAfter = S[q + 4] end
    end
    if mode == 'c' and first == 1 then
      local keep
      if exact then
        -- Exactly blockFor. The record outlives the block by the longest any state matters
        -- (two windows), so the first call after the block finds it and wipes the counts.
        retryAfter = blockFor
        keep = blockFor + 2 * longest
      else
        -- Blocked for blockFor, and at least until the refusing limit admits again, so the
        -- first call after the block is judged on a limit that has room: it ends cleanly.
        if blockFor > retryAfter then retryAfter = blockFor end
        keep = retryAfter
      end
      if expire then
        call('SET', KEYS[base + 1], now + retryAfter, 'PX', keep)
      else
        call('SET', KEYS[base + 1], now + retryAfter)
      end
    end
  end

  if reason == 0 then
    local reply, n = { now }, 1
    for i = 1, count do
      local q = 8 * (i - 1)
      local u = ceil(S[q + 2] - EPSILON)
      n = n + 1
      reply[n] = u > 0 and u or 0
      local code = L[7 * (i - 1) + 1]
      if code == 'a' or code == 'g' then
        n = n + 1
        reply[n] = S[q + 3]
      end
    end
    return reply
  end
  local reply = { -reason, now, retryAfter }
  for i = 1, count do
    local q = 8 * (i - 1)
    local u = ceil(S[q + 2] - EPSILON)
    reply[3 * i + 1] = u > 0 and u or 0
    reply[3 * i + 2] = S[q + 3]
    reply[3 * i + 3] = S[q + 4]
  end
  return reply
end

if #KEYS == stride then return decide(0) end
-- A batch: each identity is decided under pcall; failed() (parts/batch-failure.lua, prepended
-- by the registry) makes an error of its own data its reply and raises any other.
local replies = {}
for b = 0, #KEYS / stride - 1 do
  local ok, reply = pcall(decide, b * stride)
  replies[b + 1] = ok and reply or failed(reply)
end
return replies

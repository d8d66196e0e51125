--[[
  ratelimit: checks and consumes every limit of an identity atomically: either every limit
  admits the cost and all of them count it, or none counts anything. For any number of limits
  and for blocks; one identity, or a batch of identities decided in one call (each atomically).
  The single-limit scripts (ratelimit-fixed, -anchored, -sliding, -log) are this script's common
  cases, specialised. src/ratelimit/algorithms.ts is the same logic for the in-memory backend:
  change them together.

  KEYS[1..n]  per identity, in order: the block key (only when blockFor > 0), then one state
           key per limit, each ending in ':<code><window ms>' (code 'f' fixed window on the
           clock, 'a' fixed window anchored at the first hit, 's' sliding window, 'l' sliding
           log). Algorithms and windows are read from the first identity's key names, so names
           and arithmetic cannot disagree. A batch repeats the pattern once per identity.

  ARGV[1]  deadline, server epoch ms: a call that runs later (a reply its caller gave up on,
           replayed by ioredis after a reconnection) changes nothing and says so
  ARGV[2]  operation: mode letter and cost, 'c<cost>' consume (all or nothing), 'p<cost>' peek
           (read only), 'h<cost>' hit (count even when over, ignore blocks); '' means 'c1'
  ARGV[3]  blockFor in ms; 0 means no block (and no block key)
  ARGV[4]  block mode: 'r' (blocked at least until the refusing limit has room) or 'x' (exactly
           blockFor, then every count of the identity starts afresh)
  ARGV[5]  now in ms (tests), or '': replaces the server clock for the limits, and keys get no
           expiry (time is only what the caller says it is); the deadline still uses TIME
  ARGV[6..] the limit of each limit, in key order

  Reply    too late: a negative integer, minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them):
           admitted: { now, then per limit: used, and for an anchored limit also its start }
           refused: { -reason (1 by a limit, 2 blocked), now, retryAfter,
                      then per limit: used, resetAt, retryAfter }
           used counts the window after this call (sliding window: the estimate, rounded up);
           a limit admitted the cost exactly when its retryAfter is 0.

  State    fixed window: hash { <window number> = count }, expiring when the window ends
           anchored fixed window: hash { s = window start ms, c = count }, expiring with it
           sliding window: hash { w = window number, c = count, p = count of window w - 1 }
           sliding log: sorted set of admitted units (score ms, member TIME µs + sequence)
           block: the time (ms) until which the identity is blocked
]]
local t = redis.call('TIME')
local real = t[1] * 1000 + math.floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now = tonumber(ARGV[5])
-- Expiry only cleans up (the logic reads window numbers and times, never relies on a key having
-- gone), and Redis expires by its own clock, so a caller's clock turns it off.
local expire = not now
now = now or real

local mode, cost = 'c', 1
if ARGV[2] ~= '' then mode, cost = string.sub(ARGV[2], 1, 1), tonumber(string.sub(ARGV[2], 2)) end
local blockFor, exact = tonumber(ARGV[3]), ARGV[4] == 'x'
local first = blockFor > 0 and 1 or 0
local count = #ARGV - 5
local stride = first + count
-- Tolerates float rounding in the sliding-window estimate; both backends use it.
local EPSILON = 1e-9
local stamp, seq = t[1] .. string.format('%06d', t[2]) .. ':', 0

local codes, limits, windows, longest = {}, {}, {}, 0
for i = 1, count do
  local code, window = string.match(KEYS[first + i], ':(%a)(%d+)$')
  codes[i], limits[i], windows[i] = code, tonumber(ARGV[5 + i]), tonumber(window)
  if windows[i] > longest then longest = windows[i] end
end

local function decide(base)
  local reason, retryAfter = 0, 0
  if first == 1 then
    local blockedUntil = tonumber(redis.call('GET', KEYS[base + 1]))
    if blockedUntil and blockedUntil > now then
      if mode ~= 'h' then reason, retryAfter = 2, blockedUntil - now end
    elseif blockedUntil and exact then
      -- An exact block has ended: the identity starts afresh.
      redis.call('DEL', unpack(KEYS, base + 1, base + stride))
    end
  end
  -- A blocked identity and a peek only look; consume and hit may count.
  local counting = mode ~= 'p' and reason == 0

  -- Per limit: verdict, what it counts, reset time, retry delay, and the state to write back.
  local admit, used, reset, retry, index, stored, current, previous = {}, {}, {}, {}, {}, {}, {}, {}
  local admitted = reason == 0
  for i = 1, count do
    local code, limit, window, key = codes[i], limits[i], windows[i], KEYS[base + first + i]
    local w = math.floor(now / window)
    local start = w * window
    index[i] = w
    retry[i] = 0
    if code == 'f' then
      -- Counted first (one command on the hot path) and taken back below if the call is
      -- refused: the script is atomic, so nobody sees the difference.
      local c
      if counting then
        c = redis.call('HINCRBY', key, w, cost) - cost
        current[i] = c
      else
        c = tonumber(redis.call('HGET', key, w)) or 0
      end
      used[i] = c
      admit[i] = c + cost <= limit
      reset[i] = start + window
      if not admit[i] then retry[i] = start + window - now end
    elseif code == 'a' then
      -- s is the window's start; a window that has ended counts nothing, and the next counted
      -- hit starts a new one (a peek or a refusal starts nothing).
      local state = redis.call('HMGET', key, 's', 'c')
      local s, c = tonumber(state[1]), tonumber(state[2]) or 0
      if s and now < s + window then
        stored[i] = s
      else
        s, c = now, 0
      end
      index[i], used[i] = s, c
      admit[i] = c + cost <= limit
      reset[i] = s + window
      if not admit[i] then retry[i] = s + window - now end
    elseif code == 's' then
      local state = redis.call('HMGET', key, 'w', 'c', 'p')
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
      stored[i], current[i], previous[i] = sw, c, p
      local elapsed = now - start
      local u = p * (window - elapsed) / window + c
      used[i] = u
      admit[i] = u + cost <= limit + EPSILON
      reset[i] = start + window
      if not admit[i] then
        local r
        if c + cost <= limit and p > 0 then
          -- Room in this window once the previous window's weight has decayed.
          r = math.ceil(window - (limit - c - cost) * window / p) - elapsed
        else
          -- Wait into the next window, where this window's count becomes the weighted one.
          r = window - elapsed + math.max(0, math.ceil(window - (limit - cost) * window / c))
        end
        if r < 1 then r = 1 end
        retry[i] = r
      end
    else
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      local u = redis.call('ZCARD', key)
      used[i] = u
      admit[i] = u + cost <= limit
      if admit[i] then
        reset[i] = now + window
      else
        local k = u + cost - limit - 1
        retry[i] = redis.call('ZRANGE', key, k, k, 'WITHSCORES')[2] + window - now
        reset[i] = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2] + window
      end
    end
    if not admit[i] then admitted = false end
  end

  local counted = counting and (admitted or mode == 'h')
  for i = 1, count do
    local code, window, key = codes[i], windows[i], KEYS[base + first + i]
    if code == 'f' then
      if not counting then
        -- Only read.
      elseif not counted then
        if current[i] == 0 then
          redis.call('HDEL', key, index[i])
        else
          redis.call('HINCRBY', key, index[i], -cost)
        end
      elseif current[i] == 0 and expire then
        -- First count in this window: the key ends with it.
        redis.call('PEXPIRE', key, reset[i] - now)
      end
    elseif counted then
      if code == 'a' then
        if stored[i] then
          redis.call('HINCRBY', key, 'c', cost)
        else
          redis.call('HSET', key, 's', index[i], 'c', cost)
          if expire then redis.call('PEXPIRE', key, window) end
        end
      elseif code == 's' then
        if stored[i] == index[i] then
          redis.call('HINCRBY', key, 'c', cost)
        else
          redis.call('HSET', key, 'w', index[i], 'c', current[i] + cost, 'p', previous[i])
          if expire then redis.call('PEXPIRE', key, reset[i] + window - now) end
        end
      else
        -- NX never moves an existing entry; members are unique per unit (TIME µs + sequence),
        -- and should a clock stepped back collide, the loop adds fresh ones until all count.
        local missing = cost
        while missing > 0 do
          local members, m = {}, 0
          for _ = 1, math.min(missing, 500) do
            seq = seq + 1
            members[m + 1] = now
            members[m + 2] = stamp .. seq
            m = m + 2
          end
          missing = missing - redis.call('ZADD', key, 'NX', unpack(members, 1, m))
        end
        if expire then redis.call('PEXPIRE', key, window) end
      end
    end
    if counted then used[i] = used[i] + cost end
  end

  if reason == 0 and not admitted then
    reason = 1
    for i = 1, count do
      if not admit[i] and retry[i] > retryAfter then retryAfter = retry[i] end
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
        redis.call('SET', KEYS[base + 1], now + retryAfter, 'PX', keep)
      else
        redis.call('SET', KEYS[base + 1], now + retryAfter)
      end
    end
  end

  if reason == 0 then
    local reply = { now }
    for i = 1, count do
      reply[#reply + 1] = math.max(0, math.ceil(used[i] - EPSILON))
      if codes[i] == 'a' then reply[#reply + 1] = index[i] end
    end
    return reply
  end
  local reply = { -reason, now, retryAfter }
  for i = 1, count do
    reply[3 * i + 1] = math.max(0, math.ceil(used[i] - EPSILON))
    reply[3 * i + 2] = reset[i]
    reply[3 * i + 3] = retry[i]
  end
  return reply
end

if #KEYS == stride then return decide(0) end
local replies = {}
for b = 0, #KEYS / stride - 1 do
  replies[b + 1] = decide(b * stride)
end
return replies

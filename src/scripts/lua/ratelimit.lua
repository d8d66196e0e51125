--[[
  ratelimit: checks and consumes every limit of one identity atomically, in one round trip.
  Either every limit admits the cost and all of them count it, or none counts anything.
  src/ratelimit/algorithms.ts is the same logic for the in-memory backend: change both.

  KEYS[1]       block key: the time (ms) until which the identity is blocked
  KEYS[2..n+1]  one state key per limit, in the order of the limit triples in ARGV

  ARGV[1]  mode: 'consume' (all or nothing), 'peek' (read only) or 'hit' (count even when over)
  ARGV[2]  now in ms, or '' to use the server clock (TIME), so skewed instances agree. With a
           given clock (tests) keys get no expiry: time is only what the caller says it is.
  ARGV[3]  cost, an integer >= 1
  ARGV[4]  blockFor in ms; 0 disables blocking
  ARGV[5]  block mode: 'r' (blocked at least until the refusing limit has room) or 'x' (exactly
           blockFor, then every count starts afresh)
  ARGV[6..] per limit: algorithm ('f' fixed window on the clock, 'a' fixed window anchored at
           the first hit, 's' sliding window, 'l' sliding log), limit, window in ms

  Reply    { reason (0 allowed, 1 refused by a limit, 2 blocked), now ms, retryAfter ms,
             then per limit: used (after this call, rounded up), resetAt ms, retryAfter ms }
           A limit admitted the cost exactly when its retryAfter is 0 (a refusing limit always
           has one of at least 1 ms), and the call was admitted when reason is 0.

  State    fixed window: hash { <window number> = count }, expiring when the window ends
           anchored fixed window: hash { s = window start ms, c = count }, expiring with it
           sliding window: hash { w = window number, c = count, p = count of window w - 1 }
           sliding log: sorted set of call times (score and member prefix in ms)
]]
local now = tonumber(ARGV[2])
-- Expiry only cleans up (the logic reads window numbers and times, never relies on a key having
-- gone), and Redis expires by its own clock, so a caller's clock turns it off.
local expire = not now
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local mode, cost, blockFor, exact = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == 'x'
local count = #KEYS - 1
-- Tolerates float rounding in the sliding-window estimate; both backends use it.
local EPSILON = 1e-9

local reason, retryAfter = 0, 0
if blockFor > 0 then
  local blockedUntil = tonumber(redis.call('GET', KEYS[1]))
  if blockedUntil and blockedUntil > now then
    if mode ~= 'hit' then reason, retryAfter = 2, blockedUntil - now end
  elseif blockedUntil and exact then
    -- An exact block has ended: the identity starts afresh.
    redis.call('DEL', unpack(KEYS))
  end
end
-- A blocked identity and a peek only look; consume and hit may count.
local counting = mode ~= 'peek' and reason == 0

-- Per limit, in flat arrays: verdict, what it counts, reset time, retry delay; for windows the
-- window number, and for the sliding window the stored window number and counts.
local admit, used, reset, retry, index, stored, current, previous = {}, {}, {}, {}, {}, {}, {}, {}
local admitted = reason == 0

for i = 1, count do
  local a = 3 + i * 3
  local code, limit, window, key = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), KEYS[i + 1]
  local w = math.floor(now / window)
  local start = w * window
  index[i] = w
  retry[i] = 0
  if code == 'a' then
    -- s is the window's start; a window that has ended counts nothing, and the next counted hit
    -- starts a new one (a peek or a refusal starts nothing).
    local state = redis.call('HMGET', key, 's', 'c')
    local s, c = tonumber(state[1]), tonumber(state[2]) or 0
    if s and now < s + window then
      stored[i] = s
    else
      s, c = now, 0
    end
    index[i], current[i], used[i] = s, c, c
    admit[i] = c + cost <= limit
    reset[i] = s + window
    if not admit[i] then retry[i] = s + window - now end
  elseif code == 'f' then
    -- Counted optimistically (one call on the hot path) and taken back below if the call is
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

local counted = counting and (admitted or mode == 'hit')
local longest = 0
for i = 1, count do
  local a = 3 + i * 3
  local code, window, key = ARGV[a], tonumber(ARGV[a + 2]), KEYS[i + 1]
  if window > longest then longest = window end
  if code == 'a' then
    if counted then
      if stored[i] then
        redis.call('HINCRBY', key, 'c', cost)
      else
        redis.call('HSET', key, 's', index[i], 'c', cost)
        if expire then redis.call('PEXPIRE', key, window) end
      end
    end
  elseif code == 'f' then
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
    if code == 's' then
      if stored[i] == index[i] then
        redis.call('HINCRBY', key, 'c', cost)
      else
        redis.call('HSET', key, 'w', index[i], 'c', current[i] + cost, 'p', previous[i])
        if expire then redis.call('PEXPIRE', key, reset[i] + window - now) end
      end
    else
      local members, m = {}, 0
      for k = 1, cost do
        members[m + 1] = now
        members[m + 2] = now .. ':' .. (used[i] + k)
        m = m + 2
        if m >= 1000 then
          redis.call('ZADD', key, unpack(members, 1, m))
          m = 0
        end
      end
      if m > 0 then redis.call('ZADD', key, unpack(members, 1, m)) end
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
  if mode == 'consume' and blockFor > 0 then
    local keep
    if exact then
      -- Exactly blockFor. The record outlives the block by the longest any state matters (two
      -- windows), so the first call after the block finds it and wipes the counts.
      retryAfter = blockFor
      keep = blockFor + 2 * longest
    else
      -- Blocked for blockFor, and at least until the refusing limit admits again, so the first
      -- call after the block is judged on a limit that has room: the block ends cleanly.
      if blockFor > retryAfter then retryAfter = blockFor end
      keep = retryAfter
    end
    if expire then
      redis.call('SET', KEYS[1], now + retryAfter, 'PX', keep)
    else
      redis.call('SET', KEYS[1], now + retryAfter)
    end
  end
end

local reply = { reason, now, retryAfter }
for i = 1, count do
  reply[3 * i + 1] = math.max(0, math.ceil(used[i] - EPSILON))
  reply[3 * i + 2] = reset[i]
  reply[3 * i + 3] = retry[i]
end
return reply

--[[
  ratelimit-windows: several limits, each a fixed window on the clock or a sliding window, no
  block (the common multi-limit shape, e.g. 10/s + 100/min + 10,000/day), for one identity or a
  batch of identities decided in one call (each atomically and exactly). The general script
  (ratelimit.lua) decides the same and is the reference: this one drops what these shapes never
  need (block key, first-hit windows, GCRA, logs) so a check costs Redis about a fifth less.
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change all three.

  KEYS[1..n]  per identity, one state key per limit, in the order of the limits (a batch: the
           identities' keys one after the other)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  operation: mode letter and cost, 'c<cost>' consume (all or nothing), 'p<cost>' peek,
           'h<cost>' hit (count even when over); '' stands for 'c1'
  ARGV[3]  now in ms (tests), or '': replaces the server clock for the limits, and keys get no
           expiry; the deadline still uses TIME
  ARGV[4..] per limit: its shape, 'f<window ms>' (fixed window on the clock) or 's<window ms>'
           (sliding window), then its limit

  Reply    too late: minus the server time in ms. Otherwise one flat array: per identity, in
           order, admitted: now, then per limit: used (1 + n values)
           refused: -1, now, retryAfter, then per limit: used, resetAt, retryAfter (3 + 3n values)
           (one identity: the general script's reply; a batch: theirs laid end to end, which
           costs Redis a table less per identity than an array of arrays; an identity whose
           decision failed, e.g. WRONGTYPE, is one value: the error)

  State    as the general script's: fixed window hash { <window number> = count } expiring when
           the window ends; sliding window hash { w = window number, c = count, p = count of
           window w - 1 }, expiring when window w + 1 ends
]]
-- Globals are slow to reach in a Redis script: keep them in locals. Numbers passed to
-- redis.call are formatted on every call, so the ones used for every identity are strings.
local call, tonumber, tostring, floor, ceil, sub = redis.call, tonumber, tostring, math.floor, math.ceil, string.sub
local t = call('TIME')
local real = t[1] * 1000 + floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now = tonumber(ARGV[3])
local expire = not now
now = now or real

local mode, cost, costArg = 'c', 1, '1'
if ARGV[2] ~= '' then
  mode, costArg = sub(ARGV[2], 1, 1), sub(ARGV[2], 2)
  cost = tonumber(costArg)
end
local counting = mode ~= 'p'
local count = (#ARGV - 3) / 2
-- Tolerates float rounding in the sliding-window estimate; every backend uses it.
local EPSILON = 1e-9

-- Per limit, once for every identity: sliding or not, limit, window, window number, its start,
-- the window number as a hash field.
local SLIDING, LIMIT, WINDOW, W, START, FIELD = {}, {}, {}, {}, {}, {}
for i = 1, count do
  local shape = ARGV[2 + 2 * i]
  local window = tonumber(sub(shape, 2))
  local w = floor(now / window)
  SLIDING[i], LIMIT[i], WINDOW[i], W[i], START[i], FIELD[i] =
    sub(shape, 1, 1) == 's', tonumber(ARGV[3 + 2 * i]), window, w, w * window, tostring(w)
end
-- Per limit, rewritten for each identity: count before this call (sliding: the estimate), retry
-- delay (0: admits), and for a sliding window its stored window number, current and previous count.
local USED, RETRY, STORED, CURRENT, PREVIOUS = {}, {}, {}, {}, {}
-- The reply, and how many values it holds.
local out, n = {}, 0

local function decide(base)
  local admitted, retryAfter = true, 0
  for i = 1, count do
    local key, limit, window = KEYS[base + i], LIMIT[i], WINDOW[i]
    local used, retry = 0, 0
    if SLIDING[i] then
      local state = call('HMGET', key, 'w', 'c', 'p')
      local sw, c, w = tonumber(state[1]), tonumber(state[2]) or 0, W[i]
      -- The stored p belongs to window sw - 1; the count of window w - 1 becomes it.
      local p = 0
      if sw == w then
        p = tonumber(state[3]) or 0
      elseif sw == w - 1 then
        p, c = c, 0
      else
        c = 0
      end
      STORED[i], CURRENT[i], PREVIOUS[i] = sw, c, p
      local elapsed = now - START[i]
      used = p * (window - elapsed) / window + c
      if used + cost > limit + EPSILON then
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
      -- Counted first (one command on the hot path) and taken back below if the call is
      -- refused: the script is atomic, so nobody sees the difference.
      if counting then
        used = call('HINCRBY', key, FIELD[i], costArg) - cost
      else
        used = tonumber(call('HGET', key, FIELD[i])) or 0
      end
      if used + cost > limit then retry = START[i] + window - now end
    end
    USED[i], RETRY[i] = used, retry
    if retry > 0 then
      admitted = false
      if retry > retryAfter then retryAfter = retry end
    end
  end

  local counted = counting and (admitted or mode == 'h')
  for i = 1, count do
    local key = KEYS[base + i]
    if SLIDING[i] then
      if counted then
        if STORED[i] == W[i] then
          call('HINCRBY', key, 'c', costArg)
        else
          call('HSET', key, 'w', FIELD[i], 'c', CURRENT[i] + cost, 'p', PREVIOUS[i])
          if expire then call('PEXPIRE', key, START[i] + 2 * WINDOW[i] - now) end
        end
      end
    elseif counting then
      if not counted then
        if USED[i] == 0 then
          call('HDEL', key, FIELD[i])
        else
          call('HINCRBY', key, FIELD[i], -cost)
        end
      elseif USED[i] == 0 and expire then
        -- First count in this window: the key ends with it.
        call('PEXPIRE', key, START[i] + WINDOW[i] - now)
      end
    end
    if counted then USED[i] = USED[i] + cost end
  end

  if admitted then
    n = n + 1
    out[n] = now
    for i = 1, count do
      local u = ceil(USED[i] - EPSILON)
      out[n + i] = u > 0 and u or 0
    end
    n = n + count
    return
  end
  out[n + 1], out[n + 2], out[n + 3] = -1, now, retryAfter
  n = n + 3
  for i = 1, count do
    local u = ceil(USED[i] - EPSILON)
    out[n + 1], out[n + 2], out[n + 3] = u > 0 and u or 0, START[i] + WINDOW[i], RETRY[i]
    n = n + 3
  end
end

if #KEYS == count then
  decide(0)
  return out
end
-- A batch: each identity is decided under pcall; failed() (parts/batch-failure.lua, prepended
-- by the registry) makes an error of its own data its reply, one value (decide writes its reply
-- after its last Redis call), and raises any other.
for base = 0, #KEYS - count, count do
  local ok, failure = pcall(decide, base)
  if not ok then
    n = n + 1
    out[n] = failed(failure)
  end
end
return out

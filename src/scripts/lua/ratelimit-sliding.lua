--[[
  ratelimit-sliding: one sliding window (weighted two-window counter), no block, for one identity
  or a batch of identities decided in one call (each atomically and exactly).
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity (…:s<window ms>)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  window in ms
  ARGV[4]  optional operation: 'c<cost>' consume, 'p<cost>' peek, 'h<cost>' hit; default 'c1'
  ARGV[5]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry; the deadline still uses TIME

  Reply    too late: minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them, an
           identity whose decision failed, e.g. WRONGTYPE, as an error in its place):
           admitted with fewer than 2048 used: used * 2^42 + now
           admitted otherwise: { now, used }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }
           where used is the estimate after this call, rounded up.

  State    hash { w = window number, c = count, p = count of window w - 1 }
]]
-- Globals are slow to reach in a Redis script: keep them in locals. Numbers passed to
-- redis.call are formatted on every call, so the ones used for every identity are strings.
local call, tonumber, floor, ceil = redis.call, tonumber, math.floor, math.ceil
local t = call('TIME')
local real = t[1] * 1000 + floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now, expire = real, true
if ARGV[5] then now, expire = tonumber(ARGV[5]), false end

local limit, window, mode, cost, costArg = tonumber(ARGV[2]), tonumber(ARGV[3]), 'c', 1, '1'
if ARGV[4] and ARGV[4] ~= '' then
  mode, costArg = string.sub(ARGV[4], 1, 1), string.sub(ARGV[4], 2)
  cost = tonumber(costArg)
end
local w = floor(now / window)
local start = w * window
local elapsed = now - start
local reset = start + window
-- Tolerates float rounding in the estimate; both backends use it.
local EPSILON = 1e-9
local function decide(key)
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
  local used = p * (window - elapsed) / window + c
  local admit = used + cost <= limit + EPSILON
  if mode == 'h' or (admit and mode == 'c') then
    if sw == w then
      call('HINCRBY', key, 'c', costArg)
    else
      call('HSET', key, 'w', w, 'c', c + cost, 'p', p)
      if expire then call('PEXPIRE', key, reset + window - now) end
    end
    used = used + cost
  end
  used = ceil(used - EPSILON)
  if used < 0 then used = 0 end
  if not admit then
    local r
    if c + cost <= limit and p > 0 then
      -- Room in this window once the previous window's weight has decayed.
      r = ceil(window - (limit - c - cost) * window / p) - elapsed
    else
      -- Wait into the next window, where this window's count becomes the weighted one.
      local wait = ceil(window - (limit - cost) * window / c)
      r = window - elapsed + (wait > 0 and wait or 0)
    end
    if r < 1 then r = 1 end
    return { -1, now, r, used, reset, r }
  end
  if used < 2048 then return used * 4398046511104 + now end
  return { now, used }
end

if #KEYS == 1 then return decide(KEYS[1]) end
-- A batch: each identity is decided under pcall; failed() (parts/batch-failure.lua, prepended
-- by the registry) makes an error of its own data its reply and raises any other.
local replies = {}
for i = 1, #KEYS do
  local ok, reply = pcall(decide, KEYS[i])
  replies[i] = ok and reply or failed(reply)
end
return replies

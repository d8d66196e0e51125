--[[
  ratelimit-sliding: one sliding window (weighted two-window counter), no block, for one identity
  or a batch of identities decided in one call (each atomically and exactly).
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity, each ending in ':s<window ms>' (the window is read
              from the first key's name)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  optional operation: 'c<cost>' consume, 'p<cost>' peek, 'h<cost>' hit; default 'c1'
  ARGV[4]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry; the deadline still uses TIME

  Reply    too late: minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them):
           admitted with fewer than 2048 used: used * 2^42 + now
           admitted otherwise: { now, used }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }
           where used is the estimate after this call, rounded up.

  State    hash { w = window number, c = count, p = count of window w - 1 }
]]
local t = redis.call('TIME')
local real = t[1] * 1000 + math.floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now, expire = real, true
if ARGV[4] then now, expire = tonumber(ARGV[4]), false end

local limit, mode, cost = tonumber(ARGV[2]), 'c', 1
if ARGV[3] and ARGV[3] ~= '' then mode, cost = string.sub(ARGV[3], 1, 1), tonumber(string.sub(ARGV[3], 2)) end
local window = tonumber(string.match(KEYS[1], '(%d+)$'))
local w = math.floor(now / window)
local start = w * window
local elapsed = now - start
local reset = start + window
-- Tolerates float rounding in the estimate; both backends use it.
local EPSILON = 1e-9
local PACK = 4398046511104

local replies = {}
for i = 1, #KEYS do
  local key = KEYS[i]
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
  local used = p * (window - elapsed) / window + c
  local admit = used + cost <= limit + EPSILON
  if mode == 'h' or (admit and mode == 'c') then
    if sw == w then
      redis.call('HINCRBY', key, 'c', cost)
    else
      redis.call('HSET', key, 'w', w, 'c', c + cost, 'p', p)
      if expire then redis.call('PEXPIRE', key, reset + window - now) end
    end
    used = used + cost
  end
  used = math.max(0, math.ceil(used - EPSILON))
  if not admit then
    local r
    if c + cost <= limit and p > 0 then
      -- Room in this window once the previous window's weight has decayed.
      r = math.ceil(window - (limit - c - cost) * window / p) - elapsed
    else
      -- Wait into the next window, where this window's count becomes the weighted one.
      r = window - elapsed + math.max(0, math.ceil(window - (limit - cost) * window / c))
    end
    if r < 1 then r = 1 end
    replies[i] = { -1, now, r, used, reset, r }
  elseif used < 2048 then
    replies[i] = used * PACK + now
  else
    replies[i] = { now, used }
  end
end
if #KEYS == 1 then return replies[1] end
return replies

--[[
  ratelimit-anchored: one fixed window anchored at the identity's first counted hit (how
  @nestjs/throttler, express-rate-limit and rate-limit-redis count), no block, for one identity
  or a batch of identities decided in one call (each atomically and exactly).
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity (…:a<window ms>)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  window in ms
  ARGV[4]  optional operation: 'c<cost>' consume, 'p<cost>' peek, 'h<cost>' hit; default 'c1'
  ARGV[5]  optional now in ms (tests), or '': replaces the server clock for the limit, and keys
           get no expiry; the deadline still uses TIME
  ARGV[6]  optional: what a counted hit that leaves the count above the limit does to the window
           (as @fastify/rate-limit counts): 'r' restarts it at that hit (continueExceeding), 'b'
           restarts it with a length of window * 2^(count - limit - 1) (exponentialBackoff);
           absent, nothing

  Reply    too late: minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them, an
           identity whose decision failed, e.g. WRONGTYPE, as an error in its place):
           admitted: { now, used, resetAt } (the window's end: a backoff may have made it longer than
           ARGV[3])
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }

  State    hash { s = window start ms, c = count, l = window length when a hit over the limit
           changed it }, expiring when the window ends
]]
-- Globals are slow to reach in a Redis script: keep them in locals. Numbers passed to
-- redis.call are formatted on every call, so the ones used for every identity are strings.
local call, tonumber, floor = redis.call, tonumber, math.floor
local t = call('TIME')
local real = t[1] * 1000 + floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now, expire = real, true
if ARGV[5] and ARGV[5] ~= '' then now, expire = tonumber(ARGV[5]), false end
local exceeded = ARGV[6]
-- The longest a backoff window grows: 10 years, as any duration option.
local MAX_WINDOW = 315360000000

local limit, window, mode, cost, costArg = tonumber(ARGV[2]), tonumber(ARGV[3]), 'c', 1, '1'
if ARGV[4] and ARGV[4] ~= '' then
  mode, costArg = string.sub(ARGV[4], 1, 1), string.sub(ARGV[4], 2)
  cost = tonumber(costArg)
end

local function decide(key)
  local state = call('HMGET', key, 's', 'c', 'l')
  local s, used, length = tonumber(state[1]), tonumber(state[2]) or 0, tonumber(state[3]) or window
  -- A window that has ended counts nothing; the next counted hit starts a new one (a peek or a
  -- refusal starts nothing).
  local running = s and now < s + length
  if not running then s, used, length = now, 0, window end
  local admit = used + cost <= limit
  if mode == 'h' or (admit and mode == 'c') then
    if running then
      call('HINCRBY', key, 'c', costArg)
    else
      call('HSET', key, 's', s, 'c', costArg)
      if state[3] then call('HDEL', key, 'l') end
      if expire then call('PEXPIRE', key, window) end
    end
    used = used + cost
    if exceeded and used > limit then
      -- Over the limit: the window restarts at this hit, or restarts longer each time.
      s = now
      if exceeded == 'r' then
        length = window
      else
        length = window * 2 ^ (used - limit - 1)
        if length > MAX_WINDOW then length = MAX_WINDOW end
      end
      call('HSET', key, 's', s, 'l', length)
      if expire then call('PEXPIRE', key, length) end
    end
  end
  if admit then return { now, used, s + length } end
  local r = s + length - now
  return { -1, now, r, used, s + length, r }
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

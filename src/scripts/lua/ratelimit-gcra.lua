--[[
  ratelimit-gcra: one GCRA limit, no block, for one identity or a batch of identities decided in
  one call (each atomically and exactly: the script runs alone). The single-limit case of
  ratelimit.lua, specialised; src/ratelimit/algorithms.ts decides the same for the in-memory
  backend: change all three together.

  KEYS[1..n]  one state key per identity (…:g<window ms>)

  ARGV[1]  deadline, server epoch ms: a call that runs later (a reply its caller gave up on,
           replayed by ioredis after a reconnection) changes nothing and says so
  ARGV[2]  limit (units per window)
  ARGV[3]  window in ms
  ARGV[4]  operation: mode letter and cost, 'c<cost>' consume, 'p<cost>' peek (read only),
           'h<cost>' hit (count even when over); '' means 'c1'
  ARGV[5]  now in ms (tests), or '': replaces the server clock, and keys get no expiry (time is
           only what the caller says it is); the deadline still uses TIME
  ARGV[6]  burst (units admitted at once)

  Reply    too late: a negative integer, minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them, an
           identity whose decision failed, e.g. WRONGTYPE, as an error in its place):
           admitted: { now, used, resetAt }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }
           where used is the units in the bucket after this call, rounded up, and resetAt is
           when the bucket is full again.

  State    hash { t = time (ms) of its last change, d = how far the theoretical arrival time was
           then ahead of t, in 1/limit ms (cost * window: the bucket's level) }, expiring when
           the bucket is full again
]]
local call, tonumber, floor, ceil = redis.call, tonumber, math.floor, math.ceil
local t = call('TIME')
local real = t[1] * 1000 + floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now, expire = real, true
if ARGV[5] ~= '' then now, expire = tonumber(ARGV[5]), false end

local limit, window, mode, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), 'c', 1
if ARGV[4] ~= '' then mode, cost = string.sub(ARGV[4], 1, 1), tonumber(string.sub(ARGV[4], 2)) end
-- In units of 1/limit ms one unit of cost is `window`: every value is an integer under 2^53.
local span, step = tonumber(ARGV[6]) * window, cost * window

local function decide(key)
  -- A state this script cannot have written (NaN, infinite, negative, past any burst) counts
  -- as none; the level drains at limit units per ms since the last change.
  local state = call('HMGET', key, 't', 'd')
  local st, sd = tonumber(state[1]), tonumber(state[2])
  local ahead = 0
  if st and sd and st == st and sd >= 0 and sd <= 1125899906842624 then
    local elapsed = now - st
    if elapsed < 0 then elapsed = 0 end
    ahead = sd - elapsed * limit
    if ahead < 0 then ahead = 0 end
  end
  local after = ahead + step
  local used = ceil(ahead / window)
  local retry = 0
  if after > span then retry = ceil((after - span) / limit) end
  if mode == 'p' or (retry > 0 and mode ~= 'h') then
    local reset = now + ceil(ahead / limit)
    if retry > 0 then return { -1, now, retry, used, reset, retry } end
    return { now, used, reset }
  end
  call('HSET', key, 't', now, 'd', after)
  local full = ceil(after / limit)
  if expire then call('PEXPIRE', key, full) end
  if retry > 0 then return { -1, now, retry, used + cost, now + full, retry } end
  return { now, used + cost, now + full }
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

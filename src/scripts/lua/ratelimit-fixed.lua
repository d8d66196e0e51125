--[[
  ratelimit-fixed: one fixed window aligned to the epoch, no block, for one identity or a batch
  of identities decided in one call (each atomically and exactly: the script runs alone). The
  hot path of the common limiter, so it sends and returns as little as it can.
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity (…:f<window ms>)

  ARGV[1]  deadline, server epoch ms: a call that runs later (a reply its caller gave up on,
           replayed by ioredis after a reconnection) changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  window in ms
  ARGV[4]  optional operation: mode letter and cost, 'c<cost>' consume (all or nothing),
           'p<cost>' peek (read only), 'h<cost>' hit (count even when over); default 'c1'
  ARGV[5]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry (time is only what the caller says it is); the deadline still uses TIME

  Reply    too late: a negative integer, minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them, an
           identity whose decision failed, e.g. WRONGTYPE, as an error in its place):
           admitted with fewer than 2048 used: used * 2^42 + now (one integer)
           admitted otherwise: { now, used }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }
           where used counts the window after this call.

  State    hash { <window number> = count }, expiring when the window ends
]]
-- Globals are slow to reach in a Redis script: keep them in locals. Numbers passed to
-- redis.call are formatted on every call, so the ones used for every identity are strings.
local call, tonumber, floor = redis.call, tonumber, math.floor
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
local reset = (w + 1) * window
local field = tostring(w)

local function decide(key)
  local used, admit
  if mode == 'p' then
    used = tonumber(call('HGET', key, field)) or 0
    admit = used + cost <= limit
  else
    -- Counted first (one command on the hot path) and taken back if refused: the script is
    -- atomic, so nobody sees the difference.
    used = call('HINCRBY', key, field, costArg)
    admit = used <= limit
    if admit or mode == 'h' then
      if used == cost and expire then call('PEXPIRE', key, reset - now) end
    else
      if used == cost then
        call('HDEL', key, field)
      else
        call('HINCRBY', key, field, -cost)
      end
      used = used - cost
    end
  end
  if not admit then return { -1, now, reset - now, used, reset, reset - now } end
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

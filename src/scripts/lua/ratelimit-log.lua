--[[
  ratelimit-log: one sliding log, no block, for one identity or a batch of identities decided in
  one call (each atomically and exactly).
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity (…:l<window ms>)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  window in ms
  ARGV[4]  optional operation: 'c<cost>' consume or 'p<cost>' peek; default 'c1'
  ARGV[5]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry; the deadline still uses TIME

  Reply    too late: minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them, an
           identity whose decision failed, e.g. WRONGTYPE, as an error in its place):
           admitted with fewer than 2048 used: used * 2^42 + now
           admitted otherwise: { now, used }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }

  State    sorted set of admitted units: score = time in ms, member = the server's TIME in µs
           and a sequence number, unique per unit even within one millisecond and after a refund
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
-- TIME in µs moves on between script runs, so with a sequence number a member is never reused.
local stamp, seq = t[1] .. string.format('%06d', t[2]) .. ':', 0

local function decide(key)
  call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = call('ZCARD', key)
  if used + cost <= limit then
    if mode == 'c' then
      -- NX never moves an existing entry; only a server clock stepped back into an earlier
      -- run's microsecond could collide, and then the loop adds fresh members until all count.
      local missing = cost
      while missing > 0 do
        local members, m = {}, 0
        for _ = 1, math.min(missing, 500) do
          seq = seq + 1
          members[m + 1] = now
          members[m + 2] = stamp .. seq
          m = m + 2
        end
        missing = missing - call('ZADD', key, 'NX', unpack(members, 1, m))
      end
      if expire then call('PEXPIRE', key, window) end
      used = used + cost
    end
    if used < 2048 then return used * 4398046511104 + now end
    return { now, used }
  end
  local k = used + cost - limit - 1
  local r = call('ZRANGE', key, k, k, 'WITHSCORES')[2] + window - now
  local reset = call('ZRANGE', key, -1, -1, 'WITHSCORES')[2] + window
  return { -1, now, r, used, reset, r }
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

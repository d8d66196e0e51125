--[[
  ratelimit-log: one sliding log, no block, for one identity or a batch of identities decided in
  one call (each atomically and exactly).
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity, each ending in ':l<window ms>' (the window is read
              from the first key's name)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  optional operation: 'c<cost>' consume or 'p<cost>' peek; default 'c1'
  ARGV[4]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry; the deadline still uses TIME

  Reply    too late: minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them):
           admitted with fewer than 2048 used: used * 2^42 + now
           admitted otherwise: { now, used }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }

  State    sorted set of admitted units: score = time in ms, member = the server's TIME in µs
           and a sequence number, unique per unit even within one millisecond and after a refund
]]
local t = redis.call('TIME')
local real = t[1] * 1000 + math.floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now, expire = real, true
if ARGV[4] then now, expire = tonumber(ARGV[4]), false end

local limit, mode, cost = tonumber(ARGV[2]), 'c', 1
if ARGV[3] and ARGV[3] ~= '' then mode, cost = string.sub(ARGV[3], 1, 1), tonumber(string.sub(ARGV[3], 2)) end
local window = tonumber(string.match(KEYS[1], '(%d+)$'))
local PACK = 4398046511104
-- TIME in µs moves on between script runs, so with a sequence number a member is never reused.
local stamp, seq = t[1] .. string.format('%06d', t[2]) .. ':', 0

local replies = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local used = redis.call('ZCARD', key)
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
        missing = missing - redis.call('ZADD', key, 'NX', unpack(members, 1, m))
      end
      if expire then redis.call('PEXPIRE', key, window) end
      used = used + cost
    end
    if used < 2048 then
      replies[i] = used * PACK + now
    else
      replies[i] = { now, used }
    end
  else
    local k = used + cost - limit - 1
    local r = redis.call('ZRANGE', key, k, k, 'WITHSCORES')[2] + window - now
    local reset = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2] + window
    replies[i] = { -1, now, r, used, reset, r }
  end
end
if #KEYS == 1 then return replies[1] end
return replies

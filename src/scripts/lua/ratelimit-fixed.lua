--[[
  ratelimit-fixed: one fixed window aligned to the epoch, no block, for one identity or a batch
  of identities decided in one call (each atomically and exactly: the script runs alone). The
  hot path of the common limiter, so it sends and returns as little as it can.
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity, each ending in ':f<window ms>'; the window is read
              from the first key's name, so the name and the arithmetic cannot disagree

  ARGV[1]  deadline, server epoch ms: a call that runs later (a reply its caller gave up on,
           replayed by ioredis after a reconnection) changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  optional operation: mode letter and cost, 'c<cost>' consume (all or nothing),
           'p<cost>' peek (read only), 'h<cost>' hit (count even when over); default 'c1'
  ARGV[4]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry (time is only what the caller says it is); the deadline still uses TIME

  Reply    too late: a negative integer, minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them):
           admitted with fewer than 2048 used: used * 2^42 + now (one integer)
           admitted otherwise: { now, used }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }
           where used counts the window after this call.

  State    hash { <window number> = count }, expiring when the window ends
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
local reset = (w + 1) * window
local PACK = 4398046511104

local replies = {}
for i = 1, #KEYS do
  local key, used, admit = KEYS[i], 0, false
  if mode == 'p' then
    used = tonumber(redis.call('HGET', key, w)) or 0
    admit = used + cost <= limit
  else
    -- Counted first (one command on the hot path) and taken back if refused: the script is
    -- atomic, so nobody sees the difference.
    used = redis.call('HINCRBY', key, w, cost)
    admit = used <= limit
    if admit or mode == 'h' then
      if used == cost and expire then redis.call('PEXPIRE', key, reset - now) end
    else
      if used == cost then
        redis.call('HDEL', key, w)
      else
        redis.call('HINCRBY', key, w, -cost)
      end
      used = used - cost
    end
  end
  if not admit then
    replies[i] = { -1, now, reset - now, used, reset, reset - now }
  elseif used < 2048 then
    replies[i] = used * PACK + now
  else
    replies[i] = { now, used }
  end
end
if #KEYS == 1 then return replies[1] end
return replies

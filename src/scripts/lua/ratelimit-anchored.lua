--[[
  ratelimit-anchored: one fixed window anchored at the identity's first counted hit (how
  @nestjs/throttler, express-rate-limit and rate-limit-redis count), no block, for one identity
  or a batch of identities decided in one call (each atomically and exactly).
  src/ratelimit/algorithms.ts decides the same for the in-memory backend: change both.

  KEYS[1..n]  one state key per identity, each ending in ':a<window ms>' (the window is read
              from the first key's name)

  ARGV[1]  deadline, server epoch ms: a call that runs later changes nothing and says so
  ARGV[2]  limit
  ARGV[3]  optional operation: 'c<cost>' consume, 'p<cost>' peek, 'h<cost>' hit; default 'c1'
  ARGV[4]  optional now in ms (tests): replaces the server clock for the limit, and keys get no
           expiry; the deadline still uses TIME

  Reply    too late: minus the server time in ms.
           Otherwise, per identity (one identity: the value itself; a batch: an array of them):
           admitted: { now, used, window start }
           refused: { -1, now, retryAfter, used, resetAt, retryAfter }

  State    hash { s = window start ms, c = count }, expiring when the window ends
]]
local t = redis.call('TIME')
local real = t[1] * 1000 + math.floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now, expire = real, true
if ARGV[4] then now, expire = tonumber(ARGV[4]), false end

local limit, mode, cost = tonumber(ARGV[2]), 'c', 1
if ARGV[3] and ARGV[3] ~= '' then mode, cost = string.sub(ARGV[3], 1, 1), tonumber(string.sub(ARGV[3], 2)) end
local window = tonumber(string.match(KEYS[1], '(%d+)$'))

local replies = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local state = redis.call('HMGET', key, 's', 'c')
  local s, used = tonumber(state[1]), tonumber(state[2]) or 0
  -- A window that has ended counts nothing; the next counted hit starts a new one (a peek or a
  -- refusal starts nothing).
  local running = s and now < s + window
  if not running then s, used = now, 0 end
  local admit = used + cost <= limit
  if mode == 'h' or (admit and mode == 'c') then
    if running then
      redis.call('HINCRBY', key, 'c', cost)
    else
      redis.call('HSET', key, 's', s, 'c', cost)
      if expire then redis.call('PEXPIRE', key, window) end
    end
    used = used + cost
  end
  if admit then
    replies[i] = { now, used, s }
  else
    local r = s + window - now
    replies[i] = { -1, now, r, used, s + window, r }
  end
end
if #KEYS == 1 then return replies[1] end
return replies

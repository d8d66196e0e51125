--[[
  ratelimit-refund: gives back cost to every limit of one identity (a call that should not
  count, e.g. a request that failed), never below zero. src/ratelimit/algorithms.ts mirrors it.

  KEYS[1..n]  one state key per limit, each ending in ':<code><window ms>' (see ratelimit.lua)

  ARGV[1]  deadline, server epoch ms: a refund that runs later gives nothing back and says so
  ARGV[2]  cost to give back, an integer >= 1
  ARGV[3]  now in ms (tests), or '' for the server clock
  ARGV[4..] per key, its limit; a GCRA key (':g<window ms>') needs it, the others ignore it

  Reply    the number of limits that gave something back; too late: minus the server time in ms
]]
local t = redis.call('TIME')
local real = t[1] * 1000 + math.floor(t[2] / 1000)
if real > tonumber(ARGV[1]) then return -real end
local now = tonumber(ARGV[3]) or real
local cost = tonumber(ARGV[2])
local refunded = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local code, window = string.match(key, ':(%a)(%d+)$')
  window = tonumber(window)
  local index = math.floor(now / window)
  if code == 'l' then
    -- The newest entries are this identity's latest calls.
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if #redis.call('ZPOPMAX', key, cost) > 0 then refunded = refunded + 1 end
  elseif code == 'f' then
    local c = tonumber(redis.call('HGET', key, index))
    if c and c > 0 then
      redis.call('HSET', key, index, math.max(0, c - cost))
      refunded = refunded + 1
    end
  elseif code == 'g' then
    -- Moves the theoretical arrival time back by the cost, never before now (a full bucket);
    -- the same integer arithmetic as ratelimit.lua.
    local limit = tonumber(ARGV[3 + i])
    local state = redis.call('HMGET', key, 't', 'd')
    local st, sd = tonumber(state[1]), tonumber(state[2])
    -- A state ratelimit.lua cannot have written counts as none (as it does there).
    if st and sd and limit and st == st and sd >= 0 and sd <= 1125899906842624 then
      local ahead = sd - math.max(0, now - st) * limit
      if ahead > 0 then
        local left = ahead - cost * window
        if left <= 0 then
          redis.call('DEL', key)
        else
          redis.call('HSET', key, 't', now, 'd', left)
          if ARGV[3] == '' then redis.call('PEXPIRE', key, math.ceil(left / limit)) end
        end
        refunded = refunded + 1
      end
    end
  elseif code == 'a' then
    -- Only a window that is still running gives back (l: its length, if a hit over the limit
    -- changed it).
    local state = redis.call('HMGET', key, 's', 'c', 'l')
    local s, c = tonumber(state[1]), tonumber(state[2])
    if s and c and c > 0 and now < s + (tonumber(state[3]) or window) then
      redis.call('HSET', key, 'c', math.max(0, c - cost))
      refunded = refunded + 1
    end
  else
    -- Only the current window's count is given back: the sliding window's older calls have
    -- partly left the window already.
    local stored = redis.call('HMGET', key, 'w', 'c')
    local w, c = tonumber(stored[1]), tonumber(stored[2])
    if c and c > 0 and w == index then
      redis.call('HSET', key, 'c', math.max(0, c - cost))
      refunded = refunded + 1
    end
  end
end
return refunded

--[[
  health-probe: proves a node accepts writes and reads its clock, in one round trip.

  KEYS[1]  probe key, under the caller's prefix; on Cluster its hash tag picks the master to probe
  ARGV[1]  probe key time-to-live, milliseconds

  Reply    { seconds, microseconds } of the server clock (TIME), as integers.
           Errors (OOM, READONLY, MISCONF…) propagate: the node cannot take writes.
]]
local now = redis.call('TIME')
redis.call('SET', KEYS[1], now[1], 'PX', ARGV[1])
return { tonumber(now[1]), tonumber(now[2]) }

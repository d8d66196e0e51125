--[[
  cache-tags: reads the current version of each tag, creating a tag that does not exist (yet, or
  any more after an eviction) at the server's time, and keeps every tag alive at least as long as
  the entries that will record it. Versions only grow, so an evicted and recreated tag is newer
  than any entry written under it: doubt is a miss, never a stale hit.

  KEYS[1..n]  tag version keys (on Cluster, one call per hash slot)
  ARGV[1]     lifetime in ms: each tag key lives at least this long from now

  Reply       { version of KEYS[1], …, version of KEYS[n] }, server time in microseconds
]]
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local lifetime = tonumber(ARGV[1])
local versions = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], now, 'NX', 'PX', lifetime) then
    versions[i] = now
  else
    versions[i] = tonumber(redis.call('GET', KEYS[i]))
    redis.call('PEXPIRE', KEYS[i], lifetime, 'GT')
  end
end
return versions

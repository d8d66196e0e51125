--[[
  cache-invalidate-tags: moves each tag to a new, higher version, so every entry written under
  an older one reads as stale. One command per hash slot, however many entries carry the tags.

  KEYS[1..n]  tag version keys (on Cluster, one call per hash slot)
  ARGV[1]     lifetime in ms: each tag key lives at least this long from now

  Reply       { new version of KEYS[1], …, new version of KEYS[n] }, server time in microseconds
]]
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local lifetime = tonumber(ARGV[1])
local versions = {}
for i = 1, #KEYS do
  local version = math.max(now, (tonumber(redis.call('GET', KEYS[i])) or 0) + 1)
  local ttl = math.max(redis.call('PTTL', KEYS[i]), lifetime)
  redis.call('SET', KEYS[i], version, 'PX', ttl)
  versions[i] = version
end
return versions

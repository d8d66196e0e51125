--[[
  cache-tags-since: reads the versions of tags a loader chose after it ran (adaptive tags), and
  says which of them may have been invalidated while it ran. A tag that exists with a version
  newer than the load's start (ARGV[2]) was invalidated (or recreated) since: the value loaded may
  be older than that invalidation, so the caller must not store it. A tag that does not exist is
  created at the server's time, like cache-tags, and keeps every tag alive at least as long as the
  entry that will record it.

  KEYS[1..n]  tag version keys (on Cluster, one call per hash slot)
  ARGV[1]     lifetime in ms: each tag key lives at least this long from now
  ARGV[2]     when the load started, server time in microseconds (an early estimate)

  Reply       { now, version of KEYS[1], …, version of KEYS[n] }: now is the server's time in
              epoch ms; a version is in microseconds, or -1 when the tag is newer than ARGV[2]
]]
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local lifetime = tonumber(ARGV[1])
local since = tonumber(ARGV[2])
local reply = { math.floor(now / 1000) }
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], now, 'NX', 'PX', lifetime) then
    reply[i + 1] = now
  else
    local version = tonumber(redis.call('GET', KEYS[i]))
    redis.call('PEXPIRE', KEYS[i], lifetime, 'GT')
    if version == nil or version > since then
      reply[i + 1] = -1
    else
      reply[i + 1] = version
    end
  end
end
return reply

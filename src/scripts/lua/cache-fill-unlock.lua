--[[
  cache-fill-unlock: extends or releases a fill lock, only while it still holds this load's
  token (a lock that expired, or was revoked by a delete, is someone else's business now).

  KEYS[1]  fill lock key

  ARGV[1]  token of this load
  ARGV[2]  new ttl in ms, or 0 to release

  Reply    1 when the lock was this load's (and is extended or released), 0 otherwise
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1

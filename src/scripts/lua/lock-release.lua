--[[
  lock-release: deletes the lock only while it still holds this token, so a holder whose lock
  expired can never delete the next holder's lock.

  KEYS[1]  lock key
  ARGV[1]  token of this acquisition

  Reply    1 when released; 0 when this token no longer holds the lock (expired or taken over)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

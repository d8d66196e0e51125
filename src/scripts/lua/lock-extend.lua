--[[
  lock-extend: gives the lock a new ttl only while it still holds this token.

  KEYS[1]  lock key
  ARGV[1]  token of this acquisition
  ARGV[2]  new ttl in ms, counted from now

  Reply    1 when extended; 0 when this token no longer holds the lock (expired or taken over)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0

--[[
  lock-acquire: takes a lock if it is free and hands out the next fencing token, in one round
  trip, so no holder ever exists without a token and tokens only ever increase.

  KEYS[1]  lock key: the holder's random token, expiring after the lock's ttl
  KEYS[2]  fence key: one counter per resource that only ever increases (it never expires)

  ARGV[1]  token, random and unique to this acquisition
  ARGV[2]  ttl in ms

  Reply    { 1, fencing token } when acquired; { 0, ms until the current holder's lock expires }
           when it is held
]]
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return { 1, redis.call('INCR', KEYS[2]) }
end
return { 0, redis.call('PTTL', KEYS[1]) }

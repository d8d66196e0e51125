--[[
  lock-semaphore-release: gives back a holder's permits, and takes a waiter that gives up out of
  the fair queue. Token-checked: it can only remove this token's own members.

  KEYS[1]  holders: sorted set, member `<token>:<i>` per permit
  KEYS[2]  queue (fair mode): member `<permits>:<token>`
  KEYS[3]  queue places (fair mode): same members

  ARGV[1]  token of this acquisition
  ARGV[2]  permits it holds (or waited for)

  Reply    how many permits were given back (the permits it held when still held; else 0)
]]
local token, permits = ARGV[1], tonumber(ARGV[2])
local released = 0
for i = 1, permits do
  released = released + redis.call('ZREM', KEYS[1], token .. ':' .. i)
end
local me = permits .. ':' .. token
redis.call('ZREM', KEYS[2], me)
redis.call('ZREM', KEYS[3], me)
return released

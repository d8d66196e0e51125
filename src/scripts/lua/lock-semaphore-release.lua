--[[
  lock-semaphore-release: gives back a holder's permits, and takes a waiter that gives up out of
  the fair queue. Token-checked: it can only remove this token's own members.

  KEYS[1]  holders: sorted set, member `<token>:<i>` per permit
  KEYS[2]  queue (fair mode): member `<permits>:<token>`
  KEYS[3]  queue places (fair mode): same members

  ARGV[1]  token of this acquisition
  ARGV[2]  permits it holds (or waited for)

  Reply    how many permits were given back (the permits it held when still held; else 0)

  Several calls in one run (releases issued at the same time): ARGV is the key count (3), token
  and permits of each call in turn, KEYS their keys in the same order, and the reply is the list
  of the calls' replies; a call that fails gets its error in its place, and the others run
  regardless.
]]
local function release(holders, queue, places, token, permits)
  local released = 0
  for i = 1, permits do
    released = released + redis.call('ZREM', holders, token .. ':' .. i)
  end
  local me = permits .. ':' .. token
  redis.call('ZREM', queue, me)
  redis.call('ZREM', places, me)
  return released
end

if #ARGV == 2 then
  return release(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))
end
local replies = {}
local first = 1
for i = 1, #ARGV, 3 do
  local ok, reply = pcall(release, KEYS[first], KEYS[first + 1], KEYS[first + 2], ARGV[i + 1], tonumber(ARGV[i + 2]))
  if ok then
    replies[#replies + 1] = reply
  else
    replies[#replies + 1] = redis.error_reply(type(reply) == 'table' and reply.err or tostring(reply))
  end
  first = first + tonumber(ARGV[i])
end
return replies

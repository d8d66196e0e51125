--[[
  lock-semaphore-release: gives back a holder's permits, and takes a waiter that gives up out of
  the fair queue. Token-checked: it can only remove this token's own members.

  KEYS[1]  holders: sorted set, member `<token>:<i>` per permit
  KEYS[2]  queue (fair mode; left out for a semaphore that is not fair): member `<permits>:<token>`
  KEYS[3]  queue places (fair mode; left out with KEYS[2]): same members

  ARGV[1]  token of this acquisition
  ARGV[2]  permits it holds (or waited for)

  Reply    how many permits were given back (the permits it held when still held; else 0)

  Several calls in one run (releases issued at the same time): ARGV is the key count (1 or 3), token
  and permits of each call in turn, KEYS their keys in the same order, and the reply is the list
  of the calls' replies; a call that fails gets its error in its place, and the others run
  regardless.
]]
local function release(first, last, token, permits)
  -- One ZREM per 1,000 permits (unpack is bounded by Lua's C stack).
  local released = 0
  local members = {}
  for i = 1, permits do
    members[#members + 1] = token .. ':' .. i
    if #members == 1000 or i == permits then
      released = released + redis.call('ZREM', KEYS[first], unpack(members))
      members = {}
    end
  end
  if last > first then
    local me = permits .. ':' .. token
    redis.call('ZREM', KEYS[first + 1], me)
    redis.call('ZREM', KEYS[first + 2], me)
  end
  return released
end

if #ARGV == 2 then
  return release(1, #KEYS, ARGV[1], tonumber(ARGV[2]))
end
local replies = {}
local first = 1
for i = 1, #ARGV, 3 do
  local last = first + tonumber(ARGV[i]) - 1
  local ok, reply = pcall(release, first, last, ARGV[i + 1], tonumber(ARGV[i + 2]))
  if ok then
    replies[#replies + 1] = reply
  else
    replies[#replies + 1] = redis.error_reply(type(reply) == 'table' and reply.err or tostring(reply))
  end
  first = last + 1
end
return replies

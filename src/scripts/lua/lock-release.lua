--[[
  lock-release: deletes each lock that still holds this token, so a holder whose lock expired can
  never delete the next holder's lock.

  KEYS[1] .. KEYS[n]  lock key of each resource (on a Cluster all in one slot)
  ARGV[1]  token of this acquisition

  Reply    how many of the locks were released (n when all were still held)

  Several calls in one run (releases issued at the same time): ARGV is the key count and token of
  each call in turn, KEYS their keys in the same order, and the reply is the list of the calls'
  replies; a call that fails gets its error in its place, and the others run regardless.
]]
local function release(first, last, token)
  local released = 0
  for i = first, last do
    if redis.call('GET', KEYS[i]) == token then
      released = released + redis.call('DEL', KEYS[i])
    end
  end
  return released
end

if #ARGV == 1 then
  return release(1, #KEYS, ARGV[1])
end
local replies = {}
local first = 1
for i = 1, #ARGV, 2 do
  local last = first + tonumber(ARGV[i]) - 1
  local ok, reply = pcall(release, first, last, ARGV[i + 1])
  if ok then
    replies[#replies + 1] = reply
  else
    replies[#replies + 1] = redis.error_reply(type(reply) == 'table' and reply.err or tostring(reply))
  end
  first = last + 1
end
return replies

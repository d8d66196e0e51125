--[[
  lock-release: deletes each lock that still holds this token, so a holder whose lock expired can
  never delete the next holder's lock.

  KEYS[1] .. KEYS[n]  lock key of each resource (on a Cluster all in one slot)
  ARGV[1]  token of this acquisition

  Reply    how many of the locks were released (n when all were still held)
]]
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    released = released + redis.call('DEL', KEYS[i])
  end
end
return released

--[[
  buffer-prune: removes from the group the consumers that have nothing pending and have not
  been heard from for IDLE ms (instances that stopped or died and whose entries were taken
  over), so the group's consumer list stays bounded across deploys; and, when named, one
  consumer that is stopping, if it has nothing pending. A consumer with pending entries is never
  removed (that would drop its entries from the group). Atomic, so a consumer cannot receive
  entries between the check and the removal.

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group
  ARGV[2]  idle ms after which a consumer with nothing pending is removed
  ARGV[3]  a consumer to remove now if it has nothing pending ('' for none)

  Reply    the number of consumers removed
]]
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(consumers) ~= 'table' or consumers.err then
  return 0
end
local idleLimit = tonumber(ARGV[2])
local removed = 0
for _, consumer in ipairs(consumers) do
  local info = {}
  for j = 1, #consumer, 2 do
    info[consumer[j]] = consumer[j + 1]
  end
  if info.pending == 0 and (info.name == ARGV[3] or (info.idle or 0) >= idleLimit) then
    -- DELCONSUMER answers with the pending count it dropped: 0 here, by the check above.
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info.name)
    removed = removed + 1
  end
end
return removed

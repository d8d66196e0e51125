--[[
  buffer-hold: the heartbeat of a live consumer, and its hand-over when it stops. Resets (or sets)
  the idle time of entries this consumer still owns, without counting a delivery: with IDLE 0 a
  consumer busy with a long flush keeps its entries from being claimed as a dead consumer's; with
  IDLE = the claim threshold a stopping consumer lets the others take them at once. Entries
  another consumer took meanwhile are left alone and reported.

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group
  ARGV[2]  consumer name
  ARGV[3]  idle ms to set on each held entry
  ARGV[4]  entry id, then more entry ids

  Reply    the entry ids this consumer no longer owns (acknowledged, or claimed by another)
]]
local lost = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if pending and pending[2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost

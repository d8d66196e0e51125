--[[
  buffer-claim: takes over the entries other consumers of the group have left unacknowledged for
  at least MIN IDLE ms (a consumer that died, or stalled past its heartbeat), with XAUTOCLAIM,
  and says how many times each has now been delivered, so the caller can stop retrying an entry
  that keeps killing its consumers. Refuses to act once the caller has given up.

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group
  ARGV[2]  consumer name (the new owner)
  ARGV[3]  min idle ms
  ARGV[4]  cursor: an entry id to scan from ('0-0' to start over)
  ARGV[5]  most entries to take
  ARGV[6]  deadline, server epoch ms (0: none)

  Reply    { 1, server ms, next cursor, { { entry id, { field, value, ... }, deliveries }, ... } };
           { 0, server ms } when the deadline had passed (nothing claimed)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[6])
if deadline > 0 and now > deadline then
  return { 0, now }
end
local claimed = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
if type(claimed) == 'table' and claimed.err then
  if string.find(claimed.err, 'NOGROUP', 1, true) then
    return { 1, now, '0-0', {} }
  end
  return claimed
end
local entries = {}
for _, entry in ipairs(claimed[2]) do
  -- Entries deleted from the stream meanwhile come back empty (and leave the PEL): skip them.
  if type(entry) == 'table' and type(entry[2]) == 'table' then
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)[1]
    entries[#entries + 1] = { entry[1], entry[2], pending and pending[4] or 1 }
  end
end
return { 1, now, claimed[1], entries }

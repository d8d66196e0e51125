--[[
  buffer-retry: delivers again, to the consumer that owns them, entries whose flush failed and
  whose backoff has run out. Only entries this consumer still owns are taken: one that another
  consumer claimed meanwhile (this one stalled) stays with it. Each delivery is counted by the
  group, so the caller knows the attempt number. Refuses to act once the caller has given up.

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group
  ARGV[2]  consumer name
  ARGV[3]  deadline, server epoch ms (0: none)
  ARGV[4]  entry id, then more entry ids

  Reply    { 1, server ms, { { entry id, { field, value, ... }, deliveries }, ... } } with the
           entries still owned and still in the stream; { 0, server ms } when the deadline had
           passed (nothing taken)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now > deadline then
  return { 0, now }
end
local entries = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if pending and pending[2] == ARGV[2] then
    local entry = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i])[1]
    if type(entry) == 'table' and type(entry[2]) == 'table' then
      entries[#entries + 1] = { entry[1], entry[2], pending[4] + 1 }
    end
  end
end
return { 1, now, entries }

--[[
  buffer-enqueue: appends items to one shard of a write buffer in one round trip, unless the
  caller already gave up or the shard's backlog is full. The backlog is the stream's length:
  entries are deleted once acknowledged, so what remains is exactly what is not yet committed,
  and nothing is ever trimmed to make room (the caller is refused instead).

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group, created (reading from the start) when the stream is new
  ARGV[2]  most entries the stream may hold
  ARGV[3]  deadline, server epoch ms: past it the caller has given up and nothing is added (0: none)
  ARGV[4]  item id, ARGV[5] payload, then more (id, payload) pairs: all are added or none

  Reply    { 1, server ms, entry id, entry id, ... } when added;
           { 0, server ms } when the deadline had passed (nothing added);
           { -1, server ms, stream length } when the items would not fit (nothing added)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now > deadline then
  return { 0, now }
end
local length = redis.call('XLEN', KEYS[1])
-- Acknowledged entries are deleted, not the stream: only a new stream is missing its group.
if length == 0 and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end
if length + (#ARGV - 3) / 2 > tonumber(ARGV[2]) then
  return { -1, now, length }
end
local reply = { 1, now }
for i = 4, #ARGV, 2 do
  reply[#reply + 1] = redis.call('XADD', KEYS[1], '*', 'i', ARGV[i], 'd', ARGV[i + 1])
end
return reply

--[[
  buffer-read: hands up to COUNT new entries of one shard to a consumer of its group, unless the
  caller already gave up: a read that ran after its caller stopped waiting would leave entries
  pending on a consumer that never saw them. Creates the group (reading from the start) when it
  is missing: a new stream, or a Redis that lost its data.

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group
  ARGV[2]  consumer name
  ARGV[3]  most entries to hand over
  ARGV[4]  deadline, server epoch ms (0: none)

  Reply    { 1, server ms, { { entry id, { field, value, ... } }, ... } };
           { 0, server ms } when the deadline had passed (nothing read)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[4])
if deadline > 0 and now > deadline then
  return { 0, now }
end
local function read()
  return redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
end
local reply = read()
if type(reply) == 'table' and reply.err then
  if not string.find(reply.err, 'NOGROUP', 1, true) then
    return reply
  end
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
  reply = read()
  if type(reply) == 'table' and reply.err then
    return reply
  end
end
if not reply or not reply[1] then
  return { 1, now, {} }
end
return { 1, now, reply[1][2] }

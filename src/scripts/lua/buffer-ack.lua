--[[
  buffer-ack: acknowledges entries whose flush committed and deletes them from the stream, in
  one round trip, so the stream only ever holds what is not yet committed (its length is the
  backlog) and nothing unacknowledged is trimmed. The group is the stream's only group.

  KEYS[1]  the shard's stream
  ARGV[1]  consumer group
  ARGV[2]  entry id, then more entry ids

  Reply    the number of entries that were still pending (an entry acknowledged twice counts once)
]]
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
return acked

--[[
  buffer-dead-letter: moves entries this consumer owns from the shard's stream to its dead-letter
  stream (same hash tag), with the last error and the number of deliveries, then acknowledges and
  deletes them: the item is never in neither stream. Entries another consumer took meanwhile are
  left alone. When the dead-letter stream is full the entry stays pending where it is (nothing is
  dropped) and the reply says so. Refuses to act once the caller has given up.

  KEYS[1]  the shard's stream
  KEYS[2]  the shard's dead-letter stream
  ARGV[1]  consumer group
  ARGV[2]  consumer name
  ARGV[3]  most entries the dead-letter stream may hold
  ARGV[4]  deadline, server epoch ms (0: none)
  ARGV[5]  entry id, ARGV[6] deliveries, ARGV[7] last error, then more such triples

  Reply    { 1, server ms, entries moved, 1 if the dead-letter stream was full else 0 };
           { 0, server ms } when the deadline had passed (nothing moved)

  A dead letter's fields: i (item id) and d (payload) as enqueued, or x (the JSON array of the
  original fields, when they were not an item), e (last error), n (deliveries), t (server ms),
  s (the entry id it had in the stream).
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[4])
if deadline > 0 and now > deadline then
  return { 0, now }
end
local limit = tonumber(ARGV[3])
local moved = 0
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  if pending and pending[2] == ARGV[2] then
    local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
    if entry then
      if redis.call('XLEN', KEYS[2]) >= limit then
        return { 1, now, moved, 1 }
      end
      local fields = entry[2]
      local item, data
      for j = 1, #fields, 2 do
        if fields[j] == 'i' then
          item = fields[j + 1]
        elseif fields[j] == 'd' then
          data = fields[j + 1]
        end
      end
      if item and data and #fields == 4 then
        redis.call('XADD', KEYS[2], '*', 'i', item, 'd', data, 'e', ARGV[i + 2], 'n', ARGV[i + 1], 't', now, 's', id)
      else
        redis.call('XADD', KEYS[2], '*', 'x', cjson.encode(fields), 'e', ARGV[i + 2], 'n', ARGV[i + 1], 't', now, 's', id)
      end
      moved = moved + 1
    end
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
  end
end
return { 1, now, moved, 0 }

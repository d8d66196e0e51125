--[[
  buffer-replay: moves dead letters back into the shard's stream as new entries (same item id
  and payload, deliveries counted afresh), oldest first or by id, as far as the stream's backlog
  allows; each is deleted from the dead-letter stream in the same step, so it is never in both
  or in neither. Dead letters that are not items (no id and payload) stay. Refuses to act once
  the caller has given up.

  KEYS[1]  the shard's stream
  KEYS[2]  the shard's dead-letter stream
  ARGV[1]  consumer group, created (reading from the start) when the stream is new
  ARGV[2]  most entries the stream may hold
  ARGV[3]  deadline, server epoch ms (0: none)
  ARGV[4]  most dead letters to replay
  ARGV[5]  dead-letter entry id, then more (none: the oldest ones)

  Reply    { 1, server ms, replayed, 1 if the stream was full else 0 };
           { 0, server ms } when the deadline had passed (nothing moved)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now > deadline then
  return { 0, now }
end
local capacity = tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
local replayed = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
end

-- 'ok', 'skip' (not an item) or 'full'
local function replay(entry)
  local fields = entry[2]
  local item, data
  for j = 1, #fields, 2 do
    if fields[j] == 'i' then
      item = fields[j + 1]
    elseif fields[j] == 'd' then
      data = fields[j + 1]
    end
  end
  if not item or not data then
    return 'skip'
  end
  if redis.call('XLEN', KEYS[1]) >= capacity then
    return 'full'
  end
  redis.call('XADD', KEYS[1], '*', 'i', item, 'd', data)
  redis.call('XDEL', KEYS[2], entry[1])
  return 'ok'
end

if #ARGV >= 5 then
  for i = 5, #ARGV do
    if replayed >= limit then
      break
    end
    local entry = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])[1]
    if entry then
      local outcome = replay(entry)
      if outcome == 'full' then
        return { 1, now, replayed, 1 }
      end
      if outcome == 'ok' then
        replayed = replayed + 1
      end
    end
  end
  return { 1, now, replayed, 0 }
end

-- Oldest first, stepping over dead letters that are not items, looking at a bounded number.
local start = '-'
local examined = 0
while replayed < limit and examined < limit + 1000 do
  local entries = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 100)
  if #entries == 0 then
    break
  end
  for _, entry in ipairs(entries) do
    examined = examined + 1
    local outcome = replay(entry)
    if outcome == 'full' then
      return { 1, now, replayed, 1 }
    end
    if outcome == 'ok' then
      replayed = replayed + 1
      if replayed >= limit then
        break
      end
    end
    start = '(' .. entry[1]
  end
end
return { 1, now, replayed, 0 }

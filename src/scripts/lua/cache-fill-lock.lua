--[[
  cache-fill-lock: takes the fill lock of one cache entry, so one caller across every instance
  runs the loader while the others wait for its value. Refused when the caller has already
  given up (a command ioredis replays after a reconnection runs late: it must not hold the lock
  for its ttl under a token nobody has), and not taken when the entry changed since the caller
  looked at it (someone filled it meanwhile: use that instead of loading again).

  KEYS[1]  entry key
  KEYS[2]  fill lock key, in the entry's hash slot: the holder's token, expiring after ARGV[3]

  ARGV[1]  token, random and unique to this load
  ARGV[2]  deadline, server epoch ms: past it the caller has given up, and nothing is done
  ARGV[3]  lock ttl in ms
  ARGV[4]  '1' to compare the entry with ARGV[5] first, '0' not to
  ARGV[5]  the entry's header as the caller saw it ('' for no entry): the text up to its fifth
           '|', at most 256 bytes

  Reply    { 1, now }           acquired
           { 0, now, pttl }     another caller holds it; pttl = ms until that lock expires
           { 2, now, entry }    the entry changed since the caller looked (entry = its text, or
                                false when gone); nothing taken
           { -1, now }          the deadline had passed; nothing done
           now is the server's time in epoch ms
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if now > tonumber(ARGV[2]) then
  return { -1, now }
end
if ARGV[4] == '1' then
  local entry = redis.call('GET', KEYS[1])
  local header = ''
  if entry then
    header = string.sub(entry, 1, 256)
    local at = 0
    for _ = 1, 5 do
      at = string.find(header, '|', at + 1, true)
      if not at then break end
    end
    if at then header = string.sub(header, 1, at) end
  end
  if header ~= ARGV[5] then
    return { 2, now, entry }
  end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then
  return { 1, now }
end
return { 0, now, redis.call('PTTL', KEYS[2]) }

--[[
  cache-delete: deletes entries and revokes their fill locks, so a load that was running when
  its key was deleted (and may have read the old data) never writes the old value back. A
  delete that runs late (replayed after the caller gave up) only turns a later hit into a miss,
  so it carries no deadline. One UNLINK and one DEL, however many keys.

  KEYS[1..n]     entry keys
  KEYS[n+1..2n]  their fill lock keys, in the same order (all keys in one hash slot per call)
  ARGV none

  Reply          how many of the entries existed
]]
local n = #KEYS / 2
local entries, locks = {}, {}
for i = 1, n do
  entries[i] = KEYS[i]
  locks[i] = KEYS[n + i]
end
redis.call('DEL', unpack(locks))
return redis.call('UNLINK', unpack(entries))

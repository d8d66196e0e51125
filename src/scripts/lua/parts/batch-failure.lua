--[[
  batch-failure: prepended by the registry (src/scripts/registry.ts) to every rate-limit script
  that decides a batch of identities in one call, which runs each identity's decision under
  pcall and hands what it caught to failed().

  failed(failure): an error of the identity's own data (its key holds another type: a key
  collision; a value out of range) becomes that identity's reply, and the batch goes on as if it
  were not there. Any other error (READONLY after a failover, MISCONF, OOM…) is raised again and
  fails the whole call as it always did, so the client sees it (it reconnects on READONLY); Redis
  raises these before a script's first write, so nothing of the call was counted.
]]
local function failed(failure)
  local message = type(failure) == 'table' and failure.err or tostring(failure)
  local code = string.sub(message, 1, 4)
  if code ~= 'WRON' and code ~= 'ERR ' then error({ err = message }, 0) end
  return redis.error_reply(message)
end

import { Redis } from 'ioredis';

/** Commands sent to Redis while {@link countCommands} ran, by name. */
export interface CommandLog {
  count: number;
  names: string[];
}

/**
 * Counts the commands ioredis writes to Redis while `run` runs, for every client in this
 * process (standalone clients and Cluster node connections alike), by wrapping
 * `Redis.prototype.sendCommand`. Auto-pipelined commands are counted one by one; a script's
 * NOSCRIPT retry counts as a second command. Tests in a file run one at a time, so only the
 * test's own commands are in the window — connect clients before it opens. ioredis' own
 * connection housekeeping (the `INFO` ready check of a client connecting in the background,
 * Cluster slot refreshes, handshakes) is not the operation under test and is left out.
 */
const HOUSEKEEPING = new Set(['info', 'cluster', 'hello', 'auth', 'select', 'client', 'readonly']);

export async function countCommands(run: () => Promise<unknown>): Promise<CommandLog> {
  const original = Redis.prototype.sendCommand;
  const names: string[] = [];
  Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
    if (!HOUSEKEEPING.has(command.name)) names.push(command.name);
    return original.call(this, command, ...rest);
  } as typeof original;
  try {
    await run();
  } finally {
    Redis.prototype.sendCommand = original;
  }
  return { count: names.length, names };
}

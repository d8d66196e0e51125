import type { RedisLike } from '../../src/index.js';

/** Counters of a Redis server that grow with the work it does. */
export interface RedisCounters {
  /** CPU the server process has used (user + system), µs. */
  cpuUs: number;
  /** Time spent executing commands (INFO commandstats `usec`, summed), µs. */
  commandUs: number;
  /** Commands executed (INFO commandstats `calls`, summed). */
  calls: number;
}

/** Commands the bench itself sends to read counters; left out of the sums. */
const OWN = new Set(['info', 'config', 'echo', 'monitor', 'ping', 'select', 'client', 'hello']);

/**
 * Reads the server's CPU and command counters. The difference between two readings, divided by
 * the operations run in between, is the server's cost per operation: `INFO commandstats` counts
 * only command execution (for a script: the script), the process CPU also counts reading,
 * parsing and answering (for a GET, most of its cost). On a server other clients use too, both
 * include their work: the bench starts its own unless REDIS_URL is set.
 */
export async function readCounters(admin: RedisLike): Promise<RedisCounters> {
  const info = (await admin.info('all')) as string;
  const cpu = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  let commandUs = 0;
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/gm)) {
    if (OWN.has(match[1] as string)) continue;
    calls += Number(match[2]);
    commandUs += Number(match[3]);
  }
  return { cpuUs: (cpu('used_cpu_user') + cpu('used_cpu_sys')) * 1_000_000, commandUs, calls };
}

import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { addressOf, mastersOf, type RedisLike } from '../../src/index.js';

/**
 * Counts the commands clients send to Redis while `run` runs, on every master, using MONITOR.
 * Commands a Lua script calls inside Redis are not counted (MONITOR shows them as from `lua`),
 * so the count is what crosses the network: round trips, whichever client library sent them.
 */
export async function countSentCommands(admin: RedisLike, run: () => Promise<void>): Promise<number> {
  const marker = `redscale-bench-${randomBytes(6).toString('hex')}`;
  const masters = mastersOf(admin);
  const monitors = await Promise.all(
    masters.map((node) => {
      const [host, port] = addressOf(node).split(':');
      return new Redis({ host, port: Number(port), lazyConnect: true }).monitor();
    }),
  );
  let count = 0;
  let markersSeen = 0;
  for (const monitor of monitors) {
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) markersSeen++;
      else if (source !== 'lua') count++;
    });
  }
  try {
    await run();
    // MONITOR is asynchronous: wait until each master has shown a marker sent after the run.
    await Promise.all(masters.map((node) => node.echo(marker)));
    const deadline = Date.now() + 5_000;
    while (markersSeen < masters.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return count;
  } finally {
    for (const monitor of monitors) monitor.disconnect();
  }
}

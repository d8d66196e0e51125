/**
 * One instance of a service in the stampede scenario: builds one library's cache, waits for the
 * common start time, then fires `calls` concurrent getOrSet on one cold key. The loader counts
 * its runs in Redis, so the parent can add them up across processes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '../src/index.js';
import { fixtureInput } from '../test/fixtures/spawn.js';
import { CACHE_LIBRARIES } from './contenders/caches.js';

const input = fixtureInput<{
  library: string;
  url: string;
  prefix: string;
  calls: number;
  loaderMs: number;
  startAt: number;
}>();
const library = CACHE_LIBRARIES[input.library];
if (!library) throw new Error(`unknown library ${input.library}`);
const redis = createClient(input.url);
const cache = await library.make({ redis, url: input.url, prefix: input.prefix });
await sleep(Math.max(0, input.startAt - Date.now()));
const values = await Promise.all(
  Array.from({ length: input.calls }, () =>
    cache.getOrSet('cold-key', async () => {
      await redis.incr(`${input.prefix}:loader-runs`);
      await sleep(input.loaderMs);
      return { report: 'expensive' };
    }),
  ),
);
console.log(
  JSON.stringify({ answered: values.filter((value) => (value as { report?: string })?.report === 'expensive').length }),
);
await cache.close();
redis.disconnect();
process.exit(0);

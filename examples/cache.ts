/**
 * Cache-aside across instances: two instances share a cache; a stampede of concurrent misses
 * runs the loader once; a tag invalidation on one instance reaches the other's in-process L1;
 * an expired value is served at once while it refreshes in the background.
 *
 *   npm run example:cache                       # finds or starts a Redis by itself
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cache, createClient } from 'redscale';
import { z } from 'zod';
import { findOrStartRedis } from '../test/harness/find-redis.js';

const found = await findOrStartRedis();
const prefix = `example-${process.pid}`;
const User = z.object({ id: z.number(), name: z.string(), plan: z.string() });

// A pretend database that counts its queries.
let queries = 0;
const db = {
  plan: 'free',
  async user(id: number) {
    queries++;
    await sleep(100);
    return { id, name: 'Ada', plan: this.plan };
  },
};

const clients = [createClient(found.url), createClient(found.url)];
const [a, b] = clients.map(
  (redis) => new Cache({ redis, prefix, ttl: '2s', staleFor: '1m', l1: { maxEntries: 1_000 } }),
) as [Cache, Cache];
await Promise.all([a.whenReady(), b.whenReady()]);
const loadUser = (cache: Cache, id: number) =>
  cache.getOrSet(`user:${id}`, () => db.user(id), { tags: [`user:${id}`], schema: User });

console.log('100 concurrent requests for a cold key, split over two instances:');
const users = await Promise.all(Array.from({ length: 100 }, (_, i) => loadUser(i % 2 ? a : b, 7)));
console.log(`  ${users.length} answers, ${queries} database query`);

console.log('\nrepeat reads come from each instance’s L1 (no I/O):');
await sleep(20);
await loadUser(a, 7);
await loadUser(b, 7);
console.log(`  L1 hits: a=${a.stats().l1Hits}, b=${b.stats().l1Hits}`);

console.log('\nthe user upgrades; instance a invalidates the tag:');
db.plan = 'pro';
await a.invalidateTags(['user:7']);
await sleep(20); // the bus carries the new tag version to b
console.log(`  b now reads plan=${(await loadUser(b, 7)).plan} (${queries} queries so far)`);

console.log('\nafter the ttl, the stale value is served at once while one refresh runs:');
db.plan = 'enterprise';
await sleep(2_100);
const started = performance.now();
const stale = await loadUser(a, 7);
console.log(`  got plan=${stale.plan} in ${(performance.now() - started).toFixed(1)} ms (stale, refreshing)`);
await sleep(150);
console.log(`  then plan=${(await loadUser(a, 7)).plan}; stats of a: ${JSON.stringify(a.stats())}`);

await a.invalidatePattern('user:*');
await Promise.all([a.close(), b.close()]);
for (const client of clients) client.disconnect();
await found.stop();

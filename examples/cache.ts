/**
 * Cache-aside across instances: two instances share a cache; a stampede of concurrent misses
 * runs the loader once; a tag invalidation on one instance reaches the other's in-process L1;
 * an expired value is served at once while it refreshes in the background; three instances warm
 * the same keys with one load each; getMany, an adaptive entry, clear().
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

console.log('\nwarming: 3 instances prefetch the same 50 users at once, 8 at a time each:');
const before = queries;
const c = new Cache({ redis: clients[0] as (typeof clients)[number], prefix, ttl: '1m' });
const ids = Array.from({ length: 50 }, (_, i) => 100 + i);
const reports = await Promise.all(
  [a, b, c].map((cache) =>
    cache.prefetch(
      ids.map((id) => `user:${id}`),
      (key) => db.user(Number(key.slice(5))),
    ),
  ),
);
console.log(`  ${reports.map((report) => report.done).join(' + ')} done, ${queries - before} database queries`);

console.log('\nmany keys at once, and an adaptive entry:');
const many = await a.getMany(ids.slice(0, 3).map((id) => `user:${id}`));
console.log(`  getMany -> ${many.map((user) => (user as { id: number }).id).join(', ')} (one MGET)`);
const missing = await a.getOrSet('user:404', (ctx) => {
  ctx.setOptions({ ttl: '5s' }); // "not found" is cached briefly
  return null;
});
console.log(`  user:404 -> ${missing} (cached for 5 s only)`);

console.log(`\nclear() removed ${await a.clear()} entries of the namespace`);
await Promise.all([a.close(), b.close(), c.close()]);
for (const client of clients) client.disconnect();
await found.stop();

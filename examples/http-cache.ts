/**
 * HTTP response caching across instances: two Express instances share one cache; 100
 * concurrent cold requests run the handler once; a conditional request gets a 304; a write on
 * one instance invalidates the other's cached response by tag; after the ttl the stale response
 * is served at once while one background request refreshes it.
 *
 *   npm run example:http-cache                  # finds or starts a Redis by itself
 */
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Cache, createClient } from 'redscale';
import { httpCache } from 'redscale/express';
import { findOrStartRedis } from '../test/harness/find-redis.js';

const found = await findOrStartRedis();
const prefix = `example-http-${process.pid}`;

// A pretend database that counts its queries.
let queries = 0;
const db = { products: ['lamp', 'chair'] };

const clients = [createClient(found.url), createClient(found.url)];
const caches = clients.map((redis) => new Cache({ redis, prefix }));
await Promise.all(caches.map((cache) => cache.whenReady()));

/** One instance of the service. */
function instance(cache: Cache) {
  const app = express();
  app.get('/products', httpCache({ cache, ttl: '1s', staleFor: '1m', tags: () => ['products'] }), async (_req, res) => {
    queries++;
    await sleep(100);
    res.json({ products: db.products });
  });
  app.post('/products', async (_req, res) => {
    db.products = [...db.products, 'desk'];
    await cache.invalidateTags(['products']);
    res.status(201).end();
  });
  return app.listen(0, '127.0.0.1');
}
const servers = caches.map(instance);
await Promise.all(servers.map((server) => new Promise((resolve) => server.once('listening', resolve))));
const [a, b] = servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`) as [
  string,
  string,
];

console.log('100 concurrent cold requests, split over two instances:');
const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(`${i % 2 ? a : b}/products`)));
const xCache = responses.map((response) => response.headers.get('x-cache'));
console.log(`  ${responses.length} × 200, ${queries} database query (X-Cache: ${count(xCache)})`);

const etag = responses[0]?.headers.get('etag') ?? '';
const conditional = await fetch(`${b}/products`, { headers: { 'if-none-match': etag } });
console.log(
  `\na request with If-None-Match: ${etag} → ${conditional.status}, X-Cache ${conditional.headers.get('x-cache')}`,
);

console.log('\ninstance a adds a product and invalidates the tag; instance b:');
await fetch(`${a}/products`, { method: 'POST' });
const fresh = await fetch(`${b}/products`);
console.log(`  ${fresh.headers.get('x-cache')} ${await fresh.text()} (${queries} queries so far)`);

console.log('\nafter the ttl, the stale response is served at once while one request refreshes it:');
await sleep(1_100);
const stale = await fetch(`${a}/products`);
console.log(`  ${stale.headers.get('x-cache')}, Age ${stale.headers.get('age')} s`);
await sleep(300);
const refreshed = await fetch(`${b}/products`);
console.log(`  then ${refreshed.headers.get('x-cache')}, Age ${refreshed.headers.get('age')} s (${queries} queries)`);

for (const server of servers) {
  server.closeAllConnections();
  server.close();
}
await caches[0]?.invalidatePattern('http:*');
await Promise.all(caches.map((cache) => cache.close()));
for (const client of clients) client.disconnect();
await found.stop();

function count(values: Array<string | null>): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(String(value), (counts.get(String(value)) ?? 0) + 1);
  return [...counts].map(([value, n]) => `${n} ${value}`).join(', ');
}

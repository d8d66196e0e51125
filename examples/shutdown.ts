/**
 * Graceful shutdown: an Express service receives SIGTERM while orders are in flight. Readiness
 * turns 503 at once, the service keeps serving through the drain delay, then refuses new
 * connections, lets the orders finish, closes its cache bus and QUITs Redis.
 *
 *   npm run example:shutdown                    # finds or starts a Redis by itself
 */
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { Cache, createClient, gracefulShutdown, RedisHealth } from 'redscale';
import { findOrStartRedis } from '../test/harness/find-redis.js';

const found = await findOrStartRedis();
const redis = createClient(found.url);
const health = new RedisHealth({ redis });
const cache = new Cache({ redis, prefix: `example-${process.pid}` });

const app = express();
app.get('/ready', async (_req, res) => {
  const { statusCode, body } = await health.readiness();
  res.status(statusCode).json(body);
});
app.get('/orders/:id', async (req, res) => {
  await sleep(1_500); // a slow checkout
  res.json({ order: req.params.id, status: 'placed' });
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const shutdown = gracefulShutdown({
  server,
  health,
  drainDelay: '1s', // in production: the load balancer's probe interval × failure threshold
  requestTimeout: '5s',
  close: [cache],
  redis,
  exit: false, // the example stops its own Redis afterwards, then exits
  log: (line) => console.log(`  [service] ${line}`),
});

const probe = async () => {
  try {
    return String((await fetch(`${base}/ready`, { headers: { connection: 'close' } })).status);
  } catch (error) {
    return ((error as Error).cause as { code?: string } | undefined)?.code ?? 'error';
  }
};
console.log(`readiness before: ${await probe()}`);
const orders = ['A-1', 'A-2'].map((id) => fetch(`${base}/orders/${id}`).then((res) => res.json()));
await sleep(100);

console.log('SIGTERM while two orders are in flight:');
process.kill(process.pid, 'SIGTERM');
const seen: string[] = [];
for (let i = 0; i < 12; i++) {
  seen.push(await probe());
  await sleep(150);
}
console.log(`readiness every 150 ms after the signal: ${seen.join(' ')}`);
for (const order of await Promise.all(orders)) console.log(`order finished: ${JSON.stringify(order)}`);

const result = await shutdown.shutdown(); // the one the signal started
console.log(`result: ${JSON.stringify(result)}`);
await found.stop();
process.exit(result.code);

/**
 * An Express API using redscale: a rate limit on every route (IP-keyed, draft-7 headers), a
 * stricter per-user limit on login through express-rate-limit with RedscaleStore, and health
 * routes. It calls itself to show the results, then exits; `SERVE=1` keeps it serving.
 *
 *   npm run example:express
 */
import express from 'express';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import { createClient, fixedWindow, slidingWindow } from 'redscale';
import { healthRoutes, RedscaleStore, rateLimit } from 'redscale/express';
import { findOrStartRedis } from '../../test/harness/find-redis.js';

const found = await findOrStartRedis();
const redis = createClient(found.url);
const prefix = `example-express-${process.pid}`;

const app = express();
app.use('/health', healthRoutes({ redis }));
app.post(
  '/login',
  // Existing express-rate-limit setups keep their options and swap the store.
  expressRateLimit({
    windowMs: 60_000,
    limit: 2,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    store: new RedscaleStore({ redis, prefix: `${prefix}:login` }),
  }),
  (_req, res) => {
    res.json({ token: 'abc' });
  },
);
// Everything registered after this is rate-limited per client IP.
app.use(
  rateLimit({
    redis,
    prefix: `${prefix}:api`,
    limits: [slidingWindow({ limit: 5, window: '10s' }), fixedWindow({ limit: 1_000, window: '1d' })],
  }),
);
app.get('/items', (_req, res) => {
  res.json([{ id: 1 }, { id: 2 }]);
});

const server = app.listen(Number(process.env.PORT ?? 0));
await new Promise((resolve) => server.once('listening', resolve));
const address = server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
console.log(`listening on ${base}`);

for (let i = 1; i <= 6; i++) {
  const response = await fetch(`${base}/items`);
  console.log(
    `GET /items #${i}: ${response.status}  RateLimit: ${response.headers.get('ratelimit')}${response.status === 429 ? `  Retry-After: ${response.headers.get('retry-after')}` : ''}`,
  );
}
for (let i = 1; i <= 3; i++)
  console.log(`POST /login #${i}: ${(await fetch(`${base}/login`, { method: 'POST' })).status}`);
const ready = await fetch(`${base}/health/ready`);
console.log(`GET /health/ready: ${ready.status} ${((await ready.json()) as { status: string }).status}`);

if (!process.env.SERVE) {
  server.close();
  redis.disconnect();
  await found.stop();
}

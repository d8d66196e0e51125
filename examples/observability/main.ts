/**
 * Runs the observed Express app (see app.ts), calls it a few times, and prints what Prometheus
 * would scrape from `/metrics` and the `/health/stats` report. `SERVE=1` only serves (on `PORT`,
 * default a free one) until it is stopped: the tests scrape it so.
 *
 *   npm run example:observability
 */
import { createClient } from 'redscale';
import { findOrStartRedis } from '../../test/harness/find-redis.js';
import { createObservedApp } from './app.js';

const found = await findOrStartRedis();
const redis = createClient(found.url);
const { app, close } = createObservedApp(redis, `example-observability-${process.pid}`);
const server = app.listen(Number(process.env.PORT ?? 0));
await new Promise((resolve) => server.once('listening', resolve));
const address = server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
console.log(`listening on ${base}`);

if (process.env.SERVE) await new Promise(() => {}); // serve until killed

for (const id of [1, 1, 2, 1]) console.log(`GET /users/${id}: ${(await fetch(`${base}/users/${id}`)).status}`);
const metrics = await (await fetch(`${base}/metrics`)).text();
console.log(
  metrics
    .split('\n')
    .filter((line) => line.startsWith('redscale_') && !line.includes('_bucket'))
    .join('\n'),
);
console.log(JSON.stringify(await (await fetch(`${base}/health/stats`)).json(), null, 2));

server.close();
await close();
redis.disconnect();
await found.stop();

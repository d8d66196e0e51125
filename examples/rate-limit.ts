/**
 * Rate limiting across instances: two "instances" (two limiters, two clients) share one Redis
 * and one set of limits — 5 per second and 20 per minute per user, checked atomically.
 *
 *   npm run example:rate-limit                  # finds or starts a Redis by itself
 */
import { createClient, fixedWindow, gcra, RateLimiter, rateLimitHeaders, slidingWindow } from 'redscale';
import { findOrStartRedis } from '../test/harness/find-redis.js';

const found = await findOrStartRedis();
const limits = [
  slidingWindow({ limit: 5, window: '1s', name: 'burst' }),
  fixedWindow({ limit: 20, window: '1m', name: 'minute' }),
];
const prefix = `example-${process.pid}`;

// Two instances of a service behind a load balancer: each has its own client and limiter.
const clients = [createClient(found.url), createClient(found.url)];
const instances = clients.map(
  (redis) => new RateLimiter({ redis, prefix, limits, blockFor: '2s', onRedisError: 'memory' }),
);

for (let request = 1; request <= 8; request++) {
  const instance = instances[request % 2]!;
  const result = await instance.consume('user:42');
  const verdict = result.allowed
    ? 'allowed'
    : `refused: ${result.reason}${result.refusedBy ? ` by ${result.refusedBy}` : ''}`;
  console.log(
    `request ${request} via instance ${request % 2}: ${verdict}, ${result.remaining} left, ` +
      `retry after ${result.retryAfter} ms (${result.source})`,
  );
  if (request === 6) console.log('   headers:', rateLimitHeaders(result, 'draft-7'));
}

// A heavier call costs more, and an unfair charge can be given back.
const expensive = await instances[0]!.consume('user:7', { cost: 3 });
console.log(`\nuser:7 cost 3: ${expensive.remaining} left`);
await instances[0]!.refund('user:7', { cost: 3 });
console.log(`after refund: ${(await instances[1]!.peek('user:7')).remaining} left (peek counts nothing)`);

// The peers' semantics (@nestjs/throttler, express-rate-limit): a window that starts with the
// identity's first hit, and a block of exactly blockFor after which counting starts afresh.
const peerLike = new RateLimiter({
  redis: clients[0]!,
  prefix: `${prefix}:peer-like`,
  limits: fixedWindow({ limit: 2, window: '10s', anchor: 'first-hit' }),
  blockFor: '3s',
  blockMode: 'exact',
});
for (let request = 1; request <= 3; request++) {
  const result = await peerLike.consume('user:9');
  console.log(
    `\nfirst-hit window, request ${request}: ${result.allowed ? 'allowed' : `refused (${result.reason})`}, ` +
      `window resets ${result.resetAt - result.decidedAt} ms after this call, retry after ${result.retryAfter} ms`,
  );
}

// Bursts (GCRA), plans chosen per call, and allow / deny lists — one limiter for all of it.
const PLANS = {
  free: [gcra({ limit: 2, window: '1s', burst: 3, name: 'free-rate' }), fixedWindow({ limit: 100, window: '1h' })],
  pro: [gcra({ limit: 10, window: '1s', burst: 10, name: 'pro-rate' }), fixedWindow({ limit: 5_000, window: '1h' })],
};
const api = new RateLimiter({
  redis: clients[1]!,
  prefix: `${prefix}:plans`,
  limits: PLANS.free,
  allowList: ['svc:health-checker'],
  denyList: (id) => id === 'user:banned',
});
const burst = [];
for (let i = 0; i < 5; i++) burst.push((await api.consume('user:5')).allowed ? 'ok' : 'refused');
console.log(`
free plan, 5 at once (burst 3, then 2/s): ${burst.join(' ')}`);
// Upgraded mid-burst: the same counters, now against the pro plan's numbers.
const upgraded = await api.consume('user:5', { limits: PLANS.pro });
console.log(
  `upgraded to pro: ${upgraded.allowed ? 'allowed' : 'refused'}, ${upgraded.remaining} left of ${upgraded.limit}`,
);
for (const id of ['svc:health-checker', 'user:banned']) {
  const result = await api.consume(id);
  console.log(`${id}: ${result.allowed ? 'allowed' : 'refused'} (${result.reason}, no round trip)`);
}

await instances[0]!.reset('user:42');
await instances[0]!.reset('user:7');
await peerLike.reset('user:9');
await api.reset('user:5', { limits: PLANS.pro });
for (const client of clients) client.disconnect();
await found.stop();

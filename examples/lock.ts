/**
 * Distributed locks: three "instances" race to run the same nightly job; exactly one runs it at
 * a time, each with a higher fencing token, and a holder that stalls past its ttl finds out.
 *
 *   npm run example:lock                        # finds or starts a Redis by itself
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, Lock, LockTimeoutError } from 'redscale';
import { findOrStartRedis } from '../test/harness/find-redis.js';

const found = await findOrStartRedis();
const redis = createClient(found.url);
const lock = new Lock({ redis, prefix: `example-${process.pid}`, ttl: '2s', wait: '5s' });

// The protected resource keeps the highest fencing token it has seen and refuses older ones.
let highestFence = 0;
function writeReport(instance: string, fence: number) {
  if (fence < highestFence) throw new Error(`stale writer ${instance} (fence ${fence} < ${highestFence})`);
  highestFence = fence;
  console.log(`  ${instance} wrote the report with fence ${fence}`);
}

console.log('three instances, one job:');
await Promise.all(
  ['instance-a', 'instance-b', 'instance-c'].map((instance) =>
    lock.withLock('nightly-report', async ({ fence, signal }) => {
      console.log(`${instance} holds the lock (fence ${fence})`);
      await sleep(300, undefined, { signal }); // work that stops if the lock is lost
      writeReport(instance, fence);
    }),
  ),
);

console.log('\nsomeone else holds it and we will not wait long:');
const held = await lock.acquire('nightly-report');
try {
  await lock.acquire('nightly-report', { wait: '200ms' });
} catch (error) {
  if (error instanceof LockTimeoutError) console.log(`  ${error.message}`);
}
await held.release();

console.log('\na holder that stalls past its ttl (no auto-extension) loses the lock:');
const stalled = await lock.acquire('nightly-report', { ttl: '300ms' });
stalled.signal.addEventListener('abort', () =>
  console.log(`  signal aborted: ${(stalled.signal.reason as Error).message}`),
);
await sleep(400);
const next = await lock.acquire('nightly-report');
console.log(
  `  new holder has fence ${next.fence} > ${stalled.fence}; the stalled release deletes nothing: ${await stalled.release()}`,
);
await next.release();

redis.disconnect();
await found.stop();

/**
 * Distributed locks: three "instances" race to run the same nightly job; exactly one runs it at
 * a time, each with a higher fencing token, and a holder that stalls past its ttl finds out.
 * Then several resources at once, `await using`, and a counting semaphore.
 *
 *   npm run example:lock                        # finds or starts a Redis by itself
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, Lock, LockTimeoutError, Semaphore } from 'redscale';
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

console.log('\nseveral resources at once, all or nothing (a shared hash tag: one script, one slot):');
await lock.withLocks(['{order:7}:stock', '{order:7}:payment'], async ({ fences }) => {
  for (const [resource, fence] of fences) console.log(`  holding ${resource} with fence ${fence}`);
});

console.log('\nawait using: released when the scope exits');
{
  await using held = await lock.acquire('cache-rebuild');
  console.log(`  holding cache-rebuild: ${held.held}`);
}
const free = await lock.tryAcquire('cache-rebuild');
console.log(`  free again after the scope: ${free !== null}`);
await free?.release();

console.log('\na semaphore: six calls to a partner API that allows two at once');
const partnerApi = new Semaphore({ redis, prefix: `example-${process.pid}`, limit: 2 });
let inFlight = 0;
await Promise.all(
  Array.from({ length: 6 }, (_, call) =>
    partnerApi.withPermit('partner-api', async ({ fence }) => {
      inFlight++;
      console.log(`  call ${call} starts (${inFlight} in flight, fence ${fence})`);
      await sleep(100);
      inFlight--;
    }),
  ),
);

redis.disconnect();
await found.stop();

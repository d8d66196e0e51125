/**
 * Checks a Redis and prints the report, then shows what /live and /ready would answer.
 *
 *   npm run example:health                     # finds or starts a Redis by itself
 *   REDIS_URL=redis://my-host:6379 npm run example:health
 */
import { createClient, RedisHealth } from 'redscale';
import { findOrStartRedis } from '../test/harness/find-redis.js';

// In your service this is just process.env.REDIS_URL; the example starts a Redis if there is none.
const found = await findOrStartRedis();
console.log(`Redis: ${found.url} (${found.source})\n`);

const redis = createClient(found.url);
const health = new RedisHealth({ redis, timeout: '500ms', latencyThreshold: '50ms' });

const report = await health.check();
console.log(`status: ${report.status}, PING ${report.latencyMs} ms, checked in ${report.durationMs} ms`);
for (const node of report.nodes) {
  const memory = node.memory;
  console.log(
    `  ${node.address} ${node.role} ${node.status}` +
      (memory
        ? `, memory ${(memory.usedBytes / 1024 / 1024).toFixed(1)} MiB of ${memory.maxBytes ? `${(memory.maxBytes / 1024 / 1024).toFixed(0)} MiB` : 'no limit'} (${memory.evictionPolicy})`
        : '') +
      `, writable: ${node.writable}`,
  );
}
for (const problem of report.problems) console.log(`  [${problem.severity}] ${problem.code}: ${problem.message}`);

console.log('\nGET /live  ->', health.liveness().statusCode);
const ready = await health.readiness();
console.log('GET /ready ->', ready.statusCode);

redis.disconnect();
await found.stop();
// A down Redis is what this example is for, but a script that checked one should say so.
if (report.status === 'down') process.exitCode = 1;

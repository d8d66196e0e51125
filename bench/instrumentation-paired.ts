/**
 * The no-subscriber cost of the instrumentation, measured paired: 15 alternations of 50,000 L1
 * hits (64 in flight) on the current build and on the build before the instrumentation, CPU per
 * hit compared pair by pair, so load from elsewhere on a shared machine hits both sides alike.
 *
 *   git archive <commit before> src | tar -x -C .bench-baseline
 *   REDSCALE_BASELINE_SRC=.bench-baseline/src tsx --import ./test/harness/lua-loader.mjs bench/instrumentation-paired.ts
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '../src/index.js';
import { findOrStartRedis } from '../test/harness/find-redis.js';

const dir = process.env.REDSCALE_BASELINE_SRC;
if (!dir) {
  console.error('REDSCALE_BASELINE_SRC must name a copy of the src/ folder before the instrumentation');
  process.exit(2);
}
const baseline = (await import(pathToFileURL(resolve(dir, 'index.ts')).href)) as typeof current;
const found = await findOrStartRedis();
const redis = current.createClient(found.url);

async function make(library: typeof current, tag: string) {
  const cache = new library.Cache({ redis, prefix: `paired:${tag}:${process.pid}`, l1: { maxEntries: 1_000 } });
  await cache.whenReady();
  for (let i = 0; i < 1_000; i++) await cache.set(`user:${i}`, { id: i });
  return cache;
}

async function cpuPerHit(cache: current.Cache): Promise<number> {
  const hits = 50_000;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 64 }, async (_, worker) => {
      for (let i = worker; i < hits; i += 64) await cache.get(`user:${i % 1_000}`);
    }),
  );
  const used = process.cpuUsage(before);
  return ((used.user + used.system) * 1_000) / hits;
}

const before = await make(baseline, 'baseline');
const now = await make(current, 'current');
const ratios: number[] = [];
for (let round = 0; round < 15; round++) ratios.push((await cpuPerHit(now)) / (await cpuPerHit(before)));
ratios.sort((a, b) => a - b);
const at = (i: number) => (ratios[i] ?? Number.NaN).toFixed(3);
console.log(`L1 hit CPU per hit, no subscriber / before: median ${at(7)} (quartiles ${at(3)} – ${at(11)})`);
await before.close();
await now.close();
redis.disconnect();
await found.stop();

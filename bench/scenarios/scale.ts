import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import {
  addressOf,
  Cache,
  createClient,
  fixedWindow,
  Lock,
  mastersOf,
  RateLimiter,
  type RedisLike,
  slidingWindow,
} from '../../src/index.js';
import { RedisCluster } from '../../test/harness/cluster.js';
import { onPath } from '../../test/harness/find-redis.js';
import type { Trial, TrialScenario } from '../lib/types.js';

/** Cluster sizes the scenario runs on. */
const SIZES = [1, 3, 6];
/** Operations per trial, and how many are in flight at once. */
const OPERATIONS = 4_000;
const CONCURRENCY = 64;
/** Commands the bench sends to read counters, or that are a connection's housekeeping: not the workload. */
const OWN = new Set(['info', 'config', 'cluster', 'ping', 'hello', 'client', 'select', 'readonly', 'echo']);
/** Pub/sub commands: counted apart, to see where the cache bus lands. */
const PUBSUB = new Set(['spublish', 'publish', 'ssubscribe', 'subscribe']);

/** A master's CPU and command-execution time (scripts' inner commands included), µs. */
export interface ServerTime {
  cpuUs: number;
  commandUs: number;
}

export async function serverTimeOf(node: Redis): Promise<ServerTime> {
  const info = (await node.info('all')) as string;
  const cpu = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  let commandUs = 0;
  for (const match of info.matchAll(/^cmdstat_([\w|]+):calls=\d+,usec=(\d+)/gm)) {
    if (!OWN.has(match[1] as string)) commandUs += Number(match[2]);
  }
  return { cpuUs: (cpu('used_cpu_user') + cpu('used_cpu_sys')) * 1_000_000, commandUs };
}

/**
 * Counts, per master (`host:port`), the commands this process sends while `run` runs: what
 * crosses the network (a script is one command, whatever it calls inside Redis), by wrapping
 * `Redis.prototype.sendCommand` (every Cluster node connection is a `Redis`). Pub/sub publishes
 * are counted apart; the bench's own and housekeeping commands are left out.
 */
export async function countByNode(run: () => Promise<void>) {
  const counts = new Map<string, { data: number; pubsub: number }>();
  const original = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
    if (!OWN.has(command.name)) {
      const address = addressOf(this);
      const entry = counts.get(address) ?? { data: 0, pubsub: 0 };
      if (PUBSUB.has(command.name)) entry.pubsub++;
      else entry.data++;
      counts.set(address, entry);
    }
    return original.call(this, command, ...rest);
  } as typeof original;
  try {
    await run();
  } finally {
    Redis.prototype.sendCommand = original;
  }
  return counts;
}

/** A workload: set up on a client, then one operation per call. */
interface Workload {
  name: string;
  setup(redis: RedisLike, prefix: string): Promise<{ operation(i: number): Promise<unknown>; close?(): Promise<void> }>;
}

const WORKLOADS: Workload[] = [
  {
    name: 'limiter consume, 10,000 identities (10/s and 1,000/min together)',
    setup: async (redis, prefix) => {
      const limiter = new RateLimiter({
        redis,
        prefix,
        limits: [
          fixedWindow({ limit: 1e6, window: '1s', name: 'second' }),
          slidingWindow({ limit: 1e6, window: '1m', name: 'minute' }),
        ],
      });
      return { operation: (i) => limiter.consume(`user:${i % 10_000}`) };
    },
  },
  {
    name: 'cache get (90%) / set with a tag (9%) / invalidateTags (1%), 5,000 keys, bus on',
    setup: async (redis, prefix) => {
      const cache = new Cache({ redis, prefix, l1: false, ttl: '5m' });
      await cache.whenReady();
      for (let i = 0; i < 5_000; i += 500) {
        await Promise.all(
          Array.from({ length: 500 }, (_, j) => cache.set(`k${i + j}`, i + j, { tags: [`t${(i + j) % 100}`] })),
        );
      }
      return {
        operation: (i) => {
          const r = i % 100;
          if (r === 0) return cache.invalidateTags([`t${(i >> 7) % 100}`]);
          if (r < 10) return cache.set(`k${(i * 7) % 5_000}`, i, { tags: [`t${i % 100}`] });
          return cache.get(`k${(i * 13) % 5_000}`);
        },
        close: () => cache.close(),
      };
    },
  },
  {
    name: 'lock acquire+release, 10,000 resources (fencing token included)',
    setup: async (redis, prefix) => {
      const lock = new Lock({ redis, prefix, ttl: '10s' });
      return { operation: async (i) => (await lock.acquire(`invoice:${i % 10_000}`)).release() };
    },
  },
  {
    name: 'limiter consume, one hot identity (under its limit: every call goes to Redis)',
    setup: async (redis, prefix) => {
      const limiter = new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 1e9, window: '1m' }) });
      return { operation: () => limiter.consume('hot') };
    },
  },
  {
    name: 'limiter consume, one hot identity over its limit (local deny cache answers)',
    setup: async (redis, prefix) => {
      const limiter = new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 10, window: '1m' }) });
      for (let i = 0; i < 10; i++) await limiter.consume('hot');
      return { operation: () => limiter.consume('hot') };
    },
  },
];

/**
 * Runs `operation` `count` times, `concurrency` at a time; resolves the wall time in ms.
 * Failures count: a scale figure from calls that failed would flatter.
 */
export async function drive(operation: (i: number) => Promise<unknown>, count: number, concurrency: number) {
  let next = 0;
  let failures = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        await operation(i).catch(() => failures++);
      }
    }),
  );
  return { ms: performance.now() - started, failures };
}

/**
 * Redscale on Redis Clusters of 1, 3 and 6 masters (each started for the run): how each
 * primitive's commands and Redis CPU spread over the masters. The figures that matter are the
 * spread (busiest master ÷ the mean: 1.00 is perfectly even) and that commands and CPU per
 * operation stay flat as masters are added; throughput on a shared 2-core machine is not one.
 */
export const scale: TrialScenario = {
  name: 'scale',
  description: `Limiter, cache and lock on Redis Clusters of ${SIZES.join(', ')} masters (started for the run), ${OPERATIONS.toLocaleString('en-US')} operations at concurrency ${CONCURRENCY}. Commands are those the client sends (a script is one); "busiest ÷ mean" is the busiest master's commands over the mean per master (1.00: even); "pub/sub on busiest" is the share of the cache bus' publishes on one master (the bus is one sharded channel); Redis CPU and command µs are summed over the masters, per operation. Ops/s on 2 shared cores is not the figure: spread and per-operation cost are.`,
  columns: [
    { key: 'opsPerSec', title: 'ops/s (2 shared cores: not the figure)', better: 'higher' },
    { key: 'commandsPerOp', title: 'commands/op', better: 'lower' },
    { key: 'imbalance', title: 'busiest ÷ mean', better: 'lower', ideal: 1 },
    { key: 'mastersUsed', title: 'masters used', better: 'higher' },
    { key: 'publishesPerOp', title: 'publishes/op', better: 'lower' },
    { key: 'publishShareOnBusiest', title: 'pub/sub on busiest', better: 'lower' },
    { key: 'cpuUsPerOp', title: 'Redis CPU µs/op', better: 'lower' },
    { key: 'commandUsPerOp', title: 'command µs/op', better: 'lower' },
    { key: 'failures', title: 'failed ops', better: 'lower', ideal: 0 },
  ],
  estimateMs: () => SIZES.length * (8_000 + WORKLOADS.length * 4_000),
  run: async (ctx) => {
    if (!onPath('redis-server') || !onPath('redis-cli')) {
      console.error('  scale needs redis-server and redis-cli on PATH (it starts Clusters of its own); skipped');
      return [];
    }
    const trials: Trial[] = [];
    for (const masters of SIZES) {
      const cluster = await RedisCluster.start({ masters });
      const redis = createClient({ nodes: cluster.nodes, commandTimeout: 30_000 });
      try {
        // A warm-up call per master makes the client learn the slot map and connect everywhere.
        await Promise.all(mastersOf(redis).map((node) => node.ping()));
        for (const [index, workload] of WORKLOADS.entries()) {
          const prefix = `${ctx.prefix}:${index}`;
          const { operation, close } = await workload.setup(redis, prefix);
          await drive(operation, Math.min(500, OPERATIONS), CONCURRENCY);
          const nodes = mastersOf(redis);
          const before = await Promise.all(nodes.map(serverTimeOf));
          let result = { ms: 0, failures: 0 };
          const counts = await countByNode(async () => {
            result = await drive(operation, OPERATIONS, CONCURRENCY);
          });
          const after = await Promise.all(nodes.map(serverTimeOf));
          const { ms, failures } = result;
          await close?.();
          const perMaster = nodes.map((node) => counts.get(addressOf(node)) ?? { data: 0, pubsub: 0 });
          const data = perMaster.map((entry) => entry.data);
          const totalData = data.reduce((a, b) => a + b, 0);
          const totalPubsub = perMaster.reduce((sum, entry) => sum + entry.pubsub, 0);
          const spent = (key: keyof ServerTime) =>
            nodes.reduce((sum, _, i) => sum + ((after[i] as ServerTime)[key] - (before[i] as ServerTime)[key]), 0);
          const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
          trials.push({
            contender: workload.name,
            kind: 'redscale',
            setting: `${masters} master${masters === 1 ? '' : 's'}`,
            metrics: {
              opsPerSec: Math.round((OPERATIONS / ms) * 1_000),
              commandsPerOp: round(totalData / OPERATIONS),
              imbalance: totalData ? round(Math.max(...data) / (totalData / masters)) : 0,
              mastersUsed: data.filter((calls) => calls > 0).length,
              publishesPerOp: round(totalPubsub / OPERATIONS, 3),
              publishShareOnBusiest: totalPubsub
                ? round(Math.max(...perMaster.map((entry) => entry.pubsub)) / totalPubsub)
                : 0,
              cpuUsPerOp: round(spent('cpuUs') / OPERATIONS, 1),
              commandUsPerOp: round(spent('commandUs') / OPERATIONS, 1),
              failures,
            },
          });
        }
      } finally {
        redis.disconnect();
        await cluster.stop();
      }
    }
    return trials;
  },
};

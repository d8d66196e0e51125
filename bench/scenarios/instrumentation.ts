import { pathToFileURL } from 'node:url';
import { InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import * as current from '../../src/index.js';
import { instrumentRedscale } from '../../src/otel/index.js';
import { type Measurement, measure } from '../lib/measure.js';
import { cyclingNames } from '../lib/names.js';
import { readCounters } from '../lib/redis-stats.js';
import type { BenchContext, Trial, TrialScenario } from '../lib/types.js';

const ROUNDS = 9;
const LOAD = { concurrency: 64, durationMs: 500 };
const KEYS = 1_000;

/** What the scenario needs from a redscale build: the current one, or a copy of an older source tree. */
type Library = Pick<typeof current, 'Cache' | 'RateLimiter' | 'fixedWindow'>;

/** A span exporter that drops everything: the cost measured is recording spans, not shipping them. */
const discard: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => {},
};

interface Setting {
  name: string;
  library: Library;
  /** Subscribes for the duration of a measurement; returns how to unsubscribe. */
  subscribe(): () => void;
}

function otelSetting(name: string, traces: boolean): Setting {
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(0), exportIntervalMillis: 3_600_000 }),
    ],
  });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard)] });
  return {
    name,
    library: current,
    subscribe: () => {
      const instrumentation = instrumentRedscale({
        meterProvider,
        tracerProvider,
        traces,
        keyGroups: [[/^user:/, 'user']],
      });
      return () => instrumentation.close();
    },
  };
}

/** The operations measured under a setting, built on its library. */
async function operationsOf(ctx: BenchContext, library: Library, tag: string) {
  const limiter = new library.RateLimiter({
    redis: ctx.redis,
    prefix: `${ctx.prefix}:instr:${tag}`,
    limits: library.fixedWindow({ limit: 1_000_000_000, window: '1h' }),
  });
  const cache = new library.Cache({ redis: ctx.redis, prefix: `${ctx.prefix}:instr:${tag}`, l1: { maxEntries: KEYS } });
  await cache.whenReady();
  for (let i = 0; i < KEYS; i++) await cache.set(`user:${i}`, { id: i, name: 'Ada' });
  const nextId = cyclingNames('user', KEYS);
  const nextKey = cyclingNames('user', KEYS);
  return {
    limiter: () => limiter.consume(nextId()),
    l1Hit: () => cache.get(nextKey()),
    close: () => cache.close(),
  };
}

const median = (runs: Measurement[]): Measurement =>
  [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(runs.length / 2)] as Measurement;

/**
 * What observing costs: a limiter check (Redis) and an L1 hit (no I/O) with nobody subscribed,
 * with OpenTelemetry metrics, and with metrics and spans, round-robin in one process. Ratios are
 * to the uninstrumented call: the source tree before the instrumentation, when
 * `REDSCALE_BASELINE_SRC` names a copy of it (e.g. `git archive <commit> src | tar -x -C .bench-baseline`
 * then `REDSCALE_BASELINE_SRC=.bench-baseline/src`), else to "no subscriber".
 */
export const instrumentation: TrialScenario = {
  name: 'instrumentation',
  description: `Cost of instrumentation: a limiter check and an L1 hit (one of ${KEYS} keys) at concurrency ${LOAD.concurrency}, median of ${ROUNDS} round-robin rounds of ${LOAD.durationMs} ms. Ratios are throughput and client CPU per op relative to the uninstrumented build (REDSCALE_BASELINE_SRC) or, without it, to "no subscriber".`,
  columns: [
    { key: 'limiterOpsPerSec', title: 'limiter ops/s', better: 'higher' },
    { key: 'limiterThroughputRatio', title: 'limiter throughput ratio', better: 'higher', ideal: 1 },
    { key: 'limiterCpuRatio', title: 'limiter CPU/op ratio', better: 'lower', ideal: 1 },
    { key: 'l1OpsPerSec', title: 'L1 hit ops/s', better: 'higher' },
    { key: 'l1ThroughputRatio', title: 'L1 throughput ratio', better: 'higher', ideal: 1 },
    { key: 'l1CpuRatio', title: 'L1 CPU/op ratio', better: 'lower', ideal: 1 },
  ],
  estimateMs: () => 4 * 2 * ROUNDS * LOAD.durationMs * 1.2 + 5_000,
  run: async (ctx) => {
    const settings: Setting[] = [];
    const baselineDir = process.env.REDSCALE_BASELINE_SRC;
    if (baselineDir) {
      const baseline = (await import(pathToFileURL(`${baselineDir}/index.ts`).href)) as Library;
      settings.push({ name: 'uninstrumented (baseline build)', library: baseline, subscribe: () => () => {} });
    }
    settings.push(
      { name: 'no subscriber', library: current, subscribe: () => () => {} },
      otelSetting('OpenTelemetry metrics', false),
      otelSetting('OpenTelemetry metrics + spans', true),
    );
    const counters = () => readCounters(ctx.redis);
    const prepared = await Promise.all(
      settings.map(async (setting, i) => ({
        setting,
        operations: await operationsOf(ctx, setting.library, String(i)),
        /** The reference measured beside it in its phase (the second phase re-measures it). */
        reference: undefined as { limiter: Measurement; l1: Measurement } | undefined,
      })),
    );
    const base = prepared[0] as (typeof prepared)[number];
    const quiet = prepared.filter((entry) => !entry.setting.name.startsWith('OpenTelemetry'));
    const observed = prepared.filter((entry) => entry.setting.name.startsWith('OpenTelemetry'));
    // Two phases, each round-robin with the reference: first nobody ever subscribes (a process
    // that never observes keeps its call sites monomorphic), then OpenTelemetry subscribes and
    // unsubscribes around each of its measurements.
    const phase = async (entries: typeof prepared) => {
      const runs = new Map(entries.map((entry) => [entry, { limiter: [] as Measurement[], l1: [] as Measurement[] }]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const entry of entries) {
          const unsubscribe = entry.setting.subscribe();
          try {
            runs.get(entry)?.limiter.push(await measure(entry.operations.limiter, LOAD, counters));
            runs.get(entry)?.l1.push(await measure(entry.operations.l1Hit, LOAD, counters));
          } finally {
            unsubscribe();
          }
        }
      }
      return runs;
    };
    const results = new Map<(typeof prepared)[number], { limiter: Measurement; l1: Measurement }>();
    try {
      for (const [entry, runs] of await phase(quiet)) {
        results.set(entry, { limiter: median(runs.limiter), l1: median(runs.l1) });
      }
      const second = await phase([base, ...observed]);
      const secondBase = second.get(base);
      for (const [entry, runs] of second) {
        if (entry === base) continue;
        results.set(entry, { limiter: median(runs.limiter), l1: median(runs.l1) });
        if (secondBase) entry.reference = { limiter: median(secondBase.limiter), l1: median(secondBase.l1) };
      }
    } finally {
      for (const entry of prepared) await entry.operations.close();
    }
    const ratio = (value: number, reference: number) => Math.round((value / reference) * 100) / 100;
    const baseResult = results.get(base);
    return prepared.map((entry): Trial => {
      const { limiter, l1 } = results.get(entry) as { limiter: Measurement; l1: Measurement };
      const baseLimiter = entry.reference?.limiter ?? (baseResult?.limiter as Measurement);
      const baseL1 = entry.reference?.l1 ?? (baseResult?.l1 as Measurement);
      return {
        contender: entry.setting.name,
        kind: entry.setting.library === current ? 'redscale' : 'baseline',
        metrics: {
          limiterOpsPerSec: limiter.opsPerSec,
          limiterThroughputRatio: ratio(limiter.opsPerSec, baseLimiter.opsPerSec),
          limiterCpuRatio: ratio(limiter.clientCpuUs, baseLimiter.clientCpuUs),
          l1OpsPerSec: l1.opsPerSec,
          l1ThroughputRatio: ratio(l1.opsPerSec, baseL1.opsPerSec),
          l1CpuRatio: ratio(l1.clientCpuUs, baseL1.clientCpuUs),
        },
      };
    });
  },
};

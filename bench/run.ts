/**
 * redscale benchmarks: every scenario side by side with the ceiling and the peers, in one run.
 *
 *   npm run bench                                  # every scenario (a few minutes)
 *   npm run bench -- limiter cache-l2-hit          # some scenarios
 *   npm run bench -- --rounds 5 --duration 2s --concurrency 32
 *   npm run bench -- --tag-sizes 100,10000 --pattern-keys 20000
 *   npm run bench -- --out bench/report            # write the published report (README embeds it)
 *
 * Uses REDIS_URL if set, else starts a throwaway redis-server (or a container). Prints the plan
 * first, a line per scenario as it goes, then a markdown report, and writes results.json,
 * results.md and chart.svg to --out (default bench/results). Timings on shared machines are
 * noisy: compare ratios and CPU per operation within one run, not absolute numbers across runs.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, parseDuration, scanEveryMaster } from '../src/index.js';
import { findOrStartRedis } from '../test/harness/find-redis.js';
import { drawChart } from './lib/chart.js';
import { countSentCommands } from './lib/commands.js';
import { type Measurement, measure } from './lib/measure.js';
import { readCounters } from './lib/redis-stats.js';
import { type Row, toMarkdown, trialsToMarkdown, withRatios } from './lib/report.js';
import type { BenchContext, BenchOptions, Scenario, Trial, TrialScenario } from './lib/types.js';
import { writeBufferEnqueue } from './scenarios/buffer.js';
import { cacheL1Hit, cacheL2Hit, cacheStampede } from './scenarios/cache.js';
import { ceiling } from './scenarios/ceiling.js';
import { clientDefaults } from './scenarios/client.js';
import { health } from './scenarios/health.js';
import { hotKey } from './scenarios/hot-key.js';
import { httpCacheScenario } from './scenarios/http-cache.js';
import { instrumentation } from './scenarios/instrumentation.js';
import { ioredisVersions } from './scenarios/ioredis-versions.js';
import { lockScenario, semaphoreScenario } from './scenarios/lock.js';
import { patternInvalidation } from './scenarios/patterns.js';
import { limiterBatching, limiterCheck, limiterFlood } from './scenarios/ratelimit.js';
import { scale } from './scenarios/scale.js';
import { tagInvalidation } from './scenarios/tags.js';

const SCENARIOS: Array<Scenario | TrialScenario> = [
  ceiling,
  clientDefaults,
  ioredisVersions,
  limiterCheck,
  limiterBatching,
  limiterFlood,
  cacheL2Hit,
  cacheL1Hit,
  cacheStampede,
  tagInvalidation,
  patternInvalidation,
  lockScenario,
  semaphoreScenario,
  writeBufferEnqueue,
  health,
  scale,
  hotKey,
  httpCacheScenario,
  instrumentation,
];

const USAGE = `usage: npm run bench -- [scenario ...] [options]

scenarios: ${SCENARIOS.map((s) => s.name).join(', ')} (default: all)
options:
  --rounds N          measured rounds per contender, interleaved (default 3)
  --duration D        length of one round, e.g. 1s, 500ms (default 1s)
  --concurrency N     operations in flight per contender (default 64)
  --calibration N     operations to warm up and count commands with (default 200)
  --tag-sizes A,B     entries per tag in the tag scenario (default 100,1000,10000,100000)
  --pattern-keys N    keys in the pattern scenario (default 100000)
  --out DIR           where results.json, results.md and chart.svg go (default bench/results)
  --help              this text

Redis: REDIS_URL if set (never flushed; keys use a prefix, deleted afterwards), else a throwaway
redis-server from PATH on a free port, else a redis:7-alpine container when Docker answers.`;

/** A usage error: say what was wrong and how to call, without a stack trace; exit code 2. */
function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

const parsed = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        rounds: { type: 'string', default: '3' },
        duration: { type: 'string', default: '1s' },
        concurrency: { type: 'string', default: '64' },
        calibration: { type: 'string', default: '200' },
        'tag-sizes': { type: 'string', default: '100,1000,10000,100000' },
        'pattern-keys': { type: 'string', default: '100000' },
        out: { type: 'string', default: 'bench/results' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
})();
const { values, positionals } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

/** A positive integer flag, or a usage error quoting what was given. */
function positiveInteger(flag: string, raw: string): number {
  const value = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) usageError(`--${flag} must be a positive integer, got "${raw}"`);
  return value;
}

const rounds = positiveInteger('rounds', values.rounds);
const concurrency = positiveInteger('concurrency', values.concurrency);
const calibration = positiveInteger('calibration', values.calibration);
const durationMs = (() => {
  try {
    const ms = parseDuration(values.duration, '--duration');
    if (ms < 1) throw new Error(`--duration must be at least 1 ms, got "${values.duration}"`);
    return ms;
  } catch (error) {
    return usageError((error as Error).message);
  }
})();
const options: BenchOptions = {
  tagSizes: values['tag-sizes'].split(',').map((size) => positiveInteger('tag-sizes', size)),
  patternKeys: positiveInteger('pattern-keys', values['pattern-keys']),
};
const unknown = positionals.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
if (unknown.length) usageError(`unknown scenario(s): ${unknown.join(', ')}`);
const selected = positionals.length ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;

const found = await findOrStartRedis();
const redis = createClient({ url: found.url, commandTimeout: 30_000 });
const admin = createClient(found.url);
const prefix = `redscale-bench:${process.pid}`;
const started = Date.now();
const loadAtStart = loadavg();
const ioredisVersion = (JSON.parse(readFileSync('node_modules/ioredis/package.json', 'utf8')) as { version: string })
  .version;
const contextOf = (scenario: { name: string }): BenchContext => ({
  redisUrl: found.url,
  redis,
  prefix: `${prefix}:${scenario.name}`,
});
const concurrenciesOf = (scenario: Scenario) => scenario.concurrencies ?? [scenario.load?.concurrency ?? concurrency];

// The plan, up front: what runs, and about how long it takes.
const plan = selected.map((scenario) => {
  if ('run' in scenario) return { name: scenario.name, detail: 'trial', ms: scenario.estimateMs?.(options) ?? 20_000 };
  const contenders = scenario.contenders(contextOf(scenario)).length;
  const levels = concurrenciesOf(scenario);
  const roundMs = (scenario.load?.durationMs ?? durationMs) * 1.1 + 50;
  const ms = levels.length * contenders * (rounds * roundMs + calibration * 0.5 + 300);
  return { name: scenario.name, detail: `${contenders} contenders at concurrency ${levels.join(', ')}`, ms };
});
const totalMs = plan.reduce((sum, step) => sum + step.ms, 0);
console.error(
  [
    `Redis ${found.url} (${found.source}); ioredis ${ioredisVersion}; load average ${loadAtStart.map((n) => n.toFixed(2)).join(' ')}`,
    `Plan: ${selected.length} scenario(s), ${rounds} round(s) × ${durationMs} ms, about ${formatMs(totalMs)}:`,
    ...plan.map((step) => `  ${step.name.padEnd(22)} ${step.detail.padEnd(44)} ~${formatMs(step.ms)}`),
  ].join('\n'),
);

const rows: Row[] = [];
const trials: Array<Trial & { scenario: string }> = [];
try {
  for (const [index, scenario] of selected.entries()) {
    const scenarioStarted = Date.now();
    console.error(`[${index + 1}/${selected.length}] ${scenario.name}…`);
    if ('run' in scenario) {
      for (const trial of await scenario.run(contextOf(scenario), options)) {
        trials.push({ ...trial, scenario: scenario.name });
        console.error(
          `  ${trial.contender}${trial.setting ? ` (${trial.setting})` : ''}: ${JSON.stringify(trial.metrics)}`,
        );
      }
    } else {
      for (const level of concurrenciesOf(scenario)) {
        const name = scenario.concurrencies ? `${scenario.name} @ c=${level}` : scenario.name;
        const load = { durationMs, ...scenario.load, concurrency: level };
        rows.push(...(await runScenario(scenario, name, load)));
      }
    }
    console.error(`  done in ${formatMs(Date.now() - scenarioStarted)}`);
  }
} finally {
  for await (const keys of scanEveryMaster(admin, { match: `${prefix}:*` })) {
    for (let i = 0; i < keys.length; i += 500) await admin.unlink(...keys.slice(i, i + 500));
  }
  redis.disconnect();
  admin.disconnect();
  await found.stop();
}

/** Sets up every contender, counts its commands, then measures them round-robin. */
async function runScenario(scenario: Scenario, name: string, load: { concurrency: number; durationMs: number }) {
  const contenders = scenario.contenders(contextOf(scenario));
  const prepared: Array<{
    contender: (typeof contenders)[number];
    operation: () => Promise<unknown>;
    commandsPerOp: number;
    results: Measurement[];
  }> = [];
  const out: Row[] = [];
  try {
    for (const contender of contenders) {
      const operation = await contender.setup();
      // Commands sent per operation, counted on the server over sequential calls.
      const sent = await countSentCommands(admin, async () => {
        for (let i = 0; i < calibration; i++) await operation();
      });
      prepared.push({ contender, operation, commandsPerOp: Math.round((sent / calibration) * 100) / 100, results: [] });
    }
    // Round-robin: every contender runs once per round, so drift on a shared machine (other
    // load, Redis memory growing, thermal) spreads over all of them instead of favouring one.
    for (let round = 0; round < rounds; round++) {
      for (const entry of prepared) entry.results.push(await measure(entry.operation, load, () => readCounters(admin)));
    }
    for (const { contender, commandsPerOp, results } of prepared) {
      const median = [...results].sort((a, b) => a.opsPerSec - b.opsPerSec)[
        Math.floor(results.length / 2)
      ] as Measurement;
      out.push({
        scenario: name,
        contender: contender.name,
        kind: contender.kind,
        commandsPerOp,
        rounds,
        ...median,
        vsCeiling: null,
        vsBestPeer: null,
      });
      console.error(
        `  ${name} / ${contender.name}: ${median.opsPerSec.toLocaleString('en-US')} ops/s, client ${median.clientCpuUs} µs/op, Redis ${median.redisCpuUs} µs/op`,
      );
    }
  } finally {
    for (const contender of contenders) await contender.teardown?.();
  }
  return out;
}

function formatMs(ms: number): string {
  return ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${Math.round(ms / 1_000)} s`;
}

const final = withRatios(rows);
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const loadAtEnd = loadavg();
const header = [
  '## redscale benchmarks',
  '',
  `${new Date().toISOString().slice(0, 10)} · Node ${process.version} · ioredis ${ioredisVersion} · ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} · load average ${loadAtStart[0]?.toFixed(2)} at the start, ${loadAtEnd[0]?.toFixed(2)} at the end · Redis from ${found.source} · median of ${rounds} rounds of ${durationMs} ms at concurrency ${concurrency} (unless a scenario says otherwise) · ${minutes} min. Ratios compare contenders within this run; CPU columns are per operation (client: this process; Redis: the server process, and command execution alone).`,
].join('\n');
const descriptions = Object.fromEntries(
  selected.flatMap((s) =>
    'run' in s || !s.concurrencies
      ? [[s.name, s.description]]
      : s.concurrencies.map((level) => [`${s.name} @ c=${level}`, s.description]),
  ),
);
const trialScenarios = selected.filter((s): s is TrialScenario => 'run' in s);
const markdown = [toMarkdown(final, descriptions, header), trialsToMarkdown(trials, trialScenarios)].join('\n');
const out = resolve(String(values.out));
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'results.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, ioredis: ioredisVersion, loadAverage: { start: loadAtStart, end: loadAtEnd }, rounds, durationMs, concurrency, options, rows: final, trials }, null, 2)}\n`,
);
writeFileSync(join(out, 'results.md'), `${markdown}\n`);
if (final.length)
  writeFileSync(
    join(out, 'chart.svg'),
    `${drawChart(final, `redscale benchmarks · ${new Date().toISOString().slice(0, 10)} · Node ${process.version}`)}\n`,
  );
console.log(markdown);
console.error(`\nwrote ${join(out, 'results.md')}, results.json and chart.svg`);

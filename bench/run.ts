/**
 * redscale benchmarks: every scenario side by side with the ceiling and the peers, in one run.
 *
 *   npm run bench                                  # every scenario (a few minutes)
 *   npm run bench -- limiter cache-l2-hit          # some scenarios
 *   npm run bench -- --rounds 5 --duration 2s --concurrency 32
 *   npm run bench -- --tag-sizes 100,10000 --pattern-keys 20000
 *   npm run bench -- --out bench/report            # write the published report (README embeds it)
 *
 * Finds or starts a Redis by itself (REDIS_URL first). Prints a markdown report and writes
 * results.json, results.md and chart.svg to --out (default bench/results). Timings on shared
 * machines are noisy: compare the ratios within one run, not absolute numbers across runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, parseDuration, scanEveryMaster } from '../src/index.js';
import { findOrStartRedis } from '../test/harness/find-redis.js';
import { drawChart } from './lib/chart.js';
import { countSentCommands } from './lib/commands.js';
import { type Measurement, measure } from './lib/measure.js';
import { type Row, toMarkdown, trialsToMarkdown, withRatios } from './lib/report.js';
import type { BenchOptions, Scenario, Trial, TrialScenario } from './lib/types.js';
import { cacheL1Hit, cacheL2Hit, cacheStampede } from './scenarios/cache.js';
import { ceiling } from './scenarios/ceiling.js';
import { health } from './scenarios/health.js';
import { lockScenario } from './scenarios/lock.js';
import { patternInvalidation } from './scenarios/patterns.js';
import { limiterCheck, limiterFlood } from './scenarios/ratelimit.js';
import { tagInvalidation } from './scenarios/tags.js';

const SCENARIOS: Array<Scenario | TrialScenario> = [
  ceiling,
  limiterCheck,
  limiterFlood,
  cacheL2Hit,
  cacheL1Hit,
  cacheStampede,
  tagInvalidation,
  patternInvalidation,
  lockScenario,
  health,
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

Uses REDIS_URL, else 127.0.0.1:6379, else starts redis-server from PATH.`;

/** A usage error: say what was wrong and how to call, without a stack trace. */
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
const rounds = Number(values.rounds);
const durationMs = (() => {
  try {
    return parseDuration(values.duration, '--duration');
  } catch (error) {
    return usageError((error as Error).message);
  }
})();
const concurrency = Number(values.concurrency);
const calibration = Number(values.calibration);
const options: BenchOptions = {
  tagSizes: String(values['tag-sizes']).split(',').map(Number),
  patternKeys: Number(values['pattern-keys']),
};
for (const [flag, value] of Object.entries({ rounds, concurrency, calibration, 'pattern-keys': options.patternKeys })) {
  if (!Number.isInteger(value) || value < 1) usageError(`--${flag} must be a positive integer, got ${value}`);
}
if (options.tagSizes.some((size) => !Number.isInteger(size) || size < 1))
  usageError(`--tag-sizes must be positive integers, got ${values['tag-sizes']}`);
const unknown = positionals.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
if (unknown.length) usageError(`unknown scenario(s): ${unknown.join(', ')}`);
const selected = positionals.length ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;

const found = await findOrStartRedis();
const redis = createClient({ url: found.url, commandTimeout: 30_000 });
const admin = createClient(found.url);
const prefix = `redscale-bench:${process.pid}`;
const started = Date.now();
console.error(`Redis ${found.url} (${found.source}); ${rounds} rounds × ${durationMs} ms, concurrency ${concurrency}`);

const rows: Row[] = [];
const trials: Array<Trial & { scenario: string }> = [];
try {
  for (const scenario of selected) {
    const context = { redisUrl: found.url, redis, prefix: `${prefix}:${scenario.name}` };
    if ('run' in scenario) {
      for (const trial of await scenario.run(context, options)) {
        trials.push({ ...trial, scenario: scenario.name });
        console.error(
          `  ${scenario.name} / ${trial.contender}${trial.setting ? ` (${trial.setting})` : ''}: ${JSON.stringify(trial.metrics)}`,
        );
      }
      continue;
    }
    const load = { concurrency, durationMs, ...scenario.load };
    const contenders = scenario.contenders(context);
    const prepared: Array<{
      contender: (typeof contenders)[number];
      operation: () => Promise<unknown>;
      commandsPerOp: number;
      results: Measurement[];
    }> = [];
    try {
      for (const contender of contenders) {
        const operation = await contender.setup();
        // Commands sent per operation, counted on the server over sequential calls.
        const sent = await countSentCommands(admin, async () => {
          for (let i = 0; i < calibration; i++) await operation();
        });
        prepared.push({
          contender,
          operation,
          commandsPerOp: Math.round((sent / calibration) * 100) / 100,
          results: [],
        });
      }
      // Round-robin: every contender runs once per round, so drift on a shared machine (other
      // load, Redis memory growing, thermal) spreads over all of them instead of favouring one.
      for (let round = 0; round < rounds; round++) {
        for (const entry of prepared) entry.results.push(await measure(entry.operation, load));
      }
      for (const { contender, commandsPerOp, results } of prepared) {
        const median = [...results].sort((a, b) => a.opsPerSec - b.opsPerSec)[
          Math.floor(results.length / 2)
        ] as Measurement;
        rows.push({
          scenario: scenario.name,
          contender: contender.name,
          kind: contender.kind,
          commandsPerOp,
          rounds,
          ...median,
          vsCeiling: null,
          vsBestPeer: null,
        });
        console.error(`  ${scenario.name} / ${contender.name}: ${median.opsPerSec.toLocaleString('en-US')} ops/s`);
      }
    } finally {
      for (const contender of contenders) await contender.teardown?.();
    }
  }
} finally {
  for await (const keys of scanEveryMaster(admin, { match: `${prefix}:*` })) {
    for (let i = 0; i < keys.length; i += 500) await admin.unlink(...keys.slice(i, i + 500));
  }
  redis.disconnect();
  admin.disconnect();
  await found.stop();
}

const final = withRatios(rows);
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const header = [
  '## redscale benchmarks',
  '',
  `${new Date().toISOString().slice(0, 10)} · Node ${process.version} · ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} · Redis from ${found.source} · median of ${rounds} rounds of ${durationMs} ms at concurrency ${concurrency} (unless a scenario says otherwise) · ${minutes} min. Ratios compare contenders within this run.`,
].join('\n');
const descriptions = Object.fromEntries(selected.map((s) => [s.name, s.description]));
const trialScenarios = selected.filter((s): s is TrialScenario => 'run' in s);
const markdown = [toMarkdown(final, descriptions, header), trialsToMarkdown(trials, trialScenarios)].join('\n');
const out = resolve(String(values.out));
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'results.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds, durationMs, concurrency, options, rows: final, trials }, null, 2)}\n`,
);
writeFileSync(join(out, 'results.md'), `${markdown}\n`);
if (final.length)
  writeFileSync(
    join(out, 'chart.svg'),
    `${drawChart(final, `redscale benchmarks · ${new Date().toISOString().slice(0, 10)} · Node ${process.version}`)}\n`,
  );
console.log(markdown);
console.error(`\nwrote ${join(out, 'results.md')}, results.json and chart.svg`);

/**
 * redscale benchmarks: every scenario side by side with the ceiling and the peers, in one run.
 *
 *   npm run bench                          # every scenario
 *   npm run bench -- ceiling health        # some scenarios
 *   npm run bench -- --rounds 5 --duration 3s --concurrency 32
 *
 * Finds or starts a Redis by itself (REDIS_URL first). Prints a markdown table per scenario and
 * writes bench/results/results.{json,md}. Timings on shared machines are noisy: compare the
 * ratios within one run, not absolute numbers across runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, parseDuration } from '../src/index.js';
import { findOrStartRedis } from '../test/harness/find-redis.js';
import { countSentCommands } from './lib/commands.js';
import { type Measurement, measure } from './lib/measure.js';
import { type Row, toMarkdown, withRatios } from './lib/report.js';
import type { CountingScenario, Scenario } from './lib/types.js';
import { cacheL1Hit, cacheL2Hit, cacheStampede } from './scenarios/cache.js';
import { ceiling } from './scenarios/ceiling.js';
import { health } from './scenarios/health.js';
import { lockScenario } from './scenarios/lock.js';
import { limiterCheck, limiterFlood } from './scenarios/ratelimit.js';

const SCENARIOS: Array<Scenario | CountingScenario> = [
  ceiling,
  limiterCheck,
  limiterFlood,
  cacheL2Hit,
  cacheL1Hit,
  cacheStampede,
  lockScenario,
  health,
];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '2s' },
    concurrency: { type: 'string', default: '64' },
    calibration: { type: 'string', default: '200' },
  },
});
const rounds = Number(values.rounds);
const durationMs = parseDuration(values.duration, '--duration');
const concurrency = Number(values.concurrency);
const calibration = Number(values.calibration);
const unknown = positionals.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const selected = positionals.length ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;

const found = await findOrStartRedis();
const redis = createClient(found.url);
const admin = createClient(found.url);
const prefix = `redscale-bench:${process.pid}`;
console.error(`Redis ${found.url} (${found.source}); ${rounds} rounds × ${durationMs} ms, concurrency ${concurrency}`);

const rows: Row[] = [];
const counts: Array<{
  scenario: string;
  contender: string;
  kind: string;
  metric: string;
  value: number;
  ideal: number;
}> = [];
try {
  for (const scenario of selected) {
    if ('metric' in scenario) {
      for (const contender of scenario.contenders({
        redisUrl: found.url,
        redis,
        prefix: `${prefix}:${scenario.name}`,
      })) {
        const value = await contender.run();
        counts.push({
          scenario: scenario.name,
          contender: contender.name,
          kind: contender.kind,
          metric: scenario.metric,
          value,
          ideal: scenario.ideal,
        });
        console.error(`  ${scenario.name} / ${contender.name}: ${value} ${scenario.metric}`);
      }
      continue;
    }
    const load = { concurrency, durationMs, ...scenario.load };
    const contenders = scenario.contenders({ redisUrl: found.url, redis, prefix: `${prefix}:${scenario.name}` });
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
  for await (const keys of (await import('../src/index.js')).scanEveryMaster(admin, { match: `${prefix}:*` })) {
    if (keys.length) await admin.unlink(...keys);
  }
  redis.disconnect();
  admin.disconnect();
  await found.stop();
}

const final = withRatios(rows);
const header = [
  '## redscale benchmarks',
  '',
  `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Redis from ${found.source}; median of ${rounds} rounds of ${durationMs} ms at concurrency ${concurrency} (unless a scenario says otherwise). Ratios compare contenders within this run.`,
].join('\n');
const descriptions = Object.fromEntries(selected.map((s) => [s.name, s.description]));
const countTables = [...new Set(counts.map((count) => count.scenario))].map((name) => {
  const lines = [
    `### ${name}`,
    '',
    descriptions[name] ?? '',
    '',
    '| contender | kind | result | × ideal |',
    '|---|---|---:|---:|',
  ];
  for (const count of counts.filter((candidate) => candidate.scenario === name)) {
    lines.push(
      `| ${count.contender} | ${count.kind} | ${count.value} ${count.metric} | ${Math.round((count.value / count.ideal) * 100) / 100} |`,
    );
  }
  return `${lines.join('\n')}\n`;
});
const markdown = [toMarkdown(final, descriptions, header), ...countTables].join('\n');
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(
  join(dir, 'results.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds, durationMs, concurrency, rows: final }, null, 2)}\n`,
);
writeFileSync(join(dir, 'results.md'), `${markdown}\n`);
console.log(markdown);

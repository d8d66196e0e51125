import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/** One sample of the Prometheus text format: `name{label="value",…} number`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (comments skipped; every sample line checked). */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type?.[1] && type[2]) types.set(type[1], type[2]);
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match?.[1] || !match[3]) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (label[1]) labels[label[1]] = label[2] ?? '';
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name)
    .filter((sample) => Object.entries(where).every(([key, wanted]) => sample.labels[key] === wanted))
    .reduce((total, sample) => total + sample.value, 0);
}

describe('the observability example app', () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('serves OpenTelemetry metrics at /metrics in the Prometheus text format, and hit rate and breakers at /health/stats', async () => {
    child = spawn(
      process.execPath,
      [
        resolve(root, 'node_modules/tsx/dist/cli.mjs'),
        '--import',
        './test/harness/lua-loader.mjs',
        'examples/observability/main.ts',
      ],
      { cwd: root, env: { ...process.env, SERVE: '1', PORT: '0', REDIS_URL: inject('redisUrl') }, stdio: 'pipe' },
    );
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const base = await new Promise<string>((found, failed) => {
      child?.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
        if (url) found(url);
      });
      child?.once('exit', (code) => failed(new Error(`the example exited (${code}): ${output}`)));
    });

    // Two reads of user 1 (a miss that loads, then a hit), one of user 2 (a miss); the 4th call is over the limit of 3.
    const statuses: number[] = [];
    for (const id of [1, 1, 2, 3]) statuses.push((await fetch(`${base}/users/${id}`)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);

    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const { samples, types } = parsePrometheus(await response.text());

    expect(types.get('redscale_ratelimit_decisions_total')).toBe('counter');
    expect(types.get('redscale_cache_duration')).toBe('histogram');
    expect(value(samples, 'redscale_ratelimit_decisions_total', { redscale_ratelimit_outcome: 'allowed' })).toBe(3);
    expect(
      value(samples, 'redscale_ratelimit_decisions_total', {
        redscale_ratelimit_outcome: 'refused',
        redscale_ratelimit_reason: 'limit',
        redscale_ratelimit_source: 'redis',
        db_system: 'redis',
      }),
    ).toBe(1);
    expect(value(samples, 'redscale_cache_misses_total', { redscale_key_group: 'user' })).toBe(2);
    expect(value(samples, 'redscale_cache_loads_total', { redscale_key_group: 'user' })).toBe(2);
    expect(value(samples, 'redscale_cache_hits_total', { redscale_key_group: 'user' })).toBe(1);
    expect(value(samples, 'redscale_ratelimit_duration_count', { db_operation_name: 'consume' })).toBe(4);
    // Bounded labels: ids and keys never appear, only their group.
    for (const sample of samples) {
      for (const label of Object.values(sample.labels)) expect(label).not.toMatch(/user:|127\.0\.0\.1/);
    }

    const stats = (await (await fetch(`${base}/health/stats`)).json()) as {
      caches: { users: { hitRate: number; circuitBreakers: Record<string, string> } };
      limiters: { api: { circuitBreakers: Record<string, string>; stats: { allowed: number; limited: number } } };
    };
    expect(stats.caches.users.hitRate).toBeCloseTo(1 / 3);
    expect(stats.caches.users.circuitBreakers).toEqual({ standalone: 'closed' });
    expect(stats.limiters.api.stats).toMatchObject({ allowed: 3, limited: 1 });
    expect(stats.limiters.api.circuitBreakers).toEqual({ standalone: 'closed' });
  }, 40_000);
});

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { build } from 'tsup';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisHealth } from '../../src/index.js';
import { connect } from '../harness/context.js';

/**
 * Jest, Nest's default test runner, runs CommonJS in `vm.Script`s without a dynamic-import
 * callback (unless started with --experimental-vm-modules): any `import()` left in the CJS
 * build rejects there. This builds `redscale/nestjs` as the package does (tsup, CJS) and runs
 * it the way Jest does.
 */
describe('redscale/nestjs in a CommonJS runtime without dynamic import (Jest)', () => {
  const redis = connect('standalone');
  let outDir = '';
  afterAll(async () => {
    redis.disconnect();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it('RedisHealthIndicator answers up (no dynamic import in the CJS build)', async () => {
    outDir = await mkdtemp(join(tmpdir(), 'redscale-cjs-'));
    await build({
      config: false,
      entry: { nestjs: 'src/adapters/nestjs/index.ts' },
      format: ['cjs'],
      outDir,
      platform: 'node',
      target: 'node20',
      dts: false,
      silent: true,
      loader: { '.lua': 'text' },
      define: { __REDSCALE_VERSION__: JSON.stringify('0.0.0-test') },
    });
    const file = join(outDir, 'nestjs.cjs');
    const source = await readFile(file, 'utf8');
    const module = { exports: {} as Record<string, unknown> };
    // What Jest does: a wrapper function compiled by vm.Script, with no importModuleDynamically.
    const wrapper = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
      filename: file,
    }).runInThisContext() as (...args: unknown[]) => void;
    wrapper(module.exports, createRequire(join(process.cwd(), 'package.json')), module, file, outDir);
    const Indicator = module.exports.RedisHealthIndicator as new (
      health: RedisHealth,
    ) => { isHealthy(key: string): Promise<Record<string, { status: string }>> };
    const indicator = new Indicator(new RedisHealth({ redis, timeout: 1_000 }));
    const result = await indicator.isHealthy('cache');
    expect(result).toMatchObject({ cache: { status: 'up', redis: 'up', mode: 'standalone' } });
  });
});

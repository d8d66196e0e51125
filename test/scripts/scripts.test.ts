import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addressOf, createClient, hashTagOnNode, mastersOf } from '../../src/index.js';
import { evalScript, shaOf } from '../../src/scripts/eval-script.js';
import { commandName, runScript, SCRIPTS, type ScriptName, VERSION } from '../../src/scripts/registry.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';

const LUA_DIR = join(import.meta.dirname, '../../src/scripts/lua');
const files = readdirSync(LUA_DIR).filter((file) => file.endsWith('.lua'));
const camel = (file: string) => file.replace(/\.lua$/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

describe('Lua script files', () => {
  it('are exactly the registered scripts', () => {
    expect(files.map(camel).sort()).toEqual(Object.keys(SCRIPTS).sort());
  });

  it.each(files)('%s opens with a header documenting KEYS, ARGV and the reply', (file) => {
    const source = readFileSync(join(LUA_DIR, file), 'utf8');
    expect(source.startsWith('--[[')).toBe(true);
    const header = source.slice(0, source.indexOf(']]'));
    expect(header).toMatch(/^\s+KEYS\[1/m);
    expect(header).toMatch(/^\s+(ARGV\[1\]|ARGV\s+none)/m);
    expect(header).toMatch(/^\s+Reply\s/m);
  });

  it('registers under names that carry the package version', () => {
    expect(commandName('healthProbe', 1)).toBe(`redscale_v${VERSION.replace(/[^0-9A-Za-z]/g, '_')}_healthProbe_1`);
  });

  it('are known to Redis by the SHA1 of their text, so two versions never run each other', () => {
    for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
      expect(shaOf(name)).toBe(createHash('sha1').update(SCRIPTS[name]).digest('hex'));
    }
    expect(new Set(Object.values(SCRIPTS)).size).toBe(Object.keys(SCRIPTS).length);
  });
});

describe('script loading on a real Redis', () => {
  it.each(Object.keys(SCRIPTS) as ScriptName[])(
    '%s compiles and loads (SCRIPT LOAD returns its SHA1)',
    async (name) => {
      const redis = connect('standalone');
      try {
        const sha = await redis.script('LOAD', SCRIPTS[name]);
        expect(sha).toBe(createHash('sha1').update(SCRIPTS[name]).digest('hex'));
      } finally {
        redis.disconnect();
      }
    },
  );
});

describe.each<Topology>(['standalone', 'cluster'])('scripts on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('scripts');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('run on keys in every slot range (one key per master)', async () => {
    await redis.ping();
    for (const node of mastersOf(redis)) {
      const key = `${prefix}:${hashTagOnNode(redis, node)}`;
      const reply = (await runScript(redis, 'healthProbe', [key], [5_000])) as number[];
      expect(reply).toHaveLength(2);
      expect(Math.abs(reply[0]! * 1000 - Date.now())).toBeLessThan(5_000);
      // The key is on the master that owns its slot.
      expect(await node.exists(key)).toBe(1);
    }
    expect(mastersOf(redis)).toHaveLength(topology === 'cluster' ? 3 : 1);
  });

  it('run when first used in the same tick as other commands (a pending auto-pipeline)', async () => {
    const fresh = connect(topology, { autoPipelining: true });
    try {
      await fresh.ping();
      const key = `${prefix}:same-tick:{t}`;
      const [got, probe, set] = await Promise.all([
        fresh.get(key),
        runScript(fresh, 'healthProbe', [key], [5_000]),
        fresh.set(`${prefix}:same-tick:{t}:b`, '1', 'PX', 5_000),
      ]);
      expect(got).toBeNull();
      expect(probe).toHaveLength(2);
      expect(set).toBe('OK');
    } finally {
      fresh.disconnect();
    }
  });

  it('evalScript runs on every master, and after SCRIPT FLUSH on every node', async () => {
    const keys = mastersOf(redis).map((node) => `${prefix}:eval:${hashTagOnNode(redis, node)}`);
    for (const key of keys) await expect(evalScript(redis, 'healthProbe', [key], [5_000])).resolves.toHaveLength(2);
    await Promise.all(mastersOf(redis).map((node) => node.script('FLUSH')));
    for (const key of keys) await expect(evalScript(redis, 'healthProbe', [key], [5_000])).resolves.toHaveLength(2);
    for (const [i, node] of mastersOf(redis).entries()) expect(await node.exists(keys[i] as string)).toBe(1);
  });

  it('still run after SCRIPT FLUSH on every node', async () => {
    const keys = mastersOf(redis).map((node) => `${prefix}:flush:${hashTagOnNode(redis, node)}`);
    for (const key of keys) await runScript(redis, 'healthProbe', [key], [5_000]);
    await Promise.all(mastersOf(redis).map((node) => node.script('FLUSH')));
    for (const key of keys) await expect(runScript(redis, 'healthProbe', [key], [5_000])).resolves.toHaveLength(2);
  });
});

describe('round trips', () => {
  it('cost one EVALSHA per call, and one extra EVAL only after a SCRIPT FLUSH', async () => {
    const server = await RedisServer.start();
    const redis = createClient(server.url);
    const stats = async () => {
      const info = await redis.info('commandstats');
      const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      return { evalsha: calls('evalsha'), eval: calls('eval'), scriptLoad: calls('script') };
    };
    try {
      await runScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      const before = await stats();
      for (let i = 0; i < 5; i++) await runScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      const steady = await stats();
      expect(steady.evalsha - before.evalsha).toBe(5);
      expect(steady.eval - before.eval).toBe(0);

      await redis.script('FLUSH');
      await runScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      await runScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      const after = await stats();
      expect(after.evalsha - steady.evalsha).toBe(2);
      expect(after.eval - steady.eval).toBe(1);
    } finally {
      redis.disconnect();
      await server.dispose();
    }
  });

  it('evalScript: EVAL on first use per server, EVALSHA after, one EVAL again after a SCRIPT FLUSH', async () => {
    const server = await RedisServer.start();
    const redis = createClient(server.url);
    const stats = async () => {
      const info = await redis.info('commandstats');
      const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      return { evalsha: calls('evalsha'), eval: calls('eval'), scriptLoad: calls('script\\|load') };
    };
    try {
      const before = await stats();
      for (let i = 0; i < 5; i++) await evalScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      const steady = await stats();
      expect(steady.eval - before.eval).toBe(1);
      expect(steady.evalsha - before.evalsha).toBe(4);
      await redis.script('FLUSH');
      await evalScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      await evalScript(redis, 'healthProbe', ['p:{a}'], [1_000]);
      const after = await stats();
      expect(after.evalsha - steady.evalsha).toBe(2);
      expect(after.eval - steady.eval).toBe(1);
      // Never SCRIPT LOAD (on a Cluster it would reach one random node).
      expect(after.scriptLoad - before.scriptLoad).toBe(0);
    } finally {
      redis.disconnect();
      await server.dispose();
    }
  });

  it('reports which address a master has', () => {
    const redis = createClient({ url: 'redis://127.0.0.1:6399', redisOptions: { lazyConnect: true } });
    expect(addressOf(mastersOf(redis)[0]!)).toBe('127.0.0.1:6399');
    redis.disconnect();
  });
});

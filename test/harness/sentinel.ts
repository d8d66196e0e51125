import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { RedisServer } from './redis-server.js';
import { rawCommand, waitUntil } from './resp.js';

/** Options for {@link RedisSentinelSet.start}. */
export interface SentinelSetOptions {
  /** The monitored primary's name. Default `'redscale'`. */
  name?: string;
  /** Sentinels (quorum is a majority). Default 3. */
  sentinels?: number;
  /** `down-after-milliseconds`: how soon an unanswering primary is considered down. Default 1000. */
  downAfterMs?: number;
  /** Extra `redis-server` arguments for the primary and the replica. */
  args?: string[];
}

/** One `redis-server --sentinel` process. */
class SentinelProcess {
  readonly port: number;
  readonly #dir: string;
  #child: ChildProcess | undefined;

  constructor(port: number, dir: string) {
    this.port = port;
    this.#dir = dir;
  }

  async start(config: string): Promise<void> {
    const file = join(this.#dir, `sentinel-${this.port}.conf`);
    writeFileSync(file, config);
    const child = spawn('redis-server', [file, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<never>((_, reject) => {
      child.once('error', (error) => reject(new Error(`could not start a sentinel: ${error.message}`)));
      child.once('exit', (code) => reject(new Error(`sentinel exited with code ${code}: ${stderr.trim()}`)));
    });
    exited.catch(() => {});
    this.#child = child;
    await Promise.race([
      waitUntil(`sentinel on port ${this.port}`, async () =>
        (await rawCommand(this.port, 'PING', 1_000)).startsWith('+PONG'),
      ),
      exited,
    ]);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

/**
 * A real Sentinel deployment on free ports: a primary, one replica and (by default) three
 * sentinels (`redis-server --sentinel`) monitoring it under one name, ready when every sentinel
 * knows the replica. {@link failover} promotes the replica as `SENTINEL FAILOVER` does; killing
 * the primary (`primary.kill()`) makes the sentinels fail over on their own.
 */
export class RedisSentinelSet {
  readonly name: string;
  /** The servers, by their role when the set started (after a failover, see {@link currentPrimaryPort}). */
  readonly primary: RedisServer;
  readonly replica: RedisServer;
  readonly #sentinels: SentinelProcess[];
  readonly #dir: string;

  private constructor(
    name: string,
    primary: RedisServer,
    replica: RedisServer,
    sentinels: SentinelProcess[],
    dir: string,
  ) {
    this.name = name;
    this.primary = primary;
    this.replica = replica;
    this.#sentinels = sentinels;
    this.#dir = dir;
  }

  static async start(options: SentinelSetOptions = {}): Promise<RedisSentinelSet> {
    const name = options.name ?? 'redscale';
    const downAfter = options.downAfterMs ?? 1_000;
    const args = options.args ?? [];
    const primary = await RedisServer.start({ args });
    const replica = await RedisServer.start({ args: [...args, '--replicaof', '127.0.0.1', String(primary.port)] });
    const dir = mkdtempSync(join(tmpdir(), 'redscale-sentinel-'));
    const sentinels = await Promise.all(
      Array.from({ length: options.sentinels ?? 3 }, async () => new SentinelProcess(await freePort(), dir)),
    );
    const quorum = Math.floor(sentinels.length / 2) + 1;
    const set = new RedisSentinelSet(name, primary, replica, sentinels, dir);
    try {
      await Promise.all(
        sentinels.map((sentinel) =>
          sentinel.start(
            [
              `port ${sentinel.port}`,
              'bind 127.0.0.1',
              'protected-mode no',
              `dir ${dir}`,
              `sentinel monitor ${name} 127.0.0.1 ${primary.port} ${quorum}`,
              `sentinel down-after-milliseconds ${name} ${downAfter}`,
              `sentinel failover-timeout ${name} 10000`,
              `sentinel parallel-syncs ${name} 1`,
              '',
            ].join('\n'),
          ),
        ),
      );
      await waitUntil(
        'every sentinel to know the replica and the other sentinels',
        async () => {
          const replies = await Promise.all(
            sentinels.map((sentinel) => rawCommand(sentinel.port, `SENTINEL MASTER ${name}`, 1_000)),
          );
          return replies.every(
            (reply) =>
              fieldOf(reply, 'num-slaves') === '1' &&
              fieldOf(reply, 'num-other-sentinels') === String(sentinels.length - 1),
          );
        },
        20_000,
      );
      // Sentinels list a replica while its first sync is still running: wait until it replicates.
      await set.waitForReplicaLink(replica.port);
    } catch (error) {
      await set.stop();
      throw error;
    }
    return set;
  }

  /** Sentinel addresses, for `createClient({ sentinels, name })` or ioredis' `sentinels` option. */
  get sentinels(): Array<{ host: string; port: number }> {
    return this.#sentinels.map((sentinel) => ({ host: '127.0.0.1', port: sentinel.port }));
  }

  /** The port of the server the sentinels currently call primary. */
  async currentPrimaryPort(): Promise<number> {
    const first = this.#sentinels[0] as SentinelProcess;
    const reply = await rawCommand(first.port, `SENTINEL GET-MASTER-ADDR-BY-NAME ${this.name}`, 1_000);
    const port = Number(reply.trim().split('\r\n').at(-1));
    if (!Number.isInteger(port)) throw new Error(`no primary known to the sentinels: ${JSON.stringify(reply)}`);
    return port;
  }

  /**
   * Promotes the replica (`SENTINEL FAILOVER`) and waits until the sentinels name a new primary
   * and it accepts writes. Resolves the new primary's port.
   */
  async failover(timeoutMs = 20_000): Promise<number> {
    const before = await this.currentPrimaryPort();
    const first = this.#sentinels[0] as SentinelProcess;
    const reply = await rawCommand(first.port, `SENTINEL FAILOVER ${this.name}`, 2_000);
    if (!reply.startsWith('+OK')) throw new Error(`SENTINEL FAILOVER answered ${JSON.stringify(reply)}`);
    return this.waitForNewPrimary(before, timeoutMs);
  }

  /** Waits until the sentinels name a primary other than `oldPort` and it is writable. */
  async waitForNewPrimary(oldPort: number, timeoutMs = 20_000): Promise<number> {
    let port = oldPort;
    await waitUntil(
      `a primary other than ${oldPort}`,
      async () => {
        port = await this.currentPrimaryPort();
        if (port === oldPort) return false;
        const role = await rawCommand(port, 'ROLE', 1_000);
        return role.includes('master');
      },
      timeoutMs,
    );
    return port;
  }

  /**
   * Waits until the server on `port` is a replica whose link to its primary is up (its initial
   * sync done), so writes reach it and `WAIT` can count it. After a failover, pass the demoted
   * primary's port: it resyncs from the promoted one.
   */
  async waitForReplicaLink(port: number, timeoutMs = 20_000): Promise<void> {
    await waitUntil(
      `the replica on port ${port} to be in sync`,
      async () => (await rawCommand(port, 'INFO replication', 1_000)).includes('master_link_status:up'),
      timeoutMs,
    );
  }

  /** Stops every sentinel and server and removes their files. */
  async stop(): Promise<void> {
    await Promise.all(this.#sentinels.map((sentinel) => sentinel.stop()));
    await Promise.all([this.primary.dispose(), this.replica.dispose()]);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A field of a RESP flat key/value array reply (as `SENTINEL MASTER` sends). */
function fieldOf(reply: string, field: string): string | undefined {
  const lines = reply.split('\r\n');
  const at = lines.indexOf(field);
  return at >= 0 ? lines[at + 2] : undefined;
}

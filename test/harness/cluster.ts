import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisServer } from './redis-server.js';
import { waitUntil } from './resp.js';

const run = promisify(execFile);

/** Options for {@link RedisCluster.start}. */
export interface RedisClusterOptions {
  /** Number of masters (no replicas), 1 or more. Default 3. */
  masters?: number;
  /** `cluster-node-timeout` in ms: how soon a dead node is marked failed. Default 1000. */
  nodeTimeout?: number;
  /** Extra `redis-server` arguments for every node, e.g. `['--cluster-require-full-coverage', 'no']`. */
  args?: string[];
}

/**
 * A real Redis Cluster of N masters (`redis-server --cluster-enabled yes` × N, joined with
 * `redis-cli --cluster create`), on free ports, ready when every node reports `cluster_state:ok`.
 */
export class RedisCluster {
  readonly servers: RedisServer[];

  private constructor(servers: RedisServer[]) {
    this.servers = servers;
  }

  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const nodeTimeout = options.nodeTimeout ?? 1_000;
    const servers = await Promise.all(
      Array.from({ length: masters }, (_, index) =>
        RedisServer.start({
          busPort: true,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${index}.conf`,
            '--cluster-node-timeout',
            String(nodeTimeout),
            // A node alone never learns its address from a peer's MEET: without this it
            // announces an empty host in CLUSTER SLOTS.
            ...(masters === 1 ? ['--cluster-announce-ip', '127.0.0.1'] : []),
            ...(options.args ?? []),
          ],
        }),
      ),
    );
    const cluster = new RedisCluster(servers);
    try {
      if (masters < 3) await joinByHand(servers);
      else
        await run(
          'redis-cli',
          [
            '--cluster',
            'create',
            ...servers.map((server) => `127.0.0.1:${server.port}`),
            '--cluster-replicas',
            '0',
            '--cluster-yes',
          ],
          { timeout: 30_000 },
        );
      await cluster.waitUntilOk();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Startup nodes for an ioredis `Cluster`. */
  get nodes(): Array<{ host: string; port: number }> {
    return this.servers.map((server) => ({ host: '127.0.0.1', port: server.port }));
  }

  /** Waits until every running node reports `cluster_state:ok`. */
  async waitUntilOk(timeoutMs = 20_000): Promise<void> {
    await waitUntil(
      'cluster_state:ok on every node',
      async () => {
        const states = await Promise.all(
          this.servers.filter((server) => server.running).map((server) => server.command('CLUSTER INFO')),
        );
        return states.every((state) => state.includes('cluster_state:ok'));
      },
      timeoutMs,
    );
  }

  /** Stops every node and removes their files. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.dispose()));
  }
}

/**
 * `redis-cli --cluster create` wants at least 3 masters: fewer are joined by hand, each taking an
 * equal range of the 16,384 slots, then meeting the first.
 */
async function joinByHand(servers: RedisServer[]): Promise<void> {
  const share = Math.ceil(16_384 / servers.length);
  for (const [index, server] of servers.entries()) {
    const start = index * share;
    const end = Math.min(16_383, start + share - 1);
    const reply = await server.command(`CLUSTER ADDSLOTSRANGE ${start} ${end}`);
    if (!reply.startsWith('+OK')) throw new Error(`CLUSTER ADDSLOTSRANGE answered ${JSON.stringify(reply)}`);
  }
  const [first, ...others] = servers as [RedisServer, ...RedisServer[]];
  for (const other of others) await first.command(`CLUSTER MEET 127.0.0.1 ${other.port}`);
}

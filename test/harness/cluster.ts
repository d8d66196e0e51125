import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RedisServer } from './redis-server.js';
import { waitUntil } from './resp.js';

const run = promisify(execFile);

/** Options for {@link RedisCluster.start}. */
export interface RedisClusterOptions {
  /** Number of masters (no replicas). Default 3. */
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
            ...(options.args ?? []),
          ],
        }),
      ),
    );
    const cluster = new RedisCluster(servers);
    try {
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

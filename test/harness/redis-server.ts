import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { rawCommand, waitUntil } from './resp.js';

/** Options for {@link RedisServer.start}. */
export interface RedisServerOptions {
  /** Port to listen on; a free one by default. */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** Also reserve port + 10000 (needed for a Cluster node's bus). */
  busPort?: boolean;
  /** Serve TLS only, on `port`, with these PEM files. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A throwaway `redis-server` owned by the test that started it: on a free port, keeping nothing
 * on disk, and able to stop, be killed (SIGKILL, as a crash) and restart on the same port.
 */
export class RedisServer {
  readonly port: number;
  readonly #args: string[];
  readonly #dir: string;
  readonly #tls: boolean;
  #child: ChildProcess | undefined;

  private constructor(port: number, args: string[], tls: boolean) {
    this.port = port;
    this.#args = args;
    this.#tls = tls;
    this.#dir = mkdtempSync(join(tmpdir(), `redscale-redis-${port}-`));
  }

  /** Starts a server and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = options.port ?? (await freePort({ busPort: options.busPort ?? false }));
    const { tls } = options;
    const tlsArgs = tls
      ? [
          '--tls-port',
          String(port),
          '--tls-cert-file',
          tls.certFile,
          '--tls-key-file',
          tls.keyFile,
          '--tls-ca-cert-file',
          tls.caFile,
          '--tls-auth-clients',
          'no',
        ]
      : [];
    const server = new RedisServer(port, [...tlsArgs, ...(options.args ?? [])], tls !== undefined);
    await server.restart();
    return server;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `${this.#tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts the process again on the same port (after {@link stop} or {@link kill}). */
  async restart(): Promise<void> {
    if (this.running) return;
    const child = spawn(
      'redis-server',
      [
        '--port',
        this.#tls ? '0' : String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
        '--dir',
        this.#dir,
        ...this.#args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      stderr += chunk.toString();
    });
    const spawnError = new Promise<never>((_, reject) => {
      child.once('error', (error) => reject(new Error(`could not start redis-server: ${error.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}: ${stderr.trim()}`)));
    });
    spawnError.catch(() => {});
    this.#child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    await Promise.race([
      waitUntil(`redis-server on port ${this.port}`, async () => {
        // A server with requirepass answers NOAUTH: it is up all the same.
        const reply = await rawCommand(this.port, 'PING', 1_000, this.#tls);
        return reply.startsWith('+PONG') || reply.startsWith('-NOAUTH');
      }),
      spawnError,
    ]);
  }

  /** Kills the process with SIGKILL, as a crash or a lost host would, and waits for it to exit. */
  kill(): Promise<void> {
    return this.#terminate('SIGKILL');
  }

  /** Stops the process gracefully (SIGTERM) and waits for it to exit. */
  stop(): Promise<void> {
    return this.#terminate('SIGTERM');
  }

  /** Stops the process and removes its working directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Sends one command over a raw connection (no client library involved). */
  command(command: string): Promise<string> {
    return rawCommand(this.port, command, 1_000, this.#tls);
  }

  async #terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}

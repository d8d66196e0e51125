import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeClient } from '../client/close.js';
import { messageOf } from '../common/errors.js';
import { parseOptions } from '../common/options.js';
import {
  type Closable,
  type GracefulShutdownOptions,
  type ResolvedShutdownOptions,
  shutdownSchema,
} from './options.js';

/** How a shutdown went. The exit code is 0 only when everything finished cleanly. */
export interface ShutdownResult {
  /** 0: clean. 1: requests were cut, something failed to close, or the hard deadline struck. */
  code: 0 | 1;
  /** The signal, or the reason given to `shutdown()`. */
  reason: string;
  /** Requests that were in flight when draining began or arrived after, and finished. */
  completedRequests: number;
  /** Requests still running at `requestTimeout`, whose connections were cut. */
  cutRequests: number;
  /** What failed to close (or took longer than `closeTimeout`), by step. */
  failures: Array<{ step: string; error: string }>;
  /** Whether the hard deadline (`forceAfter`) ended it. */
  forced: boolean;
  /** From the signal to the end, ms. */
  durationMs: number;
}

/** A shutdown installed by {@link gracefulShutdown}. */
export interface GracefulShutdown {
  /** Whether the shutdown has begun (readiness is 503 from then on). */
  readonly draining: boolean;
  /**
   * Starts the shutdown as a signal would (calling it again returns the same promise). Resolves
   * with the outcome; with `exit: true` the process exits with its code right after.
   */
  shutdown(reason?: string): Promise<ShutdownResult>;
  /** Removes the signal handlers and the server listeners (tests, hot reload). */
  dispose(): void;
}

/**
 * Graceful shutdown for a service behind a load balancer. On SIGTERM or SIGINT it:
 *
 * 1. turns readiness to 503 at once (`health.drain()`), and answers every request from then on
 *    with `Connection: close`, so clients move to other instances;
 * 2. keeps serving for `drainDelay`, while the load balancer notices;
 * 3. closes the listener (new connections are refused) and waits up to `requestTimeout` for the
 *    requests in flight, then cuts the connections still open;
 * 4. closes what it was given (`close`: cache buses, write buffers, locks, your pools), in order;
 * 5. QUITs the Redis clients it was given;
 * 6. exits with code 0, or 1 if requests were cut or something failed; whatever still runs at
 *    `forceAfter` is abandoned with code 1. A second signal exits at once with code 1.
 *
 * @example
 * ```ts
 * const server = app.listen(3000)
 * gracefulShutdown({ server, health, close: [cache, buffer], redis, drainDelay: '10s' })
 * ```
 * @throws InvalidOptionError when an option is invalid.
 */
export function gracefulShutdown(options: GracefulShutdownOptions): GracefulShutdown {
  return new Shutdown(parseOptions(shutdownSchema, options, 'gracefulShutdown()'));
}

class Shutdown implements GracefulShutdown {
  readonly #options: ResolvedShutdownOptions;
  readonly #signalHandlers = new Map<NodeJS.Signals, () => void>();
  readonly #inFlight = new Set<ServerResponse>();
  readonly #onRequest = (_request: IncomingMessage, response: ServerResponse) => this.#track(response);
  #completed = 0;
  #draining = false;
  #result: Promise<ShutdownResult> | undefined;

  constructor(options: ResolvedShutdownOptions) {
    this.#options = options;
    // First in line, so the header is set before the app can send its response.
    for (const server of options.server) server.prependListener('request', this.#onRequest);
    for (const signal of options.signals as NodeJS.Signals[]) {
      const handler = () => {
        if (this.#result) {
          this.#log(`${signal} again: exiting now`);
          this.#exit(1);
          return;
        }
        void this.shutdown(signal);
      };
      this.#signalHandlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  get draining(): boolean {
    return this.#draining;
  }

  shutdown(reason = 'shutdown()'): Promise<ShutdownResult> {
    this.#result ??= this.#run(reason);
    return this.#result;
  }

  dispose(): void {
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler);
    this.#signalHandlers.clear();
    for (const server of this.#options.server) server.off('request', this.#onRequest);
  }

  #track(response: ServerResponse): void {
    if (this.#draining && !response.headersSent) response.setHeader('Connection', 'close');
    this.#inFlight.add(response);
    response.once('close', () => {
      this.#inFlight.delete(response);
      if (this.#draining && response.writableFinished) this.#completed++;
    });
  }

  async #run(reason: string): Promise<ShutdownResult> {
    const started = performance.now();
    const { forceAfter } = this.#options;
    let forcedTimer: NodeJS.Timeout | undefined;
    // Kept referenced: the process must not end on its own (code 0) while a step hangs.
    const forced = new Promise<ShutdownResult>((resolve) => {
      forcedTimer = setTimeout(() => {
        this.#log(`hard deadline (${forceAfter} ms) reached: exiting with code 1`);
        resolve(this.#outcome(reason, started, { forced: true, cut: this.#inFlight.size, failures: [] }));
      }, forceAfter);
    });
    const result = await Promise.race([this.#steps(reason, started), forced]);
    clearTimeout(forcedTimer);
    this.dispose();
    this.#log(
      `shutdown ${result.code === 0 ? 'clean' : 'unclean'} in ${result.durationMs} ms: exit code ${result.code}`,
    );
    if (this.#options.exit) this.#exit(result.code);
    return result;
  }

  async #steps(reason: string, started: number): Promise<ShutdownResult> {
    const { server, health, drainDelay, requestTimeout, close, redis } = this.#options;
    const failures: ShutdownResult['failures'] = [];

    // 1. Not ready, at once; keep-alive connections are closed after their current response.
    this.#draining = true;
    for (const drainable of health) {
      try {
        drainable.drain();
      } catch (error) {
        failures.push({ step: 'drain readiness', error: messageOf(error) });
      }
    }
    this.#log(`${reason}: readiness is 503; serving ${drainDelay} ms more while the load balancer notices`);

    // 2. The load balancer's probe interval.
    if (drainDelay > 0) await sleep(drainDelay);

    // 3. Refuse new connections; wait for the requests in flight, then cut what is left.
    let cut = 0;
    if (server.length) {
      const closed = Promise.all(server.map(closeListener));
      this.#log(`listener closed; waiting up to ${requestTimeout} ms for ${this.#inFlight.size} request(s) in flight`);
      // Connections that turn idle (a keep-alive client between requests) would hold close() up.
      const sweeper = setInterval(() => {
        for (const each of server) each.closeIdleConnections();
      }, 50);
      const deadline = new AbortController();
      const inTime = await Promise.race([
        closed.then(() => true),
        sleep(requestTimeout, false, { signal: deadline.signal }).catch(() => false),
      ]);
      deadline.abort();
      clearInterval(sweeper);
      if (!inTime) {
        cut = this.#inFlight.size;
        this.#log(`${cut} request(s) outlived requestTimeout: cutting their connections`);
        for (const each of server) each.closeAllConnections();
        await closed;
      }
    }

    // 4. What the app gave us, in order.
    for (const [index, closable] of close.entries()) {
      const step = `close[${index}]`;
      const failure = await settleWithin(callClose(closable), this.#options.closeTimeout);
      if (failure !== undefined) failures.push({ step, error: failure });
    }

    // 5. Redis last: the steps above may still need it (final acknowledgements, lock releases).
    await Promise.all(
      redis.map(async (client, index) => {
        const failure = await settleWithin(closeClient(client), this.#options.closeTimeout);
        if (failure !== undefined) failures.push({ step: `redis[${index}]`, error: failure });
      }),
    );
    return this.#outcome(reason, started, { forced: false, cut, failures });
  }

  #outcome(
    reason: string,
    started: number,
    { forced, cut, failures }: { forced: boolean; cut: number; failures: ShutdownResult['failures'] },
  ): ShutdownResult {
    const clean = !forced && cut === 0 && failures.length === 0;
    for (const failure of failures) this.#log(`${failure.step} failed: ${failure.error}`);
    return {
      code: clean ? 0 : 1,
      reason,
      completedRequests: this.#completed,
      cutRequests: cut,
      failures,
      forced,
      durationMs: Math.round(performance.now() - started),
    };
  }

  #exit(code: number): void {
    if (this.#options.exit) process.exit(code);
  }

  #log(message: string): void {
    try {
      this.#options.log?.(`redscale shutdown: ${message}`);
    } catch {
      // A throwing logger must not stop the shutdown.
    }
  }
}

/** Stops the listener; resolves once every connection has ended (at once if it was not listening). */
function closeListener(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
  });
}

function callClose(closable: Closable): Promise<unknown> {
  try {
    if (typeof closable === 'function') return Promise.resolve(closable());
    const target = closable as Record<string, unknown>;
    const method = (['close', 'stop', 'release'] as const).find((name) => typeof target[name] === 'function');
    return Promise.resolve((target[method as string] as () => unknown).call(closable));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Waits for `promise` up to `ms`; resolves undefined when it settled well, else what went wrong. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`did not finish within ${ms} ms`), ms);
  });
  try {
    return await Promise.race([promise.then(() => undefined), timedOut]);
  } catch (error) {
    return messageOf(error);
  } finally {
    clearTimeout(timer);
  }
}

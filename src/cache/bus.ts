import { randomUUID } from 'node:crypto';
import { type Cluster, Redis } from 'ioredis';
import { keyPrefixOf, slotOf } from '../client/cluster.js';
import { isCluster } from '../client/types.js';
import { withTimeout } from '../common/deadline.js';
import { AbortedError, messageOf, RedisTimeoutError, RedscaleError, toRedisError } from '../common/errors.js';
import { type BusMessage, BusMessageError, decodeMessage, encodeMessages } from './bus-protocol.js';
import { Budget, type RedisGate } from './gate.js';

/** What the bus reports to the cache. */
export interface BusHandlers {
  /** A valid message from another instance. */
  message(message: BusMessage): void;
  /** Subscribed (again): every message published from now on will arrive. */
  up(): void;
  /** Delivery may have stopped (`drop`: the connection closed; `heartbeat`: one did not come back). */
  down(cause: 'drop' | 'heartbeat'): void;
  /** A message was dropped; `report` is false for repeats that were already reported (a newer format). */
  dropped(error: BusMessageError, report: boolean): void;
  /** The subscriber connection failed. */
  redisError(error: RedscaleError): void;
}

/** Settings of the bus. */
export interface BusSettings {
  /** The logical channel, `<prefix>:bus`. */
  channel: string;
  /** How often each instance checks, with a heartbeat to itself, that messages still arrive. */
  heartbeatMs: number;
  /** The cache's timeout: for each publish, and (at least) for subscribing. */
  timeoutMs: number;
}

/**
 * The invalidation bus: Redis pub/sub among every instance of one cache (sharded pub/sub on
 * Cluster). It holds its own subscriber connection — on Cluster, a direct one to the node that
 * owns the channel's slot — so a dropped subscription is always seen, and it publishes a
 * heartbeat every `heartbeatMs` that it must hear come back before the next one: a subscription
 * that is open but delivers nothing (a half-open link) counts as a drop within 2 × `heartbeatMs`.
 * Pub/sub is at-most-once, so after any drop the cache forgets what missed messages would have
 * told it.
 *
 * The channel is listened to where Redis delivers it: SPUBLISH goes through the client's
 * `keyPrefix`, so on Cluster the subscriber (which has no prefix) subscribes to the prefixed name.
 */
export class InvalidationBus {
  /** This instance's id, to recognise its own messages. */
  readonly id = randomUUID();
  readonly #gate: RedisGate;
  readonly #settings: BusSettings;
  readonly #handlers: BusHandlers;
  readonly #sharded: boolean;
  /** The channel as Redis sees it. */
  readonly #wire: string;
  #subscriber: Redis | undefined;
  #live = false;
  #closed = false;
  #heartbeat: NodeJS.Timeout | undefined;
  #rehome: NodeJS.Timeout | undefined;
  #sent = 0;
  #heard = 0;
  readonly #waiting = new Set<{ resolve(): void; reject(error: RedscaleError): void }>();
  readonly #newerReported = new Set<number>();

  constructor(gate: RedisGate, settings: BusSettings, handlers: BusHandlers) {
    this.#gate = gate;
    this.#settings = settings;
    this.#handlers = handlers;
    this.#sharded = isCluster(gate.redis);
    this.#wire = this.#sharded ? keyPrefixOf(gate.redis) + settings.channel : settings.channel;
  }

  /** Whether messages are known to arrive right now (subscribed, and the last heartbeat came back). */
  get connected(): boolean {
    return this.#live;
  }

  /** Opens the subscriber connection and starts the heartbeat. Nothing waits for this. */
  start(): void {
    this.#open();
    this.#heartbeat = setInterval(() => this.#tick(), this.#settings.heartbeatMs);
    this.#heartbeat.unref?.();
  }

  /**
   * Resolves once messages flow; rejects with ERR_TIMEOUT after `timeoutMs`, ERR_ABORTED when
   * `signal` aborts, and ERR_CLOSED once the bus is closed.
   */
  whenConnected(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    if (this.#live) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new AbortedError('Cache.whenReady()', signal.reason));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => settle(resolve),
        reject: (error: RedscaleError) => settle(() => reject(error)),
      };
      const onAbort = () => waiter.reject(new AbortedError('Cache.whenReady()', signal?.reason));
      const timer = setTimeout(
        () => waiter.reject(new RedisTimeoutError('cache bus subscribe (Cache.whenReady())', timeoutMs)),
        timeoutMs,
      );
      const settle = (done: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiting.delete(waiter);
        done();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.add(waiter);
    });
  }

  /**
   * Publishes a message to every instance, under `budget` and the channel node's breaker.
   * Rejects (already reported) when Redis did not take it.
   */
  async publish(message: Omit<BusMessage, 'i'>, budget: Budget): Promise<void> {
    const gate = this.#gate;
    const redis = gate.redis;
    const channel = this.#settings.channel;
    const node = this.#sharded ? gate.nodeOf(channel) : 'standalone';
    for (const text of encodeMessages(this.id, message)) {
      await gate.call('cache bus publish', node, budget, () =>
        isCluster(redis) ? redis.spublish(channel, text) : redis.publish(channel, text),
      );
    }
  }

  /** Stops the heartbeat, closes the subscriber connection, and rejects whoever waits for it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#rehome);
    this.#setLive(false, 'drop');
    for (const waiter of [...this.#waiting]) waiter.reject(closedError());
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await withTimeout(subscriber.quit(), 1_000, 'cache bus quit').catch(() => subscriber.disconnect());
  }

  #tick(): void {
    if (this.#closed || !this.#live) return;
    if (this.#sent > this.#heard) {
      // After I/O has had its turn (a busy event loop runs timers first, and the heartbeat may
      // be waiting in the socket), a heartbeat still not heard means the subscription is deaf.
      setImmediate(() => {
        if (this.#closed || !this.#live || this.#sent <= this.#heard) return this.#beat();
        this.#setLive(false, 'heartbeat');
        this.#reopen();
      });
      return;
    }
    this.#beat();
  }

  #beat(): void {
    if (this.#closed || !this.#live) return;
    const sequence = ++this.#sent;
    this.publish({ h: sequence }, new Budget(this.#settings.timeoutMs)).catch(() => {});
  }

  #open(): void {
    this.#connect().catch((error: unknown) => {
      this.#handlers.redisError(toRedisError('cache bus connect', error));
      this.#retryLater();
    });
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const subscriber = this.#sharded
      ? await this.#nodeConnection()
      : (this.#gate.redis as Redis).duplicate({ autoResubscribe: false, lazyConnect: false, keyPrefix: undefined });
    if (this.#closed) {
      subscriber.disconnect();
      return;
    }
    this.#subscriber = subscriber;
    const mine = () => subscriber === this.#subscriber;
    subscriber.on('error', (error: Error) => {
      if (mine()) this.#handlers.redisError(toRedisError('cache bus', error));
    });
    subscriber.on('close', () => {
      if (mine()) this.#setLive(false, 'drop');
    });
    subscriber.on('end', () => {
      if (mine()) this.#reopen(true); // the client stopped reconnecting on its own
    });
    // Subscribing again after every reconnection, by hand, tells exactly when messages flow again.
    subscriber.on('ready', () => {
      if (mine()) void this.#subscribe(subscriber);
    });
    subscriber.on(this.#sharded ? 'smessage' : 'message', (channel: string, text: string) => {
      if (!mine() || channel !== this.#wire) return;
      try {
        this.#receive(text);
      } catch (error) {
        // Never out of ioredis' handler: whatever goes wrong here is reported, not thrown.
        this.#handlers.dropped(new BusMessageError('malformed', messageOf(error)), true);
      }
    });
    if (this.#sharded) {
      // The slot moved (resharding) or its node was replaced (failover): follow it.
      subscriber.on('sunsubscribe', () => {
        if (mine()) this.#reopen();
      });
      clearInterval(this.#rehome);
      this.#rehome = setInterval(() => this.#followSlot(), 1_000);
      this.#rehome.unref?.();
    }
    if (subscriber.status === 'ready') await this.#subscribe(subscriber);
  }

  #receive(text: string): void {
    const decoded = decodeMessage(text);
    if (!decoded.ok) {
      const version = decoded.version;
      const first = version === undefined || !this.#newerReported.has(version);
      // Bounded: a hostile publisher could claim a new version in every message.
      if (version !== undefined && this.#newerReported.size < 16) this.#newerReported.add(version);
      this.#handlers.dropped(decoded.error, first);
      return;
    }
    const message = decoded.message;
    if (message.i === this.id) {
      // Only a heartbeat this instance sent counts (a forged far-future one must not mute the check).
      if (message.h !== undefined && message.h > this.#heard && message.h <= this.#sent) this.#heard = message.h;
      return; // this instance already applied its own changes
    }
    this.#handlers.message(message);
  }

  async #subscribe(subscriber: Redis): Promise<void> {
    try {
      const command = this.#sharded ? subscriber.ssubscribe(this.#wire) : subscriber.subscribe(this.#wire);
      await withTimeout(command, this.#connectTimeoutMs, 'cache bus subscribe');
      if (subscriber === this.#subscriber) this.#setLive(true, 'drop');
    } catch (error) {
      if (subscriber !== this.#subscriber) return;
      this.#handlers.redisError(toRedisError('cache bus subscribe', error));
      // MOVED, a deaf link, and the like: start over on a new connection.
      this.#reopen(true);
    }
  }

  async #nodeConnection(): Promise<Redis> {
    const cluster = this.#gate.redis as Cluster;
    if (cluster.status !== 'ready') await withTimeout(cluster.ping(), this.#connectTimeoutMs, 'cache bus connect');
    const owner = cluster.slots[slotOf(cluster, this.#settings.channel)]?.[0];
    if (!owner) {
      throw new RedscaleError('ERR_REDIS', `redscale: no Cluster node owns the cache bus channel ${this.#wire}`);
    }
    const separator = owner.lastIndexOf(':');
    return new Redis({
      ...cluster.options.redisOptions,
      host: owner.slice(0, separator),
      port: Number(owner.slice(separator + 1)),
      keyPrefix: undefined,
      autoResubscribe: false,
      lazyConnect: false,
    });
  }

  #followSlot(): void {
    const cluster = this.#gate.redis as Cluster;
    const owner = cluster.slots[slotOf(cluster, this.#settings.channel)]?.[0];
    const subscriber = this.#subscriber;
    if (!owner || !subscriber) return;
    if (owner !== `${subscriber.options.host}:${subscriber.options.port}`) this.#reopen();
  }

  /** Replaces the subscriber connection (at once, or after a pause when the last attempt failed). */
  #reopen(later = false): void {
    if (this.#closed) return;
    clearInterval(this.#rehome);
    this.#setLive(false, 'drop');
    const old = this.#subscriber;
    this.#subscriber = undefined;
    old?.disconnect();
    if (later) this.#retryLater();
    else this.#open();
  }

  #retryLater(): void {
    if (!this.#closed) setTimeout(() => this.#open(), Math.min(1_000, this.#settings.heartbeatMs)).unref?.();
  }

  /** How long connecting and subscribing may take: no caller waits on it, so at least a heartbeat. */
  get #connectTimeoutMs(): number {
    return Math.max(this.#settings.timeoutMs, this.#settings.heartbeatMs);
  }

  #setLive(live: boolean, cause: 'drop' | 'heartbeat'): void {
    if (this.#live === live) return;
    this.#live = live;
    if (live) {
      // Heartbeats sent before this subscription are not expected back.
      this.#heard = this.#sent;
      this.#handlers.up();
      for (const waiter of [...this.#waiting]) waiter.resolve();
    } else {
      this.#handlers.down(cause);
    }
  }
}

function closedError(): RedscaleError {
  return new RedscaleError('ERR_CLOSED', 'redscale: the cache was closed');
}

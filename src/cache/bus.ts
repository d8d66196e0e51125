import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { keySlot } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { RedscaleError, toRedisError } from '../common/errors.js';

/** What instances tell each other. Never values: keys, tags and patterns only. */
export interface BusMessage {
  /** Sender's instance id. */
  i: string;
  /** Keys written or deleted: drop them from L1, and wake anyone waiting for them. */
  k?: string[];
  /** Tags invalidated, with their new versions. */
  t?: Record<string, number>;
  /** A glob (inside the cache's prefix) whose keys were deleted. */
  p?: string;
  /** Keys whose load failed: waiters should try themselves. */
  f?: string[];
}

/** What the bus reports to the cache. */
export interface BusHandlers {
  message(message: BusMessage): void;
  /** Subscribed (again): messages are flowing. */
  connected(): void;
  /** The subscription dropped: messages may have been missed. */
  disconnected(): void;
  error(error: RedscaleError): void;
}

/**
 * The invalidation bus: Redis pub/sub among every instance of one cache (sharded pub/sub on
 * Cluster). It holds its own subscriber connection — on Cluster, a direct one to the node that
 * owns the channel's slot — so that a dropped subscription is always seen: at-most-once delivery
 * means messages sent while it was down are gone, and the cache must then forget what they
 * would have told it.
 */
export class InvalidationBus {
  /** This instance's id, to recognise its own messages. */
  readonly id = randomUUID();
  readonly #redis: RedisLike;
  readonly #channel: string;
  readonly #handlers: BusHandlers;
  #subscriber: Redis | undefined;
  #connected = false;
  #closed = false;
  #rehome: NodeJS.Timeout | undefined;
  #waiting: Array<() => void> = [];

  constructor(redis: RedisLike, channel: string, handlers: BusHandlers) {
    this.#redis = redis;
    this.#channel = channel;
    this.#handlers = handlers;
  }

  /** Whether the subscription is up, so every message published since it came up was received. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Opens the subscriber connection. The cache works without the bus until it is connected
   * (no L1, tag versions read from Redis), so nothing waits for this.
   */
  start(): void {
    this.#open().catch((error: unknown) => this.#retryOpen(error));
  }

  /** Resolves once the subscription is up (for tests and for callers that want L1 from the start). */
  whenConnected(): Promise<void> {
    if (this.#connected) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Publishes a message to every instance (this one included). Failures go to `error`. */
  async publish(message: Omit<BusMessage, 'i'>): Promise<void> {
    const text = JSON.stringify({ ...message, i: this.id });
    try {
      if (isCluster(this.#redis)) await this.#redis.spublish(this.#channel, text);
      else await this.#redis.publish(this.#channel, text);
    } catch (error) {
      this.#handlers.error(toRedisError('cache bus publish', error));
    }
  }

  /** Closes the subscriber connection. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#rehome);
    this.#setConnected(false);
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  async #open(): Promise<void> {
    if (this.#closed) return;
    const cluster = isCluster(this.#redis);
    const subscriber = cluster
      ? await this.#nodeConnection()
      : (this.#redis as Redis).duplicate({ autoResubscribe: false, lazyConnect: false });
    if (this.#closed) {
      subscriber.disconnect();
      return;
    }
    this.#subscriber = subscriber;
    subscriber.on('error', (error: Error) => this.#handlers.error(toRedisError('cache bus', error)));
    subscriber.on('close', () => this.#setConnected(false));
    // Subscribing again after every reconnection, by hand, tells exactly when messages flow again.
    subscriber.on('ready', () => void this.#subscribe(subscriber));
    subscriber.on(cluster ? 'smessage' : 'message', (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      let message: BusMessage;
      try {
        message = JSON.parse(text) as BusMessage;
      } catch {
        return; // not ours, or corrupt
      }
      this.#handlers.message(message);
    });
    if (cluster) {
      // The slot moved (resharding) or its node was replaced (failover): follow it.
      subscriber.on('sunsubscribe', () => this.#reopen());
      this.#rehome = setInterval(() => this.#followSlot(), 1_000);
      this.#rehome.unref?.();
    }
    if (subscriber.status === 'ready') await this.#subscribe(subscriber);
  }

  #retryOpen(error: unknown): void {
    this.#handlers.error(toRedisError('cache bus', error));
    if (!this.#closed) setTimeout(() => this.#reopen(), 1_000).unref?.();
  }

  async #subscribe(subscriber: Redis): Promise<void> {
    try {
      if (isCluster(this.#redis)) await subscriber.ssubscribe(this.#channel);
      else await subscriber.subscribe(this.#channel);
      if (subscriber === this.#subscriber) this.#setConnected(true);
    } catch (error) {
      this.#handlers.error(toRedisError('cache bus subscribe', error));
      // MOVED and the like: the slot lives elsewhere now.
      if (isCluster(this.#redis)) this.#reopen();
    }
  }

  async #nodeConnection(): Promise<Redis> {
    const cluster = this.#redis as import('ioredis').Cluster;
    if (cluster.status !== 'ready') await cluster.ping();
    const owner = cluster.slots[keySlot(this.#channel)]?.[0];
    if (!owner)
      throw new RedscaleError('ERR_REDIS', `redscale: no Cluster node owns the cache bus channel ${this.#channel}`);
    const separator = owner.lastIndexOf(':');
    return new Redis({
      ...cluster.options.redisOptions,
      host: owner.slice(0, separator),
      port: Number(owner.slice(separator + 1)),
      autoResubscribe: false,
      lazyConnect: false,
    });
  }

  #followSlot(): void {
    const cluster = this.#redis as import('ioredis').Cluster;
    const owner = cluster.slots[keySlot(this.#channel)]?.[0];
    const subscriber = this.#subscriber;
    if (!owner || !subscriber) return;
    if (owner !== `${subscriber.options.host}:${subscriber.options.port}`) this.#reopen();
  }

  #reopen(): void {
    if (this.#closed) return;
    clearInterval(this.#rehome);
    this.#setConnected(false);
    const old = this.#subscriber;
    this.#subscriber = undefined;
    old?.disconnect();
    this.#open().catch((error: unknown) => this.#retryOpen(error));
  }

  #setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    if (connected) {
      this.#handlers.connected();
      for (const resolve of this.#waiting.splice(0)) resolve();
    } else {
      this.#handlers.disconnected();
    }
  }
}

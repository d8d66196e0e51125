import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { InvalidOptionError } from '../common/errors.js';
import { durationSchema, parseOptions } from '../common/options.js';

/**
 * Options for {@link createClient}. Every field is optional; the defaults fail fast instead of
 * hanging, which is what a request path needs from a shared Redis.
 */
export interface CreateClientOptions {
  /**
   * `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS), or a Sentinel deployment as
   * `redis-sentinel://[user:pass@]host1:port1[,host2:port2…][/db]#primaryName` (the form Lettuce
   * and Spring use; `rediss-sentinel://` for TLS). Default `redis://127.0.0.1:6379`.
   */
  url?: string;
  /**
   * Sentinels to ask for the current primary of `name` (URLs or `{ host, port }`): the client
   * follows failovers, reconnecting to the promoted replica. Giving sentinels makes a
   * Sentinel-managed `Redis` client; the `url`'s user, password and db apply to the data nodes.
   */
  sentinels?: Array<string | { host: string; port: number }>;
  /** The primary's name as the sentinels monitor it (`sentinel monitor <name> …`). Required with `sentinels`. */
  name?: string;
  /** Password for the sentinels themselves, when they require one. */
  sentinelPassword?: string;
  /**
   * Redis Cluster startup nodes, as URLs (`redis://host:port`, `rediss://…`) or `{ host, port }`.
   * Giving nodes makes the client a `Cluster`.
   */
  nodes?: Array<string | { host: string; port: number }>;
  /** Treat `url` as one startup node of a Cluster. Default `false`. */
  cluster?: boolean;
  /**
   * How long one command may wait for its reply, including time queued while reconnecting.
   * Default `'1s'`. ioredis' own default is no limit.
   */
  commandTimeout?: number | string;
  /** How long a connection attempt may take. Default `'2s'` (ioredis: 10 s). */
  connectTimeout?: number | string;
  /**
   * Reconnection attempts a queued command survives before it fails. Default `1` (ioredis: 20,
   * which holds a request ~10 s when Redis is down).
   */
  maxRetriesPerRequest?: number;
  /** Longest pause between reconnection attempts; attempts never stop. Default `'2s'`. */
  maxReconnectDelay?: number | string;
  /**
   * Batch the commands issued in one turn of the event loop into one write (ioredis
   * `enableAutoPipelining`). Default `false`: it holds every command until the end of the turn,
   * which adds latency one request at a time (GET p50 61→108 µs measured), and ioredis keeps one
   * batch in flight per node, so with script calls client and Redis take turns (0.88–1.0× at
   * concurrency 64); it speeds bare GETs at high concurrency (1.6–1.7×). See the README.
   */
  autoPipelining?: boolean;
  /**
   * Receives connection errors (refused, reset, timed out) while the client reconnects on its
   * own. Without it ioredis prints "Unhandled error event" for each one.
   */
  onError?: (error: Error) => void;
  /** Extra ioredis options, applied last (for Cluster: to every node connection). */
  redisOptions?: RedisOptions;
  /** Extra ioredis Cluster options, applied last. */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
}

const urlSchema = z.string().refine((url) => /^rediss?:\/\/[^\s]*$/.test(url), {
  message: 'a URL starting with redis:// or rediss://',
});

const nodeSchema = z.union([
  urlSchema,
  z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }),
]);

const sentinelUrlPattern = /^rediss?-sentinel:\/\/[^\s#]+#[^\s#]+$/;

const optionsSchema = z.strictObject({
  url: z
    .string()
    .refine((url) => /^rediss?:\/\/[^\s]*$/.test(url) || sentinelUrlPattern.test(url), {
      message: 'a URL starting with redis:// or rediss://, or redis-sentinel://host:port[,host:port…]#primaryName',
    })
    .optional(),
  sentinels: z.array(nodeSchema).min(1).optional(),
  name: z.string().min(1).optional(),
  sentinelPassword: z.string().optional(),
  nodes: z.array(nodeSchema).min(1).optional(),
  cluster: z.boolean().default(false),
  commandTimeout: durationSchema().default(1_000),
  connectTimeout: durationSchema().default(2_000),
  maxRetriesPerRequest: z.number().int().min(0).default(1),
  maxReconnectDelay: durationSchema().default(2_000),
  autoPipelining: z.boolean().default(false),
  onError: z
    .custom<(error: Error) => void>((value) => typeof value === 'function', { message: 'a function' })
    .optional(),
  redisOptions: z.record(z.string(), z.unknown()).optional(),
  clusterOptions: z.record(z.string(), z.unknown()).optional(),
});

/**
 * Creates an ioredis client with defaults that fail fast: a command timeout, one retry per
 * request, bounded connect time, and never-ending reconnection with capped jittered backoff.
 *
 * @example
 * ```ts
 * createClient('redis://localhost:6379')                  // Redis
 * createClient('rediss://user:pass@cache.example:6380')   // Redis over TLS
 * createClient(['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000'])   // Cluster
 * createClient({ url: process.env.REDIS_URL, commandTimeout: '500ms' })
 * ```
 *
 * @throws InvalidOptionError when an option is invalid.
 */
export function createClient(nodes: Array<string | { host: string; port: number }>): Cluster;
export function createClient(
  options: CreateClientOptions & { nodes: NonNullable<CreateClientOptions['nodes']> },
): Cluster;
export function createClient(options: CreateClientOptions & { cluster: true }): Cluster;
export function createClient(urlOrOptions?: string | CreateClientOptions): Redis;
export function createClient(
  input?: string | CreateClientOptions | Array<string | { host: string; port: number }>,
): Redis | Cluster;
export function createClient(
  input?: string | CreateClientOptions | Array<string | { host: string; port: number }>,
): Redis | Cluster {
  const raw: unknown =
    typeof input === 'string' ? { url: input } : Array.isArray(input) ? { nodes: input } : (input ?? {});
  const options = parseOptions(optionsSchema, raw, 'createClient()');

  const base: RedisOptions = {
    commandTimeout: options.commandTimeout,
    connectTimeout: options.connectTimeout,
    maxRetriesPerRequest: options.maxRetriesPerRequest,
    enableAutoPipelining: options.autoPipelining,
    // After a failover behind a DNS endpoint (ElastiCache, Memorystore…) the old primary turns
    // read-only: reconnect so the next command reaches the new one. The failed command is not
    // resent (1, not 2): on a server that stays a replica that would loop until the timeout.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 1 : false),
  };
  const retryStrategy = backoff(options.maxReconnectDelay);

  const sentinel = sentinelConfig(options);
  if (sentinel) {
    return listen(
      new Redis({
        ...base,
        ...sentinel,
        retryStrategy,
        sentinelRetryStrategy: retryStrategy,
        // Subscribe to the sentinels' +switch-master, so a failover is followed at once rather than
        // when the old primary's connection breaks.
        failoverDetector: true,
        ...(options.redisOptions as RedisOptions | undefined),
      }),
      options.onError,
    );
  }

  if (options.nodes || options.cluster) {
    const startup = (options.nodes ?? [options.url ?? 'redis://127.0.0.1:6379']).map(parseNode);
    const auth = startup.find((node) => node.username !== undefined || node.password !== undefined);
    const tls = startup.some((node) => node.tls);
    const redisOptions: RedisOptions = {
      ...base,
      ...(auth?.username !== undefined && { username: auth.username }),
      ...(auth?.password !== undefined && { password: auth.password }),
      ...(tls && { tls: {} }),
      ...(options.redisOptions as RedisOptions | undefined),
    };
    return listen(
      new Cluster(
        startup.map(({ host, port }) => ({ host, port })),
        {
          enableAutoPipelining: options.autoPipelining,
          clusterRetryStrategy: retryStrategy,
          slotsRefreshTimeout: options.connectTimeout,
          scaleReads: 'master',
          ...(options.clusterOptions as ClusterOptions | undefined),
          redisOptions,
        },
      ),
      options.onError,
    );
  }

  const redisOptions: RedisOptions = {
    ...base,
    retryStrategy,
    ...(options.redisOptions as RedisOptions | undefined),
  };
  return listen(options.url ? new Redis(options.url, redisOptions) : new Redis(redisOptions), options.onError);
}

/** The ioredis Sentinel options from `sentinels` + `name`, or from a `redis-sentinel://` URL. */
function sentinelConfig(options: z.output<typeof optionsSchema>): RedisOptions | undefined {
  const fromUrl = options.url && sentinelUrlPattern.test(options.url) ? parseSentinelUrl(options.url) : undefined;
  if (!fromUrl && !options.sentinels) {
    if (options.name !== undefined) {
      throw new InvalidOptionError(
        'name',
        options.name,
        'only together with sentinels (or a redis-sentinel:// url)',
        'createClient()',
      );
    }
    return undefined;
  }
  if (options.nodes || options.cluster) {
    throw new InvalidOptionError(
      'sentinels',
      options.sentinels ?? options.url,
      'either Sentinel or Cluster options, not both',
      'createClient()',
    );
  }
  const name = options.name ?? fromUrl?.name;
  if (!name) {
    throw new InvalidOptionError('name', name, "the primary's name as the sentinels monitor it", 'createClient()');
  }
  const data = options.url && !fromUrl ? parseNode(options.url) : undefined;
  const sentinels = options.sentinels ? options.sentinels.map(parseNode) : (fromUrl?.sentinels ?? []);
  const auth = fromUrl ?? data;
  const tls = fromUrl?.tls ?? data?.tls ?? false;
  return {
    sentinels: sentinels.map(({ host, port }) => ({ host, port })),
    name,
    ...(auth?.username !== undefined && { username: auth.username }),
    ...(auth?.password !== undefined && { password: auth.password }),
    ...(fromUrl?.db !== undefined && { db: fromUrl.db }),
    ...(options.sentinelPassword !== undefined && { sentinelPassword: options.sentinelPassword }),
    ...(tls && { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true }),
  };
}

/** `redis-sentinel://[user:pass@]h1:p1[,h2:p2…][/db]#name` */
function parseSentinelUrl(url: string) {
  const tls = url.startsWith('rediss-');
  const rest = url.slice(url.indexOf('://') + 3);
  const [beforeName = '', name] = rest.split('#') as [string, string];
  const at = beforeName.lastIndexOf('@');
  const credentials = at >= 0 ? beforeName.slice(0, at) : '';
  const [hosts = '', db] = (at >= 0 ? beforeName.slice(at + 1) : beforeName).split('/');
  const [user, password] = credentials.includes(':') ? credentials.split(/:(.*)/s) : [credentials, undefined];
  return {
    tls,
    name: decodeURIComponent(name),
    sentinels: hosts.split(',').map((host) => parseNode(`redis://${host}`)),
    ...(user && { username: decodeURIComponent(user) }),
    ...(password !== undefined && password !== '' && { password: decodeURIComponent(password) }),
    ...(db !== undefined && db !== '' && { db: Number(db) }),
  };
}

function listen<T extends Redis | Cluster>(client: T, onError: ((error: Error) => void) | undefined): T {
  if (onError) client.on('error', onError);
  return client;
}

interface ParsedNode {
  host: string;
  port: number;
  username?: string;
  password?: string;
  tls: boolean;
}

function parseNode(node: string | { host: string; port: number }): ParsedNode {
  if (typeof node !== 'string') return { host: node.host, port: node.port, tls: false };
  const url = new URL(node);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 6379,
    ...(url.username && { username: decodeURIComponent(url.username) }),
    ...(url.password && { password: decodeURIComponent(url.password) }),
    tls: url.protocol === 'rediss:',
  };
}

/** Exponential backoff with full jitter, capped, never giving up: a service should heal itself. */
function backoff(maxDelayMs: number) {
  return (attempt: number): number => {
    const ceiling = Math.min(maxDelayMs, 50 * 2 ** Math.min(attempt, 16));
    return Math.max(10, Math.round(Math.random() * ceiling));
  };
}

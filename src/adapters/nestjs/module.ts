import {
  type DynamicModule,
  Inject,
  Injectable,
  Module,
  type ModuleMetadata,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Cache } from '../../cache/cache.js';
import type { CacheOptions } from '../../cache/options.js';
import { closeClient } from '../../client/close.js';
import { type CreateClientOptions, createClient } from '../../client/create-client.js';
import type { RedisLike } from '../../client/types.js';
import { InvalidOptionError } from '../../common/errors.js';
import { RedisHealth, type RedisHealthOptions } from '../../health/redis-health.js';
import { Lock } from '../../lock/lock.js';
import type { LockOptions } from '../../lock/options.js';
import { CacheHealthIndicator } from './cache-indicator.js';
import { RedisHealthIndicator } from './health-indicator.js';
import { RedscaleThrottlerStorage, type RedscaleThrottlerStorageOptions } from './throttler-storage.js';
import { REDSCALE_OPTIONS, REDSCALE_REDIS } from './tokens.js';

/** Options for {@link RedscaleModule}. */
export interface RedscaleModuleOptions {
  /** Your client; or give `url` and the module creates one (and quits it on shutdown). */
  redis?: RedisLike;
  /** A URL or `createClient` options to create the client from (quit on shutdown). */
  url?: string | CreateClientOptions;
  /** Namespace for every primitive's keys. Default `'redscale'`. */
  prefix?: string;
  /** Options for the injectable `Cache`; `false` provides `null` instead (no bus connection). Default `{}`. */
  cache?: Omit<CacheOptions, 'redis'> | false;
  /** Options for the injectable `Lock`. Default `{}` (the module's prefix). */
  lock?: Omit<LockOptions, 'redis'>;
  /** Options for the injectable `RedisHealth` (and `RedisHealthIndicator`). Default `{}`. */
  health?: Omit<RedisHealthOptions, 'redis'>;
  /** Options for the injectable `RedscaleThrottlerStorage`. Default: prefix `'<prefix>:throttler'`. */
  throttler?: Omit<RedscaleThrottlerStorageOptions, 'redis'>;
  /** Register the providers globally. Default `true`. */
  global?: boolean;
}

/** Options for {@link RedscaleModule.forRootAsync}. */
export interface RedscaleModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Builds the options from the providers named in `inject`. */
  // biome-ignore lint/suspicious/noExplicitAny: Nest factories take whatever `inject` resolves to.
  useFactory: (...deps: any[]) => RedscaleModuleOptions | Promise<RedscaleModuleOptions>;
  /** Providers passed to `useFactory`, in order. Default `[]`. */
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  /** Register the providers globally. Default `true`. */
  global?: boolean;
}

/** Quits a client the module created (never one it was given) and closes the cache's bus. */
@Injectable()
class RedscaleShutdown implements OnApplicationShutdown {
  readonly #options: RedscaleModuleOptions;
  readonly #redis: RedisLike;
  readonly #cache: Cache | null;

  constructor(
    @Inject(REDSCALE_OPTIONS) options: RedscaleModuleOptions,
    @Inject(REDSCALE_REDIS) redis: RedisLike,
    @Inject(Cache) cache: Cache | null,
  ) {
    this.#options = options;
    this.#redis = redis;
    this.#cache = cache;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.#cache?.close();
    if (!this.#options.redis) await closeClient(this.#redis);
  }
}

const prefixOf = (options: RedscaleModuleOptions) => options.prefix ?? 'redscale';

function providers(options: Provider): Provider[] {
  return [
    options,
    {
      provide: REDSCALE_REDIS,
      inject: [REDSCALE_OPTIONS],
      useFactory: (o: RedscaleModuleOptions) => {
        if (o.redis) return o.redis;
        if (!o.url)
          throw new InvalidOptionError(
            'redis',
            undefined,
            'an ioredis client (redis) or a url to create one',
            'RedscaleModule',
          );
        return createClient(o.url);
      },
    },
    {
      provide: Cache,
      inject: [REDSCALE_OPTIONS, REDSCALE_REDIS],
      useFactory: (o: RedscaleModuleOptions, redis: RedisLike) =>
        o.cache === false ? null : new Cache({ ...o.cache, redis, prefix: o.cache?.prefix ?? prefixOf(o) }),
    },
    {
      provide: Lock,
      inject: [REDSCALE_OPTIONS, REDSCALE_REDIS],
      useFactory: (o: RedscaleModuleOptions, redis: RedisLike) =>
        new Lock({ ...o.lock, redis, prefix: o.lock?.prefix ?? prefixOf(o) }),
    },
    {
      provide: RedisHealth,
      inject: [REDSCALE_OPTIONS, REDSCALE_REDIS],
      useFactory: (o: RedscaleModuleOptions, redis: RedisLike) =>
        new RedisHealth({ ...o.health, redis, prefix: o.health?.prefix ?? prefixOf(o) }),
    },
    {
      provide: RedscaleThrottlerStorage,
      inject: [REDSCALE_OPTIONS, REDSCALE_REDIS],
      useFactory: (o: RedscaleModuleOptions, redis: RedisLike) =>
        new RedscaleThrottlerStorage({
          ...o.throttler,
          redis,
          prefix: o.throttler?.prefix ?? `${prefixOf(o)}:throttler`,
        }),
    },
    RedisHealthIndicator,
    CacheHealthIndicator,
    RedscaleShutdown,
  ];
}

const EXPORTS = [
  REDSCALE_OPTIONS,
  REDSCALE_REDIS,
  Cache,
  Lock,
  RedisHealth,
  RedscaleThrottlerStorage,
  RedisHealthIndicator,
  CacheHealthIndicator,
];

/**
 * Provides redscale to a Nest application: the Redis client (`REDSCALE_REDIS`), `Cache`, `Lock`,
 * `RedisHealth`, `RedscaleThrottlerStorage`, `RedisHealthIndicator` and `CacheHealthIndicator`, all
 * injectable by class.
 * A client it created from `url` is quit on application shutdown; a client you gave is left alone.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     RedscaleModule.forRoot({ url: process.env.REDIS_URL }),
 *     ThrottlerModule.forRootAsync({
 *       inject: [RedscaleThrottlerStorage],
 *       useFactory: (storage: RedscaleThrottlerStorage) => ({ throttlers: [{ ttl: 60_000, limit: 100 }], storage }),
 *     }),
 *   ],
 * })
 * export class AppModule {}
 * ```
 */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with static factories.
export class RedscaleModule {
  /** The module with options known up front. */
  static forRoot(options: RedscaleModuleOptions): DynamicModule {
    return {
      module: RedscaleModule,
      global: options.global ?? true,
      providers: providers({ provide: REDSCALE_OPTIONS, useValue: options }),
      exports: EXPORTS,
    };
  }

  /** The module with options built by a factory (from `ConfigService`, say). */
  static forRootAsync(options: RedscaleModuleAsyncOptions): DynamicModule {
    return {
      module: RedscaleModule,
      global: options.global ?? true,
      imports: options.imports ?? [],
      providers: providers({ provide: REDSCALE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] }),
      exports: EXPORTS,
    };
  }
}

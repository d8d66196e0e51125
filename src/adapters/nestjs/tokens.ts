/** Injection token of the module's options. */
export const REDSCALE_OPTIONS = Symbol.for('redscale:options');
/** Injection token of the Redis client the module uses (given, or created from `url`). */
export const REDSCALE_REDIS = Symbol.for('redscale:redis');

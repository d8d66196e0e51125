/**
 * Stable codes for every failure redscale reports. Match on `error.code`, never on the message:
 * codes are part of the public API, messages are for humans and may be reworded.
 */
export type RedscaleErrorCode =
  /** An option or argument failed validation. */
  | 'ERR_INVALID_OPTION'
  /** A Redis call did not answer within its timeout. */
  | 'ERR_TIMEOUT'
  /** Redis answered with an error, or the connection failed. */
  | 'ERR_REDIS'
  /** A stored value could not be encoded or decoded. */
  | 'ERR_SERIALIZATION'
  /** A lock could not be acquired before the wait ran out. */
  | 'ERR_LOCK_TIMEOUT'
  /** A lock that was held is no longer held (expired, or taken over). */
  | 'ERR_LOCK_LOST'
  /** A lock or permits were granted, or write-buffer items written, but fewer replicas than asked for acknowledged in time. */
  | 'ERR_NOT_REPLICATED'
  /** The operation was aborted through an AbortSignal. */
  | 'ERR_ABORTED'
  /** A write buffer (or its dead-letter stream) is at its bound: the item was not added. */
  | 'ERR_BUFFER_FULL'
  /** A cache loader failed, and the cache remembered the failure (`errorTtl`). */
  | 'ERR_LOADER_FAILED'
  /** A cache load took longer than its `hardTimeout`: the caller stopped waiting (the load goes on). */
  | 'ERR_LOADER_TIMEOUT'
  /** A message on the cache's invalidation bus was malformed, too large, or of a newer format: dropped. */
  | 'ERR_BUS_MESSAGE'
  /** The primitive was closed, so the operation cannot complete. */
  | 'ERR_CLOSED';

/** Options shared by every redscale error. */
export interface RedscaleErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Structured context (key, option, resource…) for logs and metrics. */
  context?: Record<string, unknown>;
}

/**
 * The base class of every error redscale throws. Each failure has a stable {@link code}, the
 * original error as `cause`, and structured {@link context}.
 */
export class RedscaleError extends Error {
  /** A stable identifier for the kind of failure. */
  readonly code: RedscaleErrorCode;
  /** Structured details (key, option, resource…); never contains cached values. */
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: RedscaleErrorCode, message: string, options: RedscaleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.context = Object.freeze({ ...options.context });
  }
}

/** An option or argument is invalid. The message names the option, the value and what is allowed. */
export class InvalidOptionError extends RedscaleError {
  /** Dotted path of the offending option, e.g. `limits[0].window`. */
  readonly option: string;
  /** The value that was rejected. */
  readonly value: unknown;

  constructor(option: string, value: unknown, expected: string, where?: string) {
    const place = where ? ` for ${where}` : '';
    super(
      'ERR_INVALID_OPTION',
      `redscale: invalid option "${option}"${place}: received ${describeValue(value)}; expected ${expected}.`,
      { context: { option, where } },
    );
    this.option = option;
    this.value = value;
  }
}

/** A Redis call did not answer in time. The request it was part of was not left hanging. */
export class RedisTimeoutError extends RedscaleError {
  constructor(operation: string, timeoutMs: number, context: Record<string, unknown> = {}) {
    super('ERR_TIMEOUT', `redscale: ${operation} did not answer within ${timeoutMs} ms.`, {
      context: { operation, timeoutMs, ...context },
    });
  }
}

/** Redis answered with an error or could not be reached. `cause` holds the client's error. */
export class RedisCommandError extends RedscaleError {
  constructor(operation: string, cause: unknown, context: Record<string, unknown> = {}) {
    super('ERR_REDIS', `redscale: ${operation} failed: ${messageOf(cause)}`, {
      cause,
      context: { operation, ...context },
    });
  }
}

/** Wraps anything thrown by a Redis call into a {@link RedscaleError}, keeping redscale's own errors. */
export function toRedisError(operation: string, error: unknown, context?: Record<string, unknown>): RedscaleError {
  return error instanceof RedscaleError ? error : new RedisCommandError(operation, error, context);
}

/** The message of any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Renders a rejected value for an error message, briefly and without throwing. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length}`;
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return 'an object';
  }
}

/** An operation was cancelled through its AbortSignal. `cause` is the signal's reason. */
export class AbortedError extends RedscaleError {
  constructor(operation: string, reason: unknown, context: Record<string, unknown> = {}) {
    super('ERR_ABORTED', `redscale: ${operation} was aborted`, { cause: reason, context: { operation, ...context } });
  }
}

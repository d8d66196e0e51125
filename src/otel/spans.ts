import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { LockOperationMessage, OperationMessage } from '../observability/channels.js';
import { errorType } from './metrics.js';

/**
 * One span per traced operation: started as the operation starts (a child of the redscale
 * operation it runs in — a `cache load` under its `cache getOrSet` — else of the active
 * context), annotated with what the operation found, ended when it settles.
 */
export class RedscaleSpans {
  readonly #tracer: Tracer;
  readonly #spans = new WeakMap<object, Span>();
  /**
   * The context of the redscale operation running now, bound to the tracing channels' `start`
   * (so it follows the operation's async work); OpenTelemetry's own context is not reachable
   * from a channel subscriber.
   */
  readonly current = new AsyncLocalStorage<Context>();

  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  /** Starts the span of `message`; returns the context the operation runs in. */
  start(name: string, message: OperationMessage, attributes: Attributes): Context {
    const parent = this.current.getStore() ?? context.active();
    const span = this.#tracer.startSpan(
      name,
      {
        kind: SpanKind.INTERNAL,
        attributes: { 'db.system': 'redis', 'redscale.prefix': message.prefix, ...attributes },
      },
      parent,
    );
    this.#spans.set(message, span);
    return trace.setSpan(parent, span);
  }

  /** Ends the span of `message` with what the operation found. */
  end(message: OperationMessage): void {
    const span = this.#spans.get(message);
    if (!span) return;
    this.#spans.delete(message);
    const found = message as OperationMessage & Partial<LockOperationMessage> & { outcome?: string };
    if (found.outcome) span.setAttribute('redscale.cache.outcome', found.outcome);
    if (found.attempts !== undefined) span.setAttribute('redscale.lock.attempts', found.attempts);
    if (found.waitedMs !== undefined) span.setAttribute('redscale.lock.wait_ms', Math.round(found.waitedMs));
    const result = message.result as Record<string, unknown> | undefined | null;
    if (result && typeof result === 'object') {
      if (typeof result.allowed === 'boolean') {
        span.setAttribute('redscale.ratelimit.outcome', result.allowed ? 'allowed' : 'refused');
        span.setAttribute('redscale.ratelimit.reason', String(result.reason));
        span.setAttribute('redscale.ratelimit.source', String(result.source));
      }
      if (typeof result.status === 'string') span.setAttribute('redscale.health.status', result.status);
      const fence = fenceOf(result);
      if (fence !== undefined) span.setAttribute('redscale.lock.fence', fence);
    }
    if (message.error !== undefined) {
      const error = message.error;
      span.setAttribute('error.type', errorType(error));
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    span.end();
  }
}

/** The fencing token of a single-lock handle, read without throwing (a lost handle throws nothing here: it is fresh). */
function fenceOf(result: Record<string, unknown>): number | undefined {
  if (!('fence' in result) || !('token' in result)) return undefined;
  try {
    const fence = result.fence;
    return typeof fence === 'number' ? fence : undefined;
  } catch {
    return undefined;
  }
}

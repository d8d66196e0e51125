import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CapturedResponse } from './entry.js';

/** How a capture ended: the whole response, or `passthrough` when it went to the client as it was written. */
export type CaptureResult = { kind: 'complete'; response: CapturedResponse } | { kind: 'passthrough'; reason: string };

type Method = 'writeHead' | 'write' | 'end' | 'flushHeaders';
const METHODS: Method[] = ['writeHead', 'write', 'end', 'flushHeaders'];

/**
 * Buffers what a handler writes to a Node `ServerResponse` (Express, Fastify and Nest all end
 * there), whatever it writes: `res.json`, `res.send(buffer)`, a piped stream. Nothing reaches
 * the client until the owner decides; a body that grows past `maxBodySize`, a `flushHeaders()`
 * (server-sent events) or a client that goes away turns the capture into a passthrough: what was
 * buffered is written at once and the rest flows as usual.
 */
export class ResponseCapture {
  /** Settles once the handler ended the response, or the capture turned into a passthrough. */
  readonly done: Promise<CaptureResult>;
  readonly #res: ServerResponse;
  readonly #maxBodySize: number;
  readonly #saved = new Map<Method, { own: boolean; value: unknown }>();
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #settled = false;
  #resolve!: (result: CaptureResult) => void;

  constructor(res: ServerResponse, maxBodySize: number) {
    this.#res = res;
    this.#maxBodySize = maxBodySize;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    const target = res as unknown as Record<Method, unknown>;
    for (const method of METHODS) {
      this.#saved.set(method, { own: Object.hasOwn(res, method), value: target[method] });
    }
    target.writeHead = (status: number, ...rest: unknown[]) => {
      res.statusCode = status;
      const headers = rest.find((arg) => typeof arg === 'object' && arg !== null);
      if (Array.isArray(headers)) {
        for (let i = 0; i + 1 < headers.length; i += 2) res.setHeader(String(headers[i]), headers[i + 1] as string);
      } else if (headers) {
        for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
          if (value !== undefined) res.setHeader(name, value);
        }
      }
      return res;
    };
    target.write = (chunk: unknown, encoding?: unknown, callback?: unknown) => {
      this.#append(chunk, encoding);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') process.nextTick(done as () => void);
      if (this.#settled) return true;
      if (this.#size > this.#maxBodySize) this.passthrough('body too large');
      return true;
    };
    target.end = (chunk?: unknown, encoding?: unknown, callback?: unknown) => {
      const done = [chunk, encoding, callback].find((arg) => typeof arg === 'function');
      if (typeof chunk !== 'function') this.#append(chunk, encoding);
      if (typeof done === 'function') res.once('finish', done as () => void);
      if (this.#settled) return res;
      if (this.#size > this.#maxBodySize) {
        this.passthrough('body too large', true);
        return res;
      }
      this.#restore();
      this.#settled = true;
      this.#resolve({ kind: 'complete', response: this.#response() });
      return res;
    };
    target.flushHeaders = () => this.passthrough('headers flushed');
    res.once('close', () => {
      if (!this.#settled) this.passthrough('client went away');
    });
  }

  /** Stops buffering: writes what was buffered to the client, and lets the rest through. */
  passthrough(reason: string, ended = false): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#restore();
    const res = this.#res;
    if (!res.destroyed && !res.writableEnded) {
      // biome-ignore lint/suspicious/noExplicitAny: the restored methods, called as the handler would.
      const out = res as any;
      for (const chunk of this.#chunks) out.write(chunk);
      if (ended) out.end();
      else if (reason === 'headers flushed') out.flushHeaders();
    }
    this.#chunks.length = 0;
    this.#resolve({ kind: 'passthrough', reason });
  }

  #append(chunk: unknown, encoding: unknown): void {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    let buffer: Buffer;
    if (typeof chunk === 'string') {
      buffer = Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    } else if (chunk instanceof Uint8Array) {
      buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    } else {
      buffer = Buffer.from(String(chunk));
    }
    if (this.#settled) {
      // Already a passthrough: the restored write gets it (this only happens within end()).
      (this.#res as unknown as { write(chunk: Buffer): void }).write(buffer);
      return;
    }
    this.#chunks.push(buffer);
    this.#size += buffer.length;
  }

  #response(): CapturedResponse {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(this.#res.getHeaders())) {
      if (value === undefined) continue;
      headers[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value);
    }
    return { status: this.#res.statusCode, headers, body: Buffer.concat(this.#chunks) };
  }

  #restore(): void {
    const target = this.#res as unknown as Record<Method, unknown>;
    for (const [method, saved] of this.#saved) {
      if (saved.own) target[method] = saved.value;
      else delete target[method];
    }
  }
}

/** What to write to the client. */
export interface Reply {
  /** The HTTP status code to send (304 for a matching `If-None-Match`). */
  status: number;
  /** The headers to send, including `X-Cache`, `Age` and `ETag`. */
  headers: Record<string, string | string[]>;
  /** `undefined` for no body (304, 204, HEAD). */
  body: Buffer | undefined;
}

/** Writes a reply to a Node response, keeping headers set earlier (CORS, rate limits…). */
export function writeReply(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value);
  if (reply.body === undefined) {
    if (reply.status === 304 || reply.status === 204) {
      for (const name of ['content-type', 'content-length', 'transfer-encoding']) res.removeHeader(name);
    }
    res.end();
    return;
  }
  res.end(reply.body);
}

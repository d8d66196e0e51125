import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Envelope, PayloadFormat } from './envelope.js';
import { isBinarySerializer, type Serializer } from './serializer.js';

/** What the codec calls: `deserialize` receives the kind of data `serialize` produced. */
interface AnySerializer {
  serialize(value: unknown): unknown;
  deserialize(data: string | Buffer): unknown;
}

/**
 * The most a compressed payload may inflate to (64 MiB): a hostile or corrupt entry in Redis
 * (a "zip bomb") is refused instead of exhausting memory. Larger payloads are stored uncompressed.
 */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

/** Compression of stored values, resolved. */
export interface CompressionSettings {
  /** Payloads of at least this many bytes are deflated. */
  threshold: number;
  /** zlib level, 1 (fast) to 9 (small); -1 is zlib's default (6). */
  level: number;
}

/** A value serialized for Redis, and read back as every instance will read it. */
export interface Prepared {
  payload: string | Buffer;
  format: PayloadFormat;
  value: unknown;
}

const TEXT: PayloadFormat = { binary: false, compressed: false };

/**
 * Turns values into payloads and back: the serializer's text or bytes, deflated (node:zlib,
 * raw deflate) when compression is on and the payload is at least `threshold` bytes and shrinks.
 * Reading follows the format the entry records, whatever this cache's own settings, so caches
 * with and without compression read each other's entries.
 */
export class PayloadCodec {
  readonly #serializer: AnySerializer;
  readonly #compression: CompressionSettings | false;
  /** Whether the serializer produces bytes (declared with `binarySerializer`). */
  readonly #binary: boolean;

  constructor(serializer: Serializer, compression: CompressionSettings | false) {
    this.#serializer = serializer as AnySerializer;
    this.#binary = isBinarySerializer(serializer);
    this.#compression = compression;
  }

  /** Serializes a value (throws what the serializer throws, or a TypeError for what it returned). */
  prepare(value: unknown): Prepared {
    const serialized: unknown = this.#serializer.serialize(value);
    let payload: string | Buffer;
    if (typeof serialized === 'string') {
      if (this.#binary) throw new TypeError('the binarySerializer returned a string, not bytes');
      payload = serialized;
    } else if (serialized instanceof Uint8Array) {
      if (!this.#binary) throw new TypeError('the serializer returned bytes: declare it with binarySerializer()');
      payload = Buffer.isBuffer(serialized)
        ? serialized
        : Buffer.from(serialized.buffer, serialized.byteOffset, serialized.byteLength);
    } else {
      throw new TypeError(
        `the serializer returned ${describe(serialized)}, not a string or bytes (Buffer, Uint8Array)`,
      );
    }
    const binary = typeof payload !== 'string';
    const roundTrip = this.#serializer.deserialize(payload);
    const compressed = this.#compress(payload);
    if (compressed) return { payload: compressed, format: { binary, compressed: true }, value: roundTrip };
    return { payload, format: binary ? { binary: true, compressed: false } : TEXT, value: roundTrip };
  }

  /**
   * The value of an entry's payload. @throws when it cannot be inflated or deserialized, or is
   * of the other kind than this serializer's (bytes for a text one, text for a binary one).
   */
  read(envelope: Envelope): unknown {
    const { format } = envelope;
    if (format.binary !== this.#binary) {
      throw new TypeError(`a ${format.binary ? 'binary' : 'text'} payload, and this cache's serializer is not`);
    }
    let payload = envelope.payload;
    if (format.compressed) {
      const inflated = inflateRawSync(payload, { maxOutputLength: MAX_INFLATED_BYTES });
      payload = format.binary ? inflated : inflated.toString('utf8');
    } else if (format.binary && typeof payload === 'string') {
      payload = Buffer.from(payload, 'utf8');
    }
    return this.#serializer.deserialize(payload);
  }

  #compress(payload: string | Buffer): Buffer | undefined {
    const compression = this.#compression;
    if (!compression) return undefined;
    const size = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
    if (size < compression.threshold || size > MAX_INFLATED_BYTES) return undefined;
    const deflated = deflateRawSync(payload, {
      level: compression.level === -1 ? constants.Z_DEFAULT_COMPRESSION : compression.level,
    });
    // Incompressible data (already compressed media, random bytes) is kept as it was.
    return deflated.length < size ? deflated : undefined;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'no prototype'})`;
  return typeof value;
}

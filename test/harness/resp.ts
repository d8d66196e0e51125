import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';

/**
 * Sends one inline command over a raw socket and returns the raw reply text. The harness uses
 * it to wait for servers without depending on the client library under test.
 */
export function rawCommand(port: number, command: string, timeoutMs = 1_000, tls = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls
      ? connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false })
      : connect({ port, host: '127.0.0.1' });
    let reply = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${command} from port ${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk) => {
      reply = Buffer.concat([reply, chunk]);
      if (isComplete(reply)) {
        clearTimeout(timer);
        socket.end();
        resolve(reply.toString());
      }
    });
    socket.write(`${command}\r\n`);
  });
}

/** Whether `reply` holds one whole RESP value (simple, error, integer, bulk or nested array). */
function isComplete(reply: Buffer): boolean {
  return endOf(reply, 0) >= 0;
}

/** Where the RESP value starting at `at` ends, or -1 when more bytes are needed. */
function endOf(reply: Buffer, at: number): number {
  const headerEnd = reply.indexOf('\r\n', at);
  if (headerEnd < 0) return -1;
  const type = reply[at];
  const length = Number(reply.subarray(at + 1, headerEnd).toString());
  if (type === 0x24 /* $ */) {
    if (length < 0) return headerEnd + 2;
    return reply.length >= headerEnd + 2 + length + 2 ? headerEnd + 2 + length + 2 : -1;
  }
  if (type === 0x2a /* * */) {
    let next = headerEnd + 2;
    for (let i = 0; i < length; i++) {
      next = endOf(reply, next);
      if (next < 0) return -1;
    }
    return next;
  }
  return headerEnd + 2;
}

/** Polls until `check` resolves true, or throws after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

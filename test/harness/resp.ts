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

/** A simple or error reply ends at its first CRLF; a bulk string after its announced length. */
function isComplete(reply: Buffer): boolean {
  const headerEnd = reply.indexOf('\r\n');
  if (headerEnd < 0) return false;
  if (reply[0] !== 0x24 /* $ */) return true;
  const length = Number(reply.subarray(1, headerEnd).toString());
  return length < 0 || reply.length >= headerEnd + 2 + length + 2;
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

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitUntil } from '../harness/index.js';

const ROOT = join(import.meta.dirname, '../..');

/** A fixture process the test can watch, signal or kill: its output lines, its exit, its last JSON line. */
export interface Child {
  child: ChildProcess;
  /** Stdout, line by line, as it arrives. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** Resolves once the process printed exactly `line`. */
  waitFor(line: string, timeoutMs?: number): Promise<void>;
  /** The first line that parses as JSON and satisfies `match`. */
  waitForJson<T>(match: (value: T) => boolean, timeoutMs?: number): Promise<T>;
}

/**
 * Runs a TypeScript file of test/fixtures in a child process (tsx and the .lua loader, the input
 * as FIXTURE_INPUT), unlike `runFixture` without waiting for it to end: tests that signal or
 * kill processes mid-run use this.
 */
export function startFixture(file: string, input: unknown): Child {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', './test/harness/lua-loader.mjs', join('test/fixtures', file)],
    { cwd: ROOT, env: { ...process.env, FIXTURE_INPUT: JSON.stringify(input) }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const explain = (error: Error) =>
    new Error(`${error.message}; ${file} printed ${JSON.stringify(lines.slice(-5))}, stderr: ${stderr.slice(-2_000)}`);
  const parsed = <T>(match: (value: T) => boolean): T | undefined => {
    for (const line of lines) {
      try {
        const value = JSON.parse(line) as T;
        if (match(value)) return value;
      } catch {
        // not JSON
      }
    }
    return undefined;
  };
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    waitFor: (line, timeoutMs = 60_000) =>
      waitUntil(`${file} to print ${line}`, async () => lines.includes(line), timeoutMs).catch((error: Error) => {
        throw explain(error);
      }),
    waitForJson: async <T>(match: (value: T) => boolean, timeoutMs = 60_000) => {
      await waitUntil(`${file} to print JSON`, async () => parsed(match) !== undefined, timeoutMs).catch(
        (error: Error) => {
          throw explain(error);
        },
      );
      return parsed(match) as T;
    },
  };
}

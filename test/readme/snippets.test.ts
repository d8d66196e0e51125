import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Every ```ts block of the README type-checks against the package's own source, so no snippet
 * can rot. A block may name the context it assumes with an HTML comment on the line before it,
 * `<!-- snippet: express -->`: the names that context declares (an `app`, a `redis` client, the
 * user's own `db`…) are in scope, and nothing else is. `<!-- snippet: skip -->` skips a block.
 */
const ROOT = resolve(import.meta.dirname, '../..');

/** What a snippet may use without declaring it. Every context but `none` has `redis`. */
const CONTEXTS: Record<string, string> = {
  none: '',
  core: `
    declare const redis: import('ioredis').Redis;
  `,
  handler: `
    declare const redis: import('ioredis').Redis;
    declare const app: import('express').Express;
    declare const userId: string;
  `,
  express: `
    declare const redis: import('ioredis').Redis;
    declare const app: import('express').Express;
  `,
  fastify: `
    declare const redis: import('ioredis').Redis;
    declare const app: import('fastify').FastifyInstance;
    declare const handler: import('fastify').RouteHandlerMethod;
    declare function loadProduct(id: string): Promise<{ id: string; name: string }>;
  `,
  cache: `
    declare const redis: import('ioredis').Redis;
    declare const id: string;
    declare const q: string;
    declare const db: { user(id: string): Promise<{ id: string; name: string }> };
    declare const User: import('zod').ZodType<{ id: string; name: string }>;
  `,
  lock: `
    declare const redis: import('ioredis').Redis;
    declare function chargeInvoice(id: number, options: { fence: number; signal: AbortSignal }): Promise<void>;
    declare function runNightly(): Promise<void>;
  `,
  locks: `
    declare const redis: import('ioredis').Redis;
    declare const lock: import('redscale').Lock;
    declare function reserve(stockFence: number | undefined, paymentFence: number | undefined): Promise<void>;
    declare function callPartner(options: { signal: AbortSignal }): Promise<void>;
    declare function rebuild(signal: AbortSignal): Promise<void>;
  `,
  buffer: `
    declare const redis: import('ioredis').Redis;
    declare const chatId: string;
    declare const text: string;
    declare const db: { insertMessages(rows: Array<{ id: string; chatId: string; text: string }>): Promise<void> };
  `,
  nestjs: `
    declare const redis: import('ioredis').Redis;
  `,
};

interface Snippet {
  line: number;
  context: string;
  code: string;
}

function readmeSnippets(): Snippet[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i] as string)) continue;
    const marker = /^<!--\s*snippet:\s*([\w-]+)\s*-->$/.exec((lines[i - 1] ?? '').trim());
    const start = i + 1;
    let end = start;
    while (end < lines.length && !(lines[end] as string).startsWith('```')) end++;
    snippets.push({ line: start, context: marker?.[1] ?? 'core', code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return snippets;
}

function check(snippets: Snippet[]): string[] {
  const dir = join(ROOT, '.tmp', 'readme-snippets');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = snippets.map((snippet) => {
    const file = join(dir, `readme-line-${snippet.line}.ts`);
    const prelude = CONTEXTS[snippet.context];
    if (prelude === undefined)
      throw new Error(`README line ${snippet.line}: unknown snippet context ${snippet.context}`);
    // The prelude is one line, so diagnostics keep the README's line numbers (minus one).
    writeFileSync(file, `${prelude.replace(/\s*\n\s*/g, ' ').trim()} export {};\n${snippet.code}\n`);
    return file;
  });
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const program = ts.createProgram({
    rootNames: [...files, join(ROOT, 'src/scripts/lua.d.ts')],
    options: { ...parsed.options, noEmit: true, noUnusedLocals: false },
  });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file && files.includes(resolve(diagnostic.file.fileName)))
    .map((diagnostic) => {
      const file = diagnostic.file as ts.SourceFile;
      const { line } = file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
      const readmeLine = Number(/readme-line-(\d+)/.exec(file.fileName)?.[1]) + line;
      return `README.md:${readmeLine}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
}

describe('README code blocks', () => {
  const snippets = readmeSnippets().filter((snippet) => snippet.context !== 'skip');

  it('has TypeScript snippets to check', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(8);
  });

  it('type-check against the package source, each in the context it names', () => {
    expect(check(snippets)).toEqual([]);
  }, 120_000);
});

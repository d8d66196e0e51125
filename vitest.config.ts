import { readFile } from 'node:fs/promises';
import { defineConfig, type Plugin } from 'vitest/config';

/** `import source from './x.lua'` yields the file's text, as tsup's text loader does in the build. */
const luaAsText: Plugin = {
  name: 'redscale-lua-as-text',
  async load(id) {
    if (!id.endsWith('.lua')) return null;
    return `export default ${JSON.stringify(await readFile(id, 'utf8'))};`;
  },
};

export default defineConfig({
  plugins: [luaAsText],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests share one Redis and one Cluster through random key prefixes; files run in parallel.
    pool: 'forks',
    fileParallelism: true,
  },
});

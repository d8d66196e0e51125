import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('./package.json', 'utf8')) as { version: string };

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    nestjs: 'src/adapters/nestjs/index.ts',
    express: 'src/adapters/express/index.ts',
    fastify: 'src/adapters/fastify/index.ts',
    otel: 'src/otel/index.ts',
  },
  format: ['esm', 'cjs'],
  target: 'node20',
  platform: 'node',
  dts: true,
  // One copy of the core shared by every entry point, in both formats, so `instanceof` works
  // across `redscale` and its adapter subpaths.
  splitting: true,
  sourcemap: true,
  clean: true,
  treeshake: true,
  // Lua scripts are inlined as text: no file to find at run time, so bundling an app that uses
  // redscale keeps working.
  loader: { '.lua': 'text' },
  define: { __REDSCALE_VERSION__: JSON.stringify(version) },
});

/**
 * Runs after tsup (`npm run build`). tsup emits the declarations twice, `dist/*.d.ts` for `import`
 * and `dist/*.d.cts` for `require`, each with its own copy of every type. The Fastify adapter
 * augments `FastifyInstance` with `redscale: RedscaleDecoration`; a program that loads both files
 * (an `.mts` and a `.cts` importing `redscale/fastify`) then sees two different
 * `RedscaleDecoration`s for one property and fails with TS2717. So the `.d.cts` augmentation is
 * pointed at the ESM declaration's type (an import type with `resolution-mode`, TypeScript 5.3+):
 * both declarations then name the very same type.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const file = join(resolve(import.meta.dirname, '../..'), 'dist/fastify.d.cts');
const source = readFileSync(file, 'utf8');
const augmentation = /(declare module 'fastify' \{\s*interface FastifyInstance \{\s*redscale: )RedscaleDecoration;/;
if (!augmentation.test(source)) {
  console.error(`patch-dts: the FastifyInstance augmentation was not found in ${file}; update this script.`);
  process.exit(1);
}
writeFileSync(
  file,
  source.replace(
    augmentation,
    `$1import('./fastify.js', { with: { 'resolution-mode': 'import' } }).RedscaleDecoration;`,
  ),
);

// The route config's `httpCache` names `Cache` (a class with private fields, so nominal): it too
// must be the ESM declaration's type in the `.d.cts`.
const patched = readFileSync(file, 'utf8');
const routeCache = /(interface FastifyContextConfig \{[^}]*?httpCache\?: )RouteHttpCache;/;
if (!routeCache.test(patched)) {
  console.error(
    `patch-dts: the FastifyContextConfig httpCache augmentation was not found in ${file}; update this script.`,
  );
  process.exit(1);
}
writeFileSync(
  file,
  patched.replace(routeCache, `$1import('./fastify.js', { with: { 'resolution-mode': 'import' } }).RouteHttpCache;`),
);

// Node loader hook: `import source from './x.lua'` yields the file's text, as tsup and Vitest do.
// Used with tsx for examples, benchmarks and the child processes of multi-process tests:
//   tsx --import ./test/harness/lua-loader.mjs examples/health.ts
import { register } from 'node:module';

const hooks = `
import { readFile } from 'node:fs/promises';
export async function load(url, context, nextLoad) {
  if (url.endsWith('.lua')) {
    const source = await readFile(new URL(url), 'utf8');
    return { format: 'module', source: 'export default ' + JSON.stringify(source) + ';', shortCircuit: true };
  }
  return nextLoad(url, context);
}
`;

register(`data:text/javascript,${encodeURIComponent(hooks)}`);

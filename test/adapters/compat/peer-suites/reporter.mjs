// A node:test reporter that prints one line per test (not per suite): PASS|FAIL, file, name.
// Names repeated in a file (two describes with a test of the same name) get a #n suffix, so two
// runs of a suite can be compared test by test.
import { relative } from 'node:path';

export default async function* reporter(source) {
  const seen = new Map();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data;
    if (data.details?.type === 'suite' || data.file === undefined) continue;
    const file = relative(process.cwd(), data.file);
    const base = `${file}\t${data.name}`;
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    const name = count === 1 ? data.name : `${data.name} #${count}`;
    const status = event.type === 'test:pass' ? (data.skip || data.todo ? 'SKIP' : 'PASS') : 'FAIL';
    const why =
      status === 'FAIL'
        ? `\t${String(data.details?.error?.cause?.message ?? data.details?.error?.message ?? '')
            .split('\n')[0]
            .slice(0, 160)}`
        : '';
    yield `${status}\t${file}\t${name}${why}\n`;
  }
}

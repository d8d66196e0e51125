/**
 * Checks the package as users get it, not as it sits in the repository:
 *   1. `npm pack` the built package,
 *   2. publint and @arethetypeswrong/cli on that tarball,
 *   3. install the tarball (with its peers) into a throwaway folder and both `import` and `require`
 *      every entry point, then run a real health check through each — which also proves the Lua
 *      scripts were bundled into the build,
 *   4. type-check a consumer that imports every entry point from both an `.mts` and a `.cts` file
 *      (with `skipLibCheck: false`), so the ESM and CJS declarations agree with each other.
 *
 * Run after `npm run build`: `npm run check:package`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findOrStartRedis } from '../harness/find-redis.js';

const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, unknown>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const subpaths = Object.keys(pkg.exports).filter((path) => path !== './package.json');

function sh(command: string, args: string[], cwd = root): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

if (!existsSync(join(root, 'dist/index.js'))) {
  console.error('dist/ is missing: run `npm run build` first.');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'redscale-pack-'));
const redis = await findOrStartRedis();
try {
  const [packed] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work])) as Array<{ filename: string }>;
  const tarball = join(work, packed?.filename ?? '');
  console.log(`packed ${tarball}`);

  // The README is the npm page: a relative link breaks there, and a jsDelivr link to this version
  // must name a file the tarball ships.
  const shipped = new Set(
    sh('tar', ['-tzf', tarball])
      .split('\n')
      .map((line) => line.replace(/^package\//, '')),
  );
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const cdn = `https://cdn.jsdelivr.net/npm/redscale@${pkg.version}/`;
  for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (!target || target.startsWith('#')) continue;
    if (!/^https?:\/\//.test(target)) throw new Error(`README links to ${target}, which breaks on the npm page`);
    if (target.startsWith('https://cdn.jsdelivr.net/npm/redscale@')) {
      if (!target.startsWith(cdn)) throw new Error(`README links to ${target}, not to version ${pkg.version}`);
      if (!shipped.has(target.slice(cdn.length)))
        throw new Error(`README links to ${target}, which the package does not ship`);
    }
  }
  console.log('README links: absolute, and every file they name is in the package');

  console.log('publint:');
  console.log(sh('npx', ['publint', 'run', tarball, '--strict']));
  console.log('are the types wrong:');
  console.log(sh('npx', ['attw', tarball, '--format', 'table-flipped']));

  const app = join(work, 'app');
  sh('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'smoke', private: true }));
  // Every peer (ioredis and each adapter's framework) at the version this repository tests with,
  // what Nest itself requires beside @nestjs/common, and the types a TypeScript user of each has.
  const peers = [
    ...Object.keys(pkg.peerDependencies),
    ...['reflect-metadata', 'rxjs', '@nestjs/core', '@types/node', '@types/express'],
  ].map((name) => `${name}@${pkg.devDependencies[name] ?? pkg.peerDependencies[name]}`);
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--legacy-peer-deps', tarball, ...peers], app);

  for (const subpath of subpaths) {
    const specifier = join('redscale', subpath);
    const body = (load: string) => `
      const lib = ${load};
      if (lib.VERSION !== undefined && lib.VERSION !== ${JSON.stringify(pkg.version)}) throw new Error('VERSION is ' + lib.VERSION);
      if (lib.RedisHealth) {
        const redis = lib.createClient(process.env.SMOKE_REDIS_URL);
        const report = await new lib.RedisHealth({ redis, prefix: 'redscale-smoke' }).check();
        redis.disconnect();
        if (report.status === 'down' || report.nodes[0].writable !== true) throw new Error(JSON.stringify(report));
      }
      console.log('  ' + Object.keys(lib).length + ' exports');
    `;
    const env = { ...process.env, SMOKE_REDIS_URL: redis.url };
    process.stdout.write(`import ${specifier}:`);
    execFileSync('node', ['--input-type=module', '-e', body(`await import(${JSON.stringify(specifier)})`)], {
      cwd: app,
      env,
      stdio: 'inherit',
    });
    process.stdout.write(`require ${specifier}:`);
    execFileSync(
      'node',
      [
        '-e',
        `(async () => { ${body(`require(${JSON.stringify(specifier)})`)} })().catch((e) => { console.error(e); process.exit(1); })`,
      ],
      { cwd: app, env, stdio: 'inherit' },
    );
  }
  console.log('type-check a consumer importing every entry point from an .mts and a .cts file:');
  const imports = subpaths.map((subpath, i) => ({ specifier: join('redscale', subpath), name: `entry${i}` }));
  writeFileSync(
    join(app, 'esm.mts'),
    `${imports.map(({ specifier, name }) => `import * as ${name} from '${specifier}';`).join('\n')}
import Fastify from 'fastify';
const app = Fastify();
await app.register(entry${subpaths.indexOf('./fastify')}.redscale, { url: 'redis://127.0.0.1:6379' });
export const used = [app.redscale.cache, ${imports.map(({ name }) => name).join(', ')}];
`,
  );
  writeFileSync(
    join(app, 'cjs.cts'),
    `${imports.map(({ specifier, name }) => `import ${name} = require('${specifier}');`).join('\n')}
import Fastify = require('fastify');
const app = Fastify.default();
void app.register(entry${subpaths.indexOf('./fastify')}.redscale, { url: 'redis://127.0.0.1:6379' });
export const used = [app.redscale.lock, ${imports.map(({ name }) => name).join(', ')}];
`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        experimentalDecorators: true,
        types: ['node'],
      },
      files: ['esm.mts', 'cjs.cts'],
    }),
  );
  sh(join(root, 'node_modules/.bin/tsc'), ['-p', app], app);
  console.log('  no type errors');
  console.log('package checks passed');
} finally {
  await redis.stop();
  rmSync(work, { recursive: true, force: true });
}

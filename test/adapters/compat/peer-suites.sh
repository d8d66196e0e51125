#!/usr/bin/env bash
# Runs a peer's own test suite, as published in its npm tarball, once per store with only the
# store swapped, and compares them test by test: issue 14's acceptance check ("every test that
# passes with the peer's own storage must pass with redscale's"). Not part of `npm test`.
#
#   test/adapters/compat/peer-suites.sh                 # @fastify/rate-limit: local, redis, redscale
#   test/adapters/compat/peer-suites.sh redis redscale  # only these stores
#   PEER_SUITES_ALONE=1 test/adapters/compat/peer-suites.sh   # each test in a process of its own
#
# In one run per file, a test that fails with fake timers still enabled (the suite ends windows
# with `mock.timers`, which cannot end a Redis key's) leaves them on for the next tests, and with
# either Redis store one of them then hangs until the file's timeout: the rest of that file is not
# reported. PEER_SUITES_ALONE=1 runs every test alone (test names from a LocalStore run), so each
# is compared on its own; it takes about 3 times as long.
#
# Of the peers redscale replaces, only @fastify/rate-limit ships its tests in its npm tarball
# (@nestjs/throttler, @nest-lab/throttler-storage-redis, express-rate-limit and rate-limit-redis
# do not: `npm pack <pkg> && tar tf <tgz>`); the README's migration sections give their figures.
#
# What it does, in a temporary directory: packs redscale (`npm run build`, `npm pack`), fetches
# @fastify/rate-limit at the version the repository has installed with `npm pack`, installs its
# test dependencies, fastify and ioredis at the repository's versions and the packed redscale,
# starts a throwaway redis-server on a free port (the suite runs FLUSHALL: never point it at a
# Redis you care about), and patches two things only: the plugin's default store becomes
# `fastify-store.cjs`'s choice (PEER_STORE), and the suite's `new Redis({ host })` gets that
# server's port. Prints per store the tests passed, then every test that passes with the peer's
# store and fails with redscale's. Exits 1 if one passes with its RedisStore and is not listed in
# peer-suites/fastify-known.tsv (differences the README states, with why). Needs Node 20+, npm with registry
# access, and redis-server on PATH. About 2 minutes per store on a quiet machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
here="$root/test/adapters/compat/peer-suites"
stores=("$@")
[ ${#stores[@]} -gt 0 ] || stores=(local redis redscale)

installed() { node -p "require('$root/node_modules/$1/package.json').version"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/redscale-peer-suites-XXXXXX")"
redis_pid=""
cleanup() { [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true; }
trap cleanup EXIT
echo "=== working in $work"

(cd "$root" && npm run build --silent >/dev/null && npm pack --silent --pack-destination "$work" >/dev/null)
version="$(installed @fastify/rate-limit)"
(cd "$work" && npm pack --silent "@fastify/rate-limit@$version" >/dev/null && mkdir suite \
  && tar xzf fastify-rate-limit-*.tgz -C suite --strip-components=1)
suite="$work/suite"

# The suite's runtime dependencies and the one test helper it needs, fastify and ioredis at the
# repository's versions, and the packed redscale. Its other devDependencies (linters, knex and a
# native sqlite3 for examples) are left out: the manifest is cut down to what the tests load.
# --legacy-peer-deps: redscale's optional peers (Nest, Express…) are not needed here.
(cd "$suite" && node -e "
  const fs = require('node:fs');
  const manifest = JSON.parse(fs.readFileSync('package.json', 'utf8'));
  const fakeTimers = manifest.devDependencies['@sinonjs/fake-timers'];
  fs.writeFileSync('package.json', JSON.stringify({ name: manifest.name, version: manifest.version,
    main: manifest.main, type: manifest.type, dependencies: manifest.dependencies,
    devDependencies: { '@sinonjs/fake-timers': fakeTimers } }, null, 2));
" && npm install --no-audit --no-fund --loglevel=error --legacy-peer-deps \
  "fastify@$(installed fastify)" "ioredis@$(installed ioredis5)" "$(ls "$work"/redscale-*.tgz)")

# The store switch: the plugin's `if (settings.redis) RedisStore else LocalStore` becomes one call.
cp "$here/fastify-store.cjs" "$here/reporter.mjs" "$suite/"
node - "$suite/index.js" <<'JS'
const fs = require('node:fs');
const file = process.argv[2];
const source = fs.readFileSync(file, 'utf8');
const from = /\} else \{\s*if \(settings\.redis\) \{[\s\S]*?new LocalStore\([^)]*\)\s*\}\s*\}/;
if (!from.test(source)) throw new Error('peer-suites: the store selection in index.js changed; update the patch');
fs.writeFileSync(file, source.replace(from, "} else {\n    pluginComponent.store = require('./fastify-store.cjs')(settings, globalParams, { LocalStore, RedisStore })\n  }"));
JS
sed -i 's/new Redis({ host: REDIS_HOST })/new Redis({ host: REDIS_HOST, port: Number(process.env.PEER_REDIS_PORT) })/' \
  "$suite"/test/*.test.js

port="$(node -e "const s = require('node:net').createServer().listen(0, () => { console.log(s.address().port); s.close() })")"
redis-server --port "$port" --save '' --appendonly no --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# One store's results, a line per test: sequentially per file, or each test alone.
run_store() {
  local store="$1" out="$2"
  if [ "${PEER_SUITES_ALONE:-0}" != 1 ]; then
    (cd "$suite" && PEER_STORE="$store" PEER_REDIS_PORT="$port" PEER_REDIS_URL="redis://127.0.0.1:$port" \
      node --test --test-force-exit --test-concurrency=1 --test-timeout=60000 --test-reporter=./reporter.mjs \
      $(find test -name '*.test.js' | sort) >"$out" 2>"$out.err" || true)
    return
  fi
  : >"$out"
  while IFS=$'\t' read -r file name; do
    # The name as a whole-name pattern: regex characters escaped.
    pattern="^$(printf '%s' "$name" | sed 's/[][\.*^$(){}?+|/]/\\&/g')\$"
    (cd "$suite" && PEER_STORE="$store" PEER_REDIS_PORT="$port" PEER_REDIS_URL="redis://127.0.0.1:$port" \
      node --test --test-force-exit --test-timeout=60000 --test-reporter=./reporter.mjs \
      --test-name-pattern="$pattern" "$file" 2>>"$out.err" | grep -v '^SKIP' >>"$out" || true)
  done <"$work/names.txt"
}

if [ "${PEER_SUITES_ALONE:-0}" = 1 ]; then
  PEER_SUITES_ALONE=0 run_store local "$work/listing.txt"
  cut -f2,3 "$work/listing.txt" | sed 's/ #[0-9]*$//' | awk '!seen[$0]++' >"$work/names.txt"
fi

for store in "${stores[@]}"; do
  echo "=== @fastify/rate-limit $version, store: $store"
  run_store "$store" "$work/$store.txt"
  # Node 20's runner takes files, not globs: a run that found nothing is a broken run, not a pass.
  [ -s "$work/$store.txt" ] || { echo "no test ran with $store: see $work/$store.txt.err"; exit 2; }
  echo "    $(grep -c '^PASS' "$work/$store.txt" || true) passed, $(grep -c '^FAIL' "$work/$store.txt" || true) failed" \
    "of $(grep -c . "$work/$store.txt" || true) ($work/$store.txt)"
done

status=0
if [ -f "$work/redscale.txt" ]; then
  for peer in local redis; do
    [ -f "$work/$peer.txt" ] || continue
    echo "=== pass with $peer, fail with redscale:"
    missing="$(comm -23 <(grep '^PASS' "$work/$peer.txt" | cut -f2,3 | sort) \
      <(grep '^PASS' "$work/redscale.txt" | cut -f2,3 | sort))"
    if [ -n "$missing" ]; then
      while IFS= read -r test; do
        # Differences the README states, with why, are listed but do not fail the run.
        known="$(grep -F "$test"$'\t' "$here/fastify-known.tsv" | cut -f3 || true)"
        if [ -n "$known" ]; then echo "    $test  (known: $known)"; else
          echo "    $test"
          [ "$peer" != redis ] || status=1
        fi
      done <<<"$missing"
    else echo '    none'; fi
  done
fi
exit $status

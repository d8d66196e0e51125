#!/usr/bin/env bash
# Runs redscale/nestjs's tests (the adapter, its Jest-style CommonJS load, and the conformance
# suite against @nestjs/throttler's and @nest-lab's storages) on each supported Nest major, each
# in a fresh install in a temporary directory: the repository's own node_modules stay on Nest 11.
#
#   test/adapters/compat/nest-matrix.sh            # Nest 10, 11 and 12
#   test/adapters/compat/nest-matrix.sh 12         # one major
#
# Needs Node 20+, npm with registry access, and redis-server/redis-cli on PATH (or REDIS_URL), as
# the main suite does. Tools (vitest, supertest, tsup, ioredis…) are pinned to the versions the
# repository has installed, so only Nest changes between runs. Takes about a minute per major
# with a warm npm cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(10 11 12)

installed() { node -p "require('$root/node_modules/$1/package.json').version"; }

# Terminus 11 supports Nest 10 and 11; Terminus 12 supports Nest 11 and 12.
terminus_for() { if [ "$1" -ge 12 ]; then echo 12; else echo 11; fi; }

status=0
for major in "${majors[@]}"; do
  work="$(mktemp -d "${TMPDIR:-/tmp}/redscale-nest${major}-XXXXXX")"
  echo "=== Nest ${major} in ${work}"
  cp -R "$root/src" "$root/test" "$root/vitest.config.ts" "$root/tsconfig.json" "$work/"
  cat >"$work/package.json" <<EOF
{ "name": "redscale-nest${major}-matrix", "private": true, "type": "module" }
EOF
  packages=(
    "@nestjs/common@^${major}" "@nestjs/core@^${major}" "@nestjs/testing@^${major}"
    "@nestjs/platform-express@^${major}" "@nestjs/platform-fastify@^${major}"
    "@nestjs/terminus@^$(terminus_for "$major")" "@nestjs/throttler@^$(installed @nestjs/throttler)"
    "@nest-lab/throttler-storage-redis@$(installed @nest-lab/throttler-storage-redis)"
    "reflect-metadata@$(installed reflect-metadata)" "rxjs@$(installed rxjs)"
    "ioredis@$(installed ioredis)"
    "vitest@$(installed vitest)" "supertest@$(installed supertest)" "tsup@$(installed tsup)"
    "typescript@$(installed typescript)"
  )
  # The package's own dependencies, at the versions the repository has installed.
  while IFS= read -r dependency; do packages+=("${dependency}@$(installed "$dependency")"); done \
    < <(node -p "Object.keys(require('$root/package.json').dependencies).join('\n')")
  # @nest-lab/throttler-storage-redis declares Nest up to 11; it is only the conformance peer here.
  (cd "$work" && npm install --no-audit --no-fund --legacy-peer-deps --loglevel=error "${packages[@]}")
  echo "--- installed: @nestjs/common $(cd "$work" && node -p "require('@nestjs/common/package.json').version")," \
    "@nestjs/terminus $(cd "$work" && node -p "require('@nestjs/terminus/package.json').version")"
  if ! (cd "$work" && npx vitest run test/adapters/nestjs.test.ts test/adapters/nestjs-cjs.test.ts \
    test/conformance/nestjs.test.ts); then
    status=1
    echo "=== Nest ${major}: FAILED (kept ${work})"
  else
    rm -rf "$work"
    echo "=== Nest ${major}: passed"
  fi
done
exit $status

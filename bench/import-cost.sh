#!/usr/bin/env bash
# What importing redscale costs at start-up, in CPU milliseconds (user + system, the minimum of N
# runs, which load moves less than wall time), beside ioredis alone and zod's share.
# Needs the build: `npm run build && bash bench/import-cost.sh [runs]`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-12}
[ -f dist/index.js ] || { echo "dist/ is missing: run \`npm run build\` first." >&2; exit 1; }

measure() {
  local best=999999 v
  for _ in $(seq 1 "$runs"); do
    v=$(node --input-type=module -e "$2; const u = process.cpuUsage(); console.log(Math.round((u.user + u.system) / 1000))")
    ((v < best)) && best=$v
  done
  printf '%-28s %5s ms CPU\n' "$1" "$best"
}

echo "import cost, min of $runs runs (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
measure 'node, nothing imported' '1'
measure 'ioredis' "await import('ioredis')"
measure 'ioredis + zod' "await import('ioredis'); await import('zod')"
measure 'ioredis + zod/mini' "await import('ioredis'); await import('zod/mini')"
measure 'redscale (ESM)' "await import('redscale')"
measure 'redscale (CJS)' "(await import('node:module')).createRequire(import.meta.url)('redscale')"

import type { Row } from './report.js';
import type { ContenderKind } from './types.js';

const COLORS: Record<ContenderKind, string> = {
  ceiling: '#9aa0a6',
  redscale: '#d1382c',
  peer: '#3b6ea8',
  'hand-written': '#e39b2d',
  baseline: '#8e5bb5',
};

const WIDTH = 960;
const LABEL = 330;
const GAP = 24;
const BAR = (WIDTH - LABEL - GAP * 3) / 2;
const ROW = 18;

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const latency = (us: number) => (us >= 1_000 ? `${(us / 1_000).toFixed(1)} ms` : `${us} µs`);
const compact = (value: number) =>
  value >= 1_000_000
    ? `${(value / 1_000_000).toFixed(2)}M`
    : value >= 1_000
      ? `${(value / 1_000).toFixed(1)}k`
      : String(value);

/**
 * Draws every throughput scenario as horizontal bars: ops/s on the left (longer is better) and
 * p99 latency on the right (shorter is better), one row per contender, coloured by kind. Bars
 * are scaled within each scenario, since scenarios measure different things.
 */
export function drawChart(rows: Row[], title: string): string {
  const scenarios = [...new Set(rows.map((row) => row.scenario))];
  const parts: string[] = [];
  let y = 56;
  for (const scenario of scenarios) {
    const group = rows.filter((row) => row.scenario === scenario);
    const maxOps = Math.max(...group.map((row) => row.opsPerSec), 1);
    const maxP99 = Math.max(...group.map((row) => row.p99), 1);
    parts.push(`<text x="8" y="${y + 12}" class="scenario">${escapeXml(scenario)}</text>`);
    y += 20;
    for (const row of group) {
      const color = COLORS[row.kind];
      const opsWidth = Math.max(1, (row.opsPerSec / maxOps) * (BAR - 60));
      const p99Width = Math.max(1, (row.p99 / maxP99) * (BAR - 70));
      const p99X = LABEL + GAP * 2 + BAR;
      parts.push(
        `<text x="${LABEL - 8}" y="${y + 13}" class="label" text-anchor="end">${escapeXml(row.contender)}</text>`,
        `<rect x="${LABEL}" y="${y + 2}" width="${opsWidth.toFixed(1)}" height="${ROW - 4}" fill="${color}" rx="2"/>`,
        `<text x="${(LABEL + opsWidth + 4).toFixed(1)}" y="${y + 13}" class="value">${compact(row.opsPerSec)}</text>`,
        `<rect x="${p99X}" y="${y + 2}" width="${p99Width.toFixed(1)}" height="${ROW - 4}" fill="${color}" opacity="0.55" rx="2"/>`,
        `<text x="${(p99X + p99Width + 4).toFixed(1)}" y="${y + 13}" class="value">${latency(row.p99)}</text>`,
      );
      y += ROW;
    }
    y += 14;
  }
  const legend = (Object.keys(COLORS) as ContenderKind[])
    .map(
      (kind, i) =>
        `<rect x="${8 + i * 110}" y="${y + 4}" width="12" height="12" fill="${COLORS[kind]}"/><text x="${24 + i * 110}" y="${y + 14}" class="label">${kind}</text>`,
    )
    .join('');
  const height = y + 28;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    '<style>.title{font-size:16px;font-weight:600}.head{font-size:12px;fill:#555}.scenario{font-size:13px;font-weight:600}.label{font-size:11px;fill:#222}.value{font-size:10px;fill:#444}</style>',
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="22" class="title">${escapeXml(title)}</text>`,
    `<text x="${LABEL}" y="44" class="head">throughput, ops/s (longer is better)</text>`,
    `<text x="${LABEL + GAP * 2 + BAR}" y="44" class="head">p99 latency (shorter is better)</text>`,
    ...parts,
    legend,
    '</svg>',
  ].join('\n');
}

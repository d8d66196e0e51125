import type { Measurement } from './measure.js';
import type { ContenderKind, Trial, TrialScenario } from './types.js';

/** One contender's result in one scenario: the median round, and its commands per operation. */
export interface Row extends Measurement {
  scenario: string;
  contender: string;
  kind: ContenderKind;
  commandsPerOp: number;
  rounds: number;
  /** Throughput relative to the scenario's ceiling contender. */
  vsCeiling: number | null;
  /** For redscale rows: throughput relative to the fastest peer in the scenario. */
  vsBestPeer: number | null;
}

/** Fills in the ratios of every row against its scenario's ceiling and best peer. */
export function withRatios(rows: Row[]): Row[] {
  return rows.map((row) => {
    const same = rows.filter((other) => other.scenario === row.scenario);
    const ceiling = same.find((other) => other.kind === 'ceiling');
    const peers = same.filter((other) => other.kind === 'peer' || other.kind === 'hand-written');
    const bestPeer = peers.length ? Math.max(...peers.map((peer) => peer.opsPerSec)) : undefined;
    return {
      ...row,
      vsCeiling: ceiling && row.kind !== 'ceiling' ? ratio(row.opsPerSec, ceiling.opsPerSec) : null,
      vsBestPeer: bestPeer && row.kind === 'redscale' ? ratio(row.opsPerSec, bestPeer) : null,
    };
  });
}

function ratio(a: number, b: number): number {
  return b > 0 ? Math.round((a / b) * 100) / 100 : 0;
}

/** A markdown table per scenario. */
export function toMarkdown(rows: Row[], descriptions: Record<string, string>, header: string): string {
  const out = [header, ''];
  for (const scenario of [...new Set(rows.map((row) => row.scenario))]) {
    out.push(`### ${scenario}`, '', descriptions[scenario] ?? '', '');
    out.push(
      '| contender | kind | ops/s | p50 µs | p99 µs | cmds/op | client CPU µs/op | Redis CPU µs/op | Redis cmd µs/op | × ceiling | × best peer | errors |',
    );
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const row of rows.filter((candidate) => candidate.scenario === scenario)) {
      out.push(
        `| ${row.contender} | ${row.kind} | ${row.opsPerSec.toLocaleString('en-US')} | ${row.p50} | ${row.p99} | ${row.commandsPerOp} | ${row.clientCpuUs} | ${row.redisCpuUs} | ${row.redisCommandUs} | ${row.vsCeiling ?? '—'} | ${row.vsBestPeer ?? '—'} | ${row.errors} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** A markdown table per trial scenario: one row per contender (and setting), one column per metric. */
export function trialsToMarkdown(
  trials: Array<Trial & { scenario: string }>,
  scenarios: readonly TrialScenario[],
): string {
  const out: string[] = [];
  for (const scenario of scenarios) {
    const own = trials.filter((trial) => trial.scenario === scenario.name);
    if (!own.length) continue;
    const hasSetting = own.some((trial) => trial.setting);
    out.push(`### ${scenario.name}`, '', scenario.description, '');
    const titles = scenario.columns.map(
      (column) => `${column.title}${column.ideal !== undefined ? ` (ideal ${column.ideal})` : ''}`,
    );
    out.push(`| ${hasSetting ? 'setting | ' : ''}contender | kind | ${titles.join(' | ')} |`);
    out.push(`|${hasSetting ? '---|' : ''}---|---|${scenario.columns.map(() => '---:').join('|')}|`);
    for (const trial of own) {
      const cells = scenario.columns.map((column) => (trial.metrics[column.key] ?? 0).toLocaleString('en-US'));
      out.push(
        `| ${hasSetting ? `${trial.setting ?? ''} | ` : ''}${trial.contender} | ${trial.kind} | ${cells.join(' | ')} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

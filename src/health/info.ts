/** Parses `INFO` or `CLUSTER INFO` text (`key:value` lines, `# Section` headers) into a flat map. */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** A numeric INFO field, or `undefined` when absent or not a number. */
export function infoNumber(fields: Record<string, string>, name: string): number | undefined {
  const raw = fields[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  return Number.isFinite(value) ? value : undefined;
}

/** One line of `CLUSTER NODES`. */
export interface ClusterNodeLine {
  /** The node's 40-character id. */
  id: string;
  /** `host:port`, without the bus port or hostname. */
  address: string;
  /** Flags as listed, e.g. `myself`, `master`, `fail?`. */
  flags: string[];
  /** Whether the node is a master or a replica. */
  role: 'master' | 'replica';
  /** The master's id for a replica, otherwise undefined. */
  masterId: string | undefined;
  /** The state of the node's Cluster bus link. */
  linkState: 'connected' | 'disconnected';
  /** Number of slots this node serves (masters only). */
  slotCount: number;
}

/** Parses `CLUSTER NODES` output. */
export function parseClusterNodes(text: string): ClusterNodeLine[] {
  const nodes: ClusterNodeLine[] = [];
  for (const line of text.split(/\r?\n/)) {
    const parts = line.trim().split(' ');
    if (parts.length < 8) continue;
    const [id = '', rawAddress = '', rawFlags = '', master = '-', , , , link = ''] = parts;
    const flags = rawFlags.split(',');
    let slotCount = 0;
    for (const range of parts.slice(8)) {
      if (range.startsWith('[')) continue; // a slot being migrated or imported
      const [from, to] = range.split('-').map(Number);
      if (from === undefined || Number.isNaN(from)) continue;
      slotCount += (to === undefined || Number.isNaN(to) ? from : to) - from + 1;
    }
    nodes.push({
      id,
      address: rawAddress.split('@')[0] ?? rawAddress,
      flags,
      role: flags.includes('slave') ? 'replica' : 'master',
      masterId: master === '-' ? undefined : master,
      linkState: link === 'connected' ? 'connected' : 'disconnected',
      slotCount,
    });
  }
  return nodes;
}

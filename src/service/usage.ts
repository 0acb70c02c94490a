/**
 * Usage by runner and project: what the size-bounded stores hold (bytes, objects, oldest and newest
 * use) and the lookups the service answered (hits, misses). For `GET /v1/admin/usage` and
 * `cachegate usage` (docs/retention.md).
 */
import { posix } from 'node:path';
import type { RetainedStoreStats, RetainedView } from '../adapter.ts';
import type { CacheProfile } from '../config/types.ts';

/**
 * The namespace of an object name: everything up to `project/<id>` (SPEC §2.3:
 * `[Path/][runner/<short token>/]project/<id>/<key>`), split into its root and the project id.
 */
export function namespaceOf(objectName: string): { root: string; project: string } | undefined {
  const parts = objectName.split('/');
  for (let i = 0; i + 2 < parts.length; i++) {
    if (parts[i] === 'project' && /^[0-9]+$/.test(parts[i + 1])) return { root: parts.slice(0, i).join('/'), project: parts[i + 1] };
  }
  return undefined;
}

/** At most this many (namespace, project) counters: a client cannot grow the map without bound. */
const MAX_COUNTED = 10_000;
const OTHER = '\u0000other';

/** Hits and misses of lookups through the service, by namespace root and project, since start. */
export class LookupCounts {
  private readonly counts = new Map<string, { hits: number; misses: number }>();

  /** A GET served (from its first byte) is a hit; a GET or HEAD that found nothing is a miss. */
  record(objectName: string, hit: boolean): void {
    const ns = namespaceOf(objectName);
    let key = ns ? `${ns.root}\u0000${ns.project}` : OTHER;
    let c = this.counts.get(key);
    if (!c) {
      if (this.counts.size >= MAX_COUNTED) key = OTHER;
      c = this.counts.get(key) ?? { hits: 0, misses: 0 };
      this.counts.set(key, c);
    }
    if (hit) c.hits++;
    else c.misses++;
  }

  entries(): Array<{ root: string; project: string; hits: number; misses: number }> {
    return [...this.counts].map(([k, c]) => {
      const [root, project] = k === OTHER ? ['', 'other'] : k.split('\u0000');
      return { root, project, ...c };
    });
  }
}

export interface UsageRow {
  /** Runner names whose namespace this is (several when Shared), or '?' for a namespace no profile has. */
  runner: string;
  project: string;
  /** 'local', 'disk_cache', or null for lookups of a namespace no store holds anything of. */
  store: string | null;
  bytes: number;
  objects: number;
  oldestUse: string | null;
  newestUse: string | null;
  /** null when unknown (`cachegate usage` without a running service). */
  hits: number | null;
  misses: number | null;
}

export interface UsageReport {
  generatedAt: string;
  stores: RetainedStoreStats[];
  namespaces: UsageRow[];
}

export async function usageReport(stores: RetainedView[], profiles: CacheProfile[], lookups: LookupCounts | undefined, now = new Date()): Promise<UsageReport> {
  const runners = new Map<string, string[]>();
  for (const p of profiles) {
    const root = posix.join(p.cache.path, p.cache.shared ? '' : `runner/${p.shortToken}`).replace(/^\.$/, '').replace(/\/+$/, '');
    runners.set(root, [...(runners.get(root) ?? []), p.name]);
  }
  const runnerOf = (root: string): string => runners.get(root)?.join(',') ?? '?';
  const rows = new Map<string, UsageRow>();
  /** The first row of each namespace (root, project): where its hits and misses go. */
  const firstRow = new Map<string, UsageRow>();
  const row = (store: string | null, root: string, project: string): UsageRow => {
    const key = `${store}\u0000${root}\u0000${project}`;
    let r = rows.get(key);
    if (!r) {
      r = { runner: runnerOf(root), project, store, bytes: 0, objects: 0, oldestUse: null, newestUse: null, hits: lookups ? 0 : null, misses: lookups ? 0 : null };
      rows.set(key, r);
      if (!firstRow.has(`${root}\u0000${project}`)) firstRow.set(`${root}\u0000${project}`, r);
    }
    return r;
  };
  for (const s of stores) {
    const label = s.stats().store;
    const oldest = new Map<UsageRow, number>();
    const newest = new Map<UsageRow, number>();
    for (const e of await s.entries()) {
      const ns = e.name !== undefined ? namespaceOf(e.name) : undefined;
      const r = row(label, ns?.root ?? '?', ns?.project ?? '?');
      r.bytes += e.size;
      r.objects++;
      oldest.set(r, Math.min(oldest.get(r) ?? Infinity, e.lastUse));
      newest.set(r, Math.max(newest.get(r) ?? -Infinity, e.lastUse));
    }
    for (const [r, t] of oldest) r.oldestUse = new Date(t).toISOString();
    for (const [r, t] of newest) r.newestUse = new Date(t).toISOString();
  }
  for (const c of lookups?.entries() ?? []) {
    // Counts go to the namespace's row in the first store holding it, else to a row of their own.
    const r = firstRow.get(`${c.root}\u0000${c.project}`) ?? row(null, c.root, c.project);
    r.hits = (r.hits ?? 0) + c.hits;
    r.misses = (r.misses ?? 0) + c.misses;
  }
  const namespaces = [...rows.values()].sort((a, b) => b.bytes - a.bytes || a.runner.localeCompare(b.runner) || a.project.localeCompare(b.project));
  return { generatedAt: now.toISOString(), stores: stores.map((s) => s.stats()), namespaces };
}

/** The report as a table a person reads (`cachegate usage`). */
export function formatUsage(report: UsageReport): string {
  const lines: string[] = [];
  for (const s of report.stores) {
    lines.push(`${s.store} store ${s.dir}: ${s.storedBytes} bytes in ${s.objects} objects (max_size ${s.maxSize}); evicted: ${s.evictions.size} for size, ${s.evictions.age} for age`);
  }
  if (report.stores.length === 0) lines.push('no size-bounded store (neither the local backend nor [cachegate.disk_cache] is in use)');
  const head = ['RUNNER', 'PROJECT', 'STORE', 'BYTES', 'OBJECTS', 'OLDEST USE', 'NEWEST USE', 'HITS', 'MISSES'];
  const table = report.namespaces.map((r) => [
    r.runner, r.project, r.store ?? '-', String(r.bytes), String(r.objects), r.oldestUse ?? '-', r.newestUse ?? '-',
    r.hits === null ? '-' : String(r.hits), r.misses === null ? '-' : String(r.misses),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  for (const t of [head, ...table]) lines.push(t.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  return lines.join('\n') + '\n';
}

/**
 * [cachegate.retention], [cachegate.disk_cache] and the admin token: their settings and the
 * findings `cachegate check` prints about them (docs/retention.md).
 */
import { statfsSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { RawCachegate } from './schema.ts';
import { secretSetting } from './secret-setting.ts';
import type { CacheProfile, Finding, ServiceSettings } from './types.ts';

type Env = Record<string, string | undefined>;

export function storageBounds(
  cg: RawCachegate | undefined, env: Env, dataDir: string, profiles: CacheProfile[], source: string, findings: Finding[],
): Pick<ServiceSettings, 'retention' | 'diskCache' | 'adminToken'> {
  const out: Pick<ServiceSettings, 'retention' | 'diskCache' | 'adminToken'> = {};
  const r = cg?.retention;
  if (r) {
    out.retention = { maxSize: r.max_size, maxAge: r.max_age ?? 0 };
    if (!profiles.some((p) => p.cache.type === 'local')) {
      findings.push({ level: 'warning', field: 'cachegate.retention', message: 'no profile uses the embedded local backend: retention has no effect (cloud buckets: see `cachegate lifecycle`)' });
    }
    checkSize(r.max_size, dataDir, 'cachegate.retention.max_size', findings);
    for (const p of profiles) {
      if (p.cache.type === 'local' && p.cache.maxUploadedArchiveSize > r.max_size) {
        findings.push({ level: 'warning', field: 'cachegate.retention.max_size', message: `smaller than runner "${p.name}"'s MaxUploadedArchiveSize (${p.cache.maxUploadedArchiveSize}): larger uploads are refused (413)` });
      }
    }
  }
  const d = cg?.disk_cache;
  if (d) {
    const dir = resolve(d.dir);
    out.diskCache = { dir, maxSize: d.max_size };
    const problem = tierDirProblem(dir, dataDir, source);
    if (problem) findings.push({ level: 'error', field: 'cachegate.disk_cache.dir', message: problem });
    if (!profiles.some((p) => p.cache.type !== 'local')) {
      findings.push({ level: 'warning', field: 'cachegate.disk_cache', message: 'no profile uses a cloud backend: the disk tier has no effect' });
    }
    checkSize(d.max_size, dir, 'cachegate.disk_cache.max_size', findings);
  }
  const token = secretSetting({ field: 'cachegate', name: 'admin_token', literal: cg?.admin_token, envVar: cg?.admin_token_env, env, required: false, warnBelow: 16 }, findings);
  if (token !== '') out.adminToken = token;
  return out;
}

/**
 * The tier removes files under its directory: it must be a directory of its own, not the local
 * backend's data directory (nor inside it or around it), not the root, not where the configuration is.
 */
function tierDirProblem(dir: string, dataDir: string, source: string): string | undefined {
  if (dir === '/' || dirname(dir) === dir) return 'must not be the root directory: use a directory of its own, e.g. /var/cache/cachegate';
  if (inside(dir, dataDir) || inside(dataDir, dir)) return `must not be, contain or lie inside the data directory ${dataDir}: the two stores would count and remove each other's files`;
  if (isAbsolute(source) && inside(dirname(source), dir)) return `must not contain the configuration file ${source}`;
  return undefined;
}

/** a is b or below b */
function inside(a: string, b: string): boolean {
  const rel = relative(b, a);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function checkSize(maxSize: number, dir: string, field: string, findings: Finding[]): void {
  if (maxSize < 1024 * 1024) findings.push({ level: 'warning', field, message: `${maxSize} bytes is less than 1 MiB: hardly one cache archive fits` });
  const fs = filesystemOf(dir);
  if (fs && maxSize > fs.size) {
    findings.push({ level: 'warning', field, message: `${maxSize} bytes is more than the whole filesystem of ${dir} (${fs.size} bytes): the disk fills before the bound applies (uploads then get 507)` });
  }
}

/** Size of the filesystem holding dir (or its nearest existing parent). */
function filesystemOf(dir: string): { size: number } | undefined {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = statfsSync(d);
      return { size: s.blocks * s.bsize };
    } catch {
      if (dirname(d) === d) return undefined;
    }
  }
}

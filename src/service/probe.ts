/**
 * `cachegate check --probe`: a configuration can be valid and still not work (a wrong SecretKey
 * passes `check`, and presigning signs locally without asking anyone). The probe talks to each
 * backend as the service would, once per distinct [runners.cache] setting, and reports each step:
 *   ready (bucket/container reachable) → PUT a probe object → HEAD → GET (same bytes) →
 *   a presigned GET of it fetched over HTTP (the URLs jobs get are signed with the same credentials)
 *   → role credentials (S3 RoleARN: one AssumeRole).
 * The probe object is `<Path>/.cachegate/probe` (a few bytes); it is deleted at the end where the
 * adapter can delete (local, S3, Azure), and overwritten by the next probe where it cannot (GCS).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { posix } from 'node:path';
import type { CacheAdapter } from '../adapter.ts';
import { CacheGateError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { createAdapter } from './adapters.ts';
import type { CacheProfile, Config } from '../config/types.ts';

export interface ProbeStep {
  step: string;
  ok: boolean;
  /** What happened: the error's message (it names the setting to check) or a short result. */
  detail: string;
  ms: number;
}

export interface ProbeReport {
  /** The profiles sharing these settings. */
  profiles: string[];
  backend: string;
  steps: ProbeStep[];
}

export function probeObjectName(profile: CacheProfile): string {
  return posix.join(profile.cache.path || '', '.cachegate/probe');
}

async function step(steps: ProbeStep[], name: string, fn: () => Promise<string>): Promise<boolean> {
  const t0 = performance.now();
  try {
    const detail = await fn();
    steps.push({ step: name, ok: true, detail, ms: Math.round(performance.now() - t0) });
    return true;
  } catch (err) {
    const detail = err instanceof CacheGateError ? `${err.status} ${err.code}: ${err.message}` : `${(err as Error).name}: ${(err as Error).message}`;
    steps.push({ step: name, ok: false, detail, ms: Math.round(performance.now() - t0) });
    return false;
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function probeProfile(adapter: CacheAdapter, profile: CacheProfile): Promise<ProbeStep[]> {
  const steps: ProbeStep[] = [];
  const name = probeObjectName(profile);
  const data = Buffer.from(`cachegate probe ${randomBytes(8).toString('hex')}\n`);
  if (!(await step(steps, 'ready', async () => (await adapter.ready(), 'reachable')))) return steps;
  if (!(await step(steps, `PUT ${name}`, async () => {
    await adapter.put(name, { body: Readable.from([data]), contentLength: data.length, metadata: { cachekey: 'cachegate probe' }, maxSize: 0 });
    return `${data.length} bytes stored`;
  }))) return steps;
  await step(steps, `HEAD ${name}`, async () => {
    const info = await adapter.head(name);
    if (!info) throw new Error('the object just stored is not there');
    return `${info.size} bytes`;
  });
  await step(steps, `GET ${name}`, async () => {
    const got = await adapter.get(name);
    if (!got) throw new Error('the object just stored is not there');
    if (!(await readAll(got.body)).equals(data)) throw new Error('other bytes than the ones stored');
    return 'same bytes';
  });
  if (profile.cache.type !== 'local') {
    await step(steps, 'presigned GET', async () => {
      const url = await adapter.presign({ method: 'GET', objectName: name, expiresIn: 60, metadata: {} });
      const res = await fetch(url.url, { headers: url.headers, signal: AbortSignal.timeout(10_000) });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200) throw new Error(`the storage answered ${res.status} to a URL cachegate signed: check the credentials it signs with`);
      if (!body.equals(data)) throw new Error('other bytes than the ones stored');
      return '200, same bytes';
    });
  }
  if (adapter.scopedCredentials && profile.cache.s3 && (profile.cache.s3.roleArn !== '' || profile.cache.s3.uploadRoleArn !== '')) {
    await step(steps, 'AssumeRole', async () => ((await adapter.scopedCredentials?.(name, 'upload')) ? 'temporary credentials for one object' : 'not used'));
  }
  if (adapter.delete) {
    const del = adapter.delete.bind(adapter);
    await step(steps, `DELETE ${name}`, async () => ((await del(name)) ? 'deleted' : 'already gone'));
  } else {
    steps.push({ step: 'DELETE', ok: true, detail: `not available on ${adapter.kind}: the ${data.length}-byte probe object stays (every probe overwrites it)`, ms: 0 });
  }
  return steps;
}

/** Probes each distinct backend setting of `config` once; adapters are closed afterwards. */
export async function probeConfig(config: Config, log: Logger): Promise<ProbeReport[]> {
  const groups = new Map<string, CacheProfile[]>();
  for (const p of config.profiles) groups.set(JSON.stringify(p.cache), [...(groups.get(JSON.stringify(p.cache)) ?? []), p]);
  const reports: ProbeReport[] = [];
  for (const profiles of groups.values()) {
    const profile = profiles[0];
    const report: ProbeReport = { profiles: profiles.map((p) => p.name), backend: profile.cache.type, steps: [] };
    reports.push(report);
    let adapter: CacheAdapter;
    try {
      adapter = await createAdapter({
        profile,
        dataDir: config.service.dataDir,
        publicUrl: () => config.service.publicUrl || 'http://127.0.0.1',
        signingKey: randomBytes(32),
        log: log.child({ profile: profile.name }),
      });
    } catch (err) {
      report.steps.push({ step: 'create adapter', ok: false, detail: (err as Error).message, ms: 0 });
      continue;
    }
    try {
      report.steps = await probeProfile(adapter, profile);
    } finally {
      await adapter.close?.();
    }
  }
  return reports;
}

export function formatProbe(reports: ProbeReport[]): string[] {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`probe ${r.backend} (${r.profiles.join(', ')}):`);
    for (const s of r.steps) lines.push(`  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step}: ${s.detail}${s.ms > 0 ? ` (${s.ms} ms)` : ''}`);
  }
  return lines;
}

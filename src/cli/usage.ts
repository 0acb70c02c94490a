/**
 * `cachegate usage`: bytes, objects and last uses by runner and project in the size-bounded stores.
 * Reads the directories itself (nothing is removed or changed), or with --url asks a running service
 * (GET /v1/admin/usage), which adds the hits and misses it counted since it started.
 */
import type { RetainedView } from '../adapter.ts';
import { formatUsage, usageReport, type UsageReport } from '../service/usage.ts';
import { configOptions, parse } from './args.ts';
import { validConfig } from './valid-config.ts';

const HELP = `cachegate usage [--config FILE] [--data-dir DIR] [--json] [--url URL]
  Without --url: reads the local backend's data directory and [cachegate.disk_cache] (hits and misses: -).
  With --url http://HOST:PORT: asks the running service; the admin token comes from CACHEGATE_ADMIN_TOKEN
  or the configuration's admin_token / admin_token_env.
`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...configOptions, json: { type: 'boolean' }, url: { type: 'string' } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = validConfig(values);
  if (!config) return 1;
  let report: UsageReport;
  if (values.url !== undefined) {
    const token = process.env.CACHEGATE_ADMIN_TOKEN || config.service.adminToken || '';
    const res = await fetch(`${values.url.replace(/\/+$/, '')}/v1/admin/usage`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const body = (await res.json()) as UsageReport & { error?: { message: string } };
    if (!res.ok) {
      process.stderr.write(`cachegate usage: ${res.status} ${body.error?.message ?? ''}\n`);
      return 1;
    }
    report = body;
  } else {
    const { inspectStore } = await import('../../adapters/local/retention.ts');
    const stores: RetainedView[] = [];
    const svc = config.service;
    if (config.profiles.some((p) => p.cache.type === 'local')) stores.push(await inspectStore(svc.dataDir, 'local', svc.retention?.maxSize ?? 0));
    if (svc.diskCache) stores.push(await inspectStore(svc.diskCache.dir, 'disk_cache', svc.diskCache.maxSize));
    report = await usageReport(stores, config.profiles, undefined);
  }
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatUsage(report));
  return 0;
}

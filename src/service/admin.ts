/**
 * Admin endpoints: `GET /v1/admin/usage`. Authenticated by the admin token alone
 * ([cachegate] admin_token or admin_token_env): a runner or API token, which names one profile,
 * must not read every runner's usage. Without an admin token configured the endpoints answer 404.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { CacheGateError } from '../errors.ts';
import { BEARER, refuseLockedAddress } from './auth.ts';
import type { Metrics } from './metrics.ts';
import type { ServiceState } from './state.ts';
import { usageReport, type UsageReport } from './usage.ts';

/** Throws 404 when no admin token is configured, 401 for a missing or wrong one. Constant-time over the digests. */
export function authenticateAdmin(authorization: string | undefined, state: ServiceState, from?: string): void {
  const expected = state.config.service.adminToken;
  if (expected === undefined || expected === '') {
    throw new CacheGateError('not_found', 404, 'admin endpoints are off: set [cachegate] admin_token or admin_token_env');
  }
  const m = authorization ? BEARER.exec(authorization) : null;
  if (m) refuseLockedAddress(state, from);
  const given = m ? m[1] : '';
  if (!timingSafeEqual(Buffer.from(hash('sha256', given, 'hex')), Buffer.from(hash('sha256', expected, 'hex')))) {
    if (m) state.authFailures.failed(from);
    throw new CacheGateError('unauthorized', 401, m ? 'unknown admin token' : 'missing token: send Authorization: Bearer <admin token>', { headers: { 'WWW-Authenticate': 'Bearer' } });
  }
}

export async function adminUsage(authorization: string | undefined, state: ServiceState, metrics: Metrics, from?: string): Promise<UsageReport> {
  authenticateAdmin(authorization, state, from);
  const stores = state.retainedStores();
  const { config } = state;
  if (config.profiles.some((p) => p.cache.type === 'local') && !stores.some((s) => s.stats().store === 'local')) {
    // The local backend without [cachegate.retention] keeps no index: its directory is read for the report.
    const { inspectStore } = await import('../../adapters/local/retention.ts');
    stores.push(await inspectStore(config.service.dataDir, 'local', 0));
  }
  return usageReport(stores, config.profiles, metrics.lookups);
}

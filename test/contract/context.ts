/** Builds the AdapterContext an adapter factory gets, for tests and contract fixtures. */
import { randomBytes } from 'node:crypto';
import type { AdapterContext, AdapterLogger } from '../../src/adapter.ts';
import type { CacheSettings } from '../../src/config/types.ts';

export const silentLog: AdapterLogger = { info() {}, warn() {}, error() {}, debug() {} };

export function makeContext(cache: CacheSettings, opts: { dataDir?: string; publicUrl?: string; shortToken?: string } = {}): AdapterContext {
  const ctx = {
    profile: { name: 'test', token: '', shortToken: opts.shortToken ?? 'abcdefghi', cache },
    dataDir: opts.dataDir ?? '/nonexistent',
    publicUrl: () => opts.publicUrl ?? 'http://127.0.0.1:0',
    signingKey: randomBytes(32),
    log: silentLog,
  };
  return ctx;
}

/**
 * GET /readyz: is every backend reachable? Profiles that share their [runners.cache] settings are
 * checked once, each check is bounded in time, and a result is reused for a short while, so that
 * probes from several load balancers against hundreds of runners cost a handful of backend calls.
 */
import type { CacheAdapter } from '../adapter.ts';
import { CacheGateError } from '../errors.ts';
import { backendCall } from './objects.ts';
import type { ServiceState } from './state.ts';

export interface ReadyAnswer {
  ready: boolean;
  /** Profile name → 'ok' or the reason it is not reachable. */
  backends: Record<string, string>;
}

interface Checked {
  at: number;
  result: Promise<string>;
}

export class Readiness {
  readonly #ttlMs: number;
  readonly #checks = new WeakMap<CacheAdapter, Checked>();

  constructor(ttlMs = 2000) {
    this.#ttlMs = ttlMs;
  }

  async check(state: ServiceState, timeoutMs: number): Promise<ReadyAnswer> {
    const backends: Record<string, string> = {};
    let ready = true;
    await Promise.all(
      state.backendGroups.map(async ({ adapter, profiles }) => {
        const result = await this.#checkOne(adapter, timeoutMs);
        if (result !== 'ok') ready = false;
        for (const p of profiles) backends[p] = result;
      }),
    );
    return { ready, backends };
  }

  #checkOne(adapter: CacheAdapter, timeoutMs: number): Promise<string> {
    const now = performance.now();
    const prev = this.#checks.get(adapter);
    if (prev && (prev.at === Number.POSITIVE_INFINITY || now - prev.at < this.#ttlMs)) return prev.result;
    const result = backendCall(adapter, () => adapter.ready(), timeoutMs).then(
      () => 'ok',
      (err: unknown) => (err instanceof CacheGateError ? err.message : 'unreachable'),
    );
    const entry: Checked = { at: Number.POSITIVE_INFINITY, result }; // in flight: shared, never stale
    this.#checks.set(adapter, entry);
    void result.then(() => {
      entry.at = performance.now();
    });
    return result;
  }
}

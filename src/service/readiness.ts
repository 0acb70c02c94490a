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
  /** The last result, and when it came. */
  value?: string;
  at: number;
  /** A check under way. */
  inflight?: Promise<string>;
}

export class Readiness {
  readonly #ttlMs: number;
  readonly #checks = new WeakMap<CacheAdapter, Checked>();
  readonly #now: () => number;

  /** `now`: the clock results age by (a test's own, so that a loaded machine cannot age them). */
  constructor(ttlMs = 2000, now = (): number => performance.now()) {
    this.#ttlMs = ttlMs;
    this.#now = now;
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

  /**
   * A fresh result is reused; a stale one is answered at once while a new check runs in the
   * background (a hanging backend must not make every probe wait); only the very first check of a
   * backend is waited for, bounded by the timeout.
   */
  #checkOne(adapter: CacheAdapter, timeoutMs: number): Promise<string> {
    let entry = this.#checks.get(adapter);
    if (!entry) {
      entry = { at: 0 };
      this.#checks.set(adapter, entry);
    }
    const fresh = entry.value !== undefined && this.#now() - entry.at < this.#ttlMs;
    if (!fresh && !entry.inflight) {
      const e = entry;
      e.inflight = backendCall(adapter, () => adapter.ready(), timeoutMs).then(
        () => 'ok',
        (err: unknown) => (err instanceof CacheGateError ? err.message : 'unreachable'),
      ).then((value) => {
        e.value = value;
        e.at = this.#now();
        e.inflight = undefined;
        return value;
      });
    }
    return entry.value !== undefined ? Promise.resolve(entry.value) : (entry.inflight as Promise<string>);
  }
}

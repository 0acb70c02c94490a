/**
 * Per-token rate limits: one token bucket per principal (runner token, API token, anonymous),
 * refilled continuously at `rate` requests per second up to `burst`. Principals come from the
 * configuration, so the number of buckets is bounded by it.
 */
import { CacheGateError } from '../errors.ts';

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  private readonly buckets = new Map<string, Bucket>();

  /** Called for every refused request (the service counts them in /metrics). */
  onLimited: ((who: string) => void) | undefined;

  constructor(rate: number, burst: number) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
  }

  /**
   * Takes one request from the bucket of principal `id` (unique per token: two runners that share a
   * name do not share a bucket); throws 429 with Retry-After when it is empty. `label` is what
   * onLimited reports.
   */
  take(id: string, now = performance.now(), label = id): void {
    if (this.rate <= 0) return;
    let b = this.buckets.get(id);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(id, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    this.onLimited?.(label);
    const wait = Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
    throw new CacheGateError('rate_limited', 429, `too many requests for this token: the limit is ${this.rate} per second (burst ${this.burst}); retry in ${wait} s`, { headers: { 'Retry-After': String(wait) } });
  }
}

/**
 * Per-token rate limits: one token bucket per principal (runner token, API token, anonymous),
 * refilled continuously at `rate` requests per second up to `burst`. Principals come from the
 * configuration, so the number of buckets is bounded by it.
 */
import { CacheGateError } from '../errors.ts';
import { clientKey } from './client-address.ts';

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
    refill(b, now, this.rate, this.burst);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    this.onLimited?.(label);
    const wait = Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
    throw new CacheGateError('rate_limited', 429, `too many requests for this token: the limit is ${this.rate} per second (burst ${this.burst}); retry in ${wait} s`, { headers: { 'Retry-After': String(wait) } });
  }
}

/**
 * Failed authentications per client address (an unknown runner or API token, a wrong admin token, a
 * wrong S3 signature or access key): `rate` per second, refilled up to `burst`. An address that has
 * used them up is refused before its credentials are looked at, so guessing stops there, right
 * guesses included, until the bucket refills. A known token from that address waits too (documented:
 * docs/security.md); requests without credentials are not counted. An IPv6 client counts per /64
 * (client-address.ts). Addresses are bounded: past `maxAddresses` the one that failed least
 * recently is forgotten, and an address whose bucket has refilled is dropped when it next shows up.
 */
export class AuthFailureLimiter {
  readonly rate: number;
  readonly burst: number;
  private readonly maxAddresses: number;
  private readonly buckets = new Map<string, Bucket>();

  /** Called when an address runs out of failures (once per lock, not per refused request). */
  onLocked: ((address: string) => void) | undefined;
  /** Called for every request refused because its address is locked. */
  onRefused: (() => void) | undefined;

  constructor(rate: number, burst: number, maxAddresses = 10_000) {
    this.rate = rate;
    this.burst = Math.max(1, burst);
    this.maxAddresses = maxAddresses;
  }

  /** 0 when `address` may present credentials, else the seconds until it may (the Retry-After). */
  wait(from: string | undefined, now = performance.now()): number {
    if (this.rate <= 0 || from === undefined) return 0;
    const address = clientKey(from);
    const b = this.buckets.get(address);
    if (b === undefined) return 0;
    refill(b, now, this.rate, this.burst);
    if (b.tokens >= this.burst) this.buckets.delete(address);
    if (b.tokens >= 1) return 0;
    this.onRefused?.();
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }

  /** Counts one failed authentication from `address`. */
  failed(from: string | undefined, now = performance.now()): void {
    if (this.rate <= 0 || from === undefined) return;
    const address = clientKey(from);
    let b = this.buckets.get(address);
    if (b === undefined) {
      b = { tokens: this.burst, at: now };
    } else {
      refill(b, now, this.rate, this.burst);
      this.buckets.delete(address); // re-inserted last: the map's order is the order of last failure
    }
    this.buckets.set(address, b);
    if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value as string);
    const before = b.tokens;
    b.tokens = Math.max(0, b.tokens - 1);
    if (before >= 1 && b.tokens < 1) this.onLocked?.(address);
  }
}

function refill(b: Bucket, now: number, rate: number, burst: number): void {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
  b.at = now;
}

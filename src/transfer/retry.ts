/** Retry loop shared by every request of a transfer. */
import { setTimeout as sleep } from 'node:timers/promises';
import { isRetryable } from './errors.ts';

export interface RetryPolicy {
  /** Extra attempts after the first (GitLab Runner's --retry, default 2). */
  retries: number;
  /** Pause before each retry (--retry-time, default 1 s). */
  delayMs: number;
  signal?: AbortSignal;
  /** Called before each retry with the error that caused it. */
  onRetry?: (err: unknown, attempt: number) => void;
}

export async function withRetries<T>(policy: RetryPolicy, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.retries || !isRetryable(err) || policy.signal?.aborted) throw err;
      policy.onRetry?.(err, attempt + 1);
      await sleep(policy.delayMs, undefined, { signal: policy.signal });
    }
  }
}

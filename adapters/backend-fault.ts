/**
 * How every adapter classifies its backend's answers (docs/api.md, "Backend errors"), so that an
 * operator and the helper can tell a miss, a passing fault and a configuration fault apart:
 *
 *  - the object is not there                         → head/get answer null → 404 (a cache miss)
 *  - unreachable, timed out, 5xx or 429               → 503 `backend_unavailable` + Retry-After (retry)
 *  - the bucket/container does not exist, credentials
 *    are wrong or denied (401/403, NoSuchBucket, …)   → 502 `backend_error` naming the setting to check
 *
 * A 502 is logged at ERROR by the service (src/service/error-response.ts) like every 5xx.
 */
import { CacheGateError } from '../src/errors.ts';

/** A refusal that retrying will not cure: the message says which setting to check. */
export function misconfigured(message: string, check: string, cause?: unknown): CacheGateError {
  return new CacheGateError('backend_error', 502, `${message}: check ${check}`, cause === undefined ? undefined : { cause });
}

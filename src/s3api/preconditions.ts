/**
 * GetObject / HeadObject preconditions as S3 applies them (RFC 9110 §13): If-Match and
 * If-Unmodified-Since fail with 412 PreconditionFailed, If-None-Match and If-Modified-Since with
 * 304 Not Modified. Clients rely on them: the SDKs' ranged downloads send If-Match with the ETag of
 * their first part, so that parts of two different objects are never joined. Ignoring them would
 * serve exactly that mix when a key is overwritten during a download.
 */
import { S3Error } from './errors.ts';

const listOf = (v: string): string[] => v.split(',').map((t) => t.trim().replace(/^W\//, '')).filter((t) => t !== '');
const matches = (list: string, etag: string | undefined): boolean => listOf(list).some((t) => t === '*' ? etag !== undefined : t === etag);
const seconds = (d: string | undefined): number | undefined => {
  const t = d === undefined ? NaN : Date.parse(d);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
};

/** 'ok', 'not-modified' (answer 304), or throws PreconditionFailed. `etag` and `lastModified` are the answer's headers. */
export function checkPreconditions(h: Record<string, string | string[] | undefined>, etag: string | undefined, lastModified: string | undefined): 'ok' | 'not-modified' {
  const one = (n: string): string | undefined => {
    const v = h[n];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const ifMatch = one('if-match');
  const ifNoneMatch = one('if-none-match');
  const lm = seconds(lastModified);
  const failed = (): S3Error => new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  if (ifMatch !== undefined) {
    if (!matches(ifMatch, etag)) throw failed();
  } else {
    const since = seconds(one('if-unmodified-since'));
    if (since !== undefined && lm !== undefined && lm > since) throw failed();
  }
  if (ifNoneMatch !== undefined) return matches(ifNoneMatch, etag) ? 'not-modified' : 'ok';
  const since = seconds(one('if-modified-since'));
  return since !== undefined && lm !== undefined && lm <= since ? 'not-modified' : 'ok';
}

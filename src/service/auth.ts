/**
 * Who is asking: the bearer token of a request → its principal, then that principal's rate limit.
 */
import { CacheGateError } from '../errors.ts';
import type { Principal, ServiceState } from './state.ts';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The principal for an Authorization header value; 401 when absent or unknown, 429 over the rate limit. */
export function authenticate(authorization: string | undefined, state: ServiceState): Principal {
  let principal = state.anonymous;
  if (!principal) {
    const m = authorization ? BEARER.exec(authorization) : null;
    if (!m) throw new CacheGateError('unauthorized', 401, 'missing token: send Authorization: Bearer <runner or API token>', { headers: { 'WWW-Authenticate': 'Bearer' } });
    principal = state.authenticate(m[1]);
    if (!principal) throw new CacheGateError('unauthorized', 401, 'unknown token', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
  }
  state.limiter.take(principal.id, undefined, principal.label);
  return principal;
}

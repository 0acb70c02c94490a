/**
 * Who an S3 request is: its access key → the runner profile that stores its objects, and the part
 * of the object space that profile's names live in (its namespace). Derived once per ServiceState,
 * so a configuration reload swaps the keys with everything else.
 */
import { posix } from 'node:path';
import type { CacheProfile } from '../config/types.ts';
import { goJoin } from '../keys/object-name.ts';
import type { ServiceState } from '../service/state.ts';
import { S3Error, accessDenied } from './errors.ts';

export interface S3Principal {
  accessKey: string;
  secretKey: string;
  profile: CacheProfile;
  readOnly: boolean;
  /** `<Path>/runner/<short token>` or, for a Shared profile, `<Path>/project`: every name it may touch starts with this + '/'. */
  namespace: string;
  /** For logs and the rate limiter: 's3:<access key>'. Never the secret. */
  label: string;
}

const indexes = new WeakMap<ServiceState, Map<string, S3Principal>>();

export function principals(state: ServiceState): Map<string, S3Principal> {
  let index = indexes.get(state);
  if (!index) {
    index = new Map();
    for (const k of state.config.service.s3Api?.keys ?? []) {
      const found = state.runner(k.runner); // by name, refusing a name several runners share
      if (!found.ok) continue; // refused by check; a reload with such a key keeps the previous state
      const { profile } = found;
      index.set(k.accessKey, { accessKey: k.accessKey, secretKey: k.secretKey, profile, readOnly: k.readOnly, namespace: namespaceOf(profile), label: `s3:${k.accessKey}` });
    }
    indexes.set(state, index);
  }
  return index;
}

export function namespaceOf(profile: CacheProfile): string {
  const c = profile.cache;
  return goJoin(c.path, c.shared ? 'project' : posix.join('runner', profile.shortToken));
}

/** An object name a principal may address: a clean POSIX name strictly below its namespace. */
export function checkObjectName(p: S3Principal, name: string): void {
  if (name === '' || name.startsWith('/') || name.endsWith('/') || goJoin(name) !== name || name.includes('\0')) {
    throw new S3Error('InvalidArgument', 400, 'object names must be clean paths (no empty, "." or ".." segments)');
  }
  if (!name.startsWith(p.namespace + '/')) throw accessDenied(`this access key may only address objects under ${p.namespace}/`);
}

/** A list prefix must stay inside the namespace too: listing is confined like every other call. */
export function checkListPrefix(p: S3Principal, prefix: string): void {
  if (!prefix.startsWith(p.namespace + '/') || posix.normalize(prefix) !== prefix && posix.normalize(prefix) + '/' !== prefix) {
    throw accessDenied(`this access key may only list under ${p.namespace}/ (give that prefix)`);
  }
}

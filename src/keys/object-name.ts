/**
 * Object names (SPEC §2.2, §2.3): join(Path, Shared ? '' : 'runner/<shortToken>', 'project', <id>, [shard], <key>)
 * with POSIX join semantics, refused when not strictly below the project's own prefix.
 */
import { posix } from 'node:path';
import { createHash } from 'node:crypto';

export interface NamespaceInput {
  path: string;
  shared: boolean;
  shortToken: string;
  projectId: string;
}

export const OUTSIDE_PROJECT = 'computed cache path outside of project bucket';

/** Lowercase hex SHA-256 of the UTF-8 key (FF_HASH_CACHE_KEYS). */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Go's path.Join: join non-empty elements and Clean; '' when all are empty. */
export function goJoin(...parts: string[]): string {
  const nonEmpty = parts.filter((p) => p !== '');
  if (nonEmpty.length === 0) return '';
  const joined = posix.normalize(nonEmpty.join('/'));
  return joined.length > 1 && joined.endsWith('/') ? joined.slice(0, -1) : joined;
}

export function projectPrefix(ns: NamespaceInput): string {
  return goJoin(ns.path, ns.shared ? '' : posix.join('runner', ns.shortToken), 'project', ns.projectId);
}

export type ObjectNameResult = { ok: true; objectName: string } | { ok: false; message: string };

/** `storedKey` is the sanitized key, or the SHA-256 hex when `sharded` (hash mode). */
export function objectName(ns: NamespaceInput, storedKey: string, sharded: boolean): ObjectNameResult {
  const prefix = projectPrefix(ns);
  const name = goJoin(prefix, sharded ? storedKey.slice(0, 2) : '', storedKey);
  if (!name.startsWith(prefix + '/') || name.length <= prefix.length + 1) {
    return { ok: false, message: OUTSIDE_PROJECT };
  }
  return { ok: true, objectName: name };
}

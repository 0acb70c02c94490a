/**
 * From what a job asks for (raw key, project, hash mode) to what is stored (SPEC §2):
 * the one place the key rules are applied, for presign and proxy alike.
 */
import { invalidKey } from '../errors.ts';
import { goQuote } from './go-quote.ts';
import { encodeHeaderValue } from './header-value.ts';
import { hashKey, objectName, type NamespaceInput } from './object-name.ts';
import { sanitizeKey } from './sanitize.ts';

export interface ResolvedKey {
  raw: string;
  /** The human-readable key: sanitized, or raw in hash mode. Goes into the cachekey metadata. */
  human: string;
  /** What is in the object name: sanitized key, or its SHA-256 in hash mode. */
  stored: string;
  changed: boolean;
  objectName: string;
  /** { cachekey } with a header-safe value. */
  metadata: Record<string, string>;
}

/** S3's limit on object names; also applied to the other backends so a key behaves the same everywhere. */
export const MAX_OBJECT_NAME_BYTES = 1024;

/**
 * Resolutions are pure, and CI asks for the same keys again and again (every job of a pipeline, every
 * pipeline of a branch): recent accepted ones are kept, frozen so no caller can change a shared
 * answer. Refusals are not kept. The cache is bounded by entries AND by bytes: a client with a valid
 * token may send keys of up to 4,096 characters, and 10,000 such entries (about 30 KB each in hash
 * mode with non-ASCII keys) took the service from 113 to 432 MB RSS. The oldest entries go first.
 */
export const RESOLVED_CACHE_ENTRIES = 10_000;
export const RESOLVED_CACHE_BYTES = 16 * 1024 * 1024;
const resolvedCache = new Map<string, { r: ResolvedKey; bytes: number }>();
let resolvedBytes = 0;

/** An upper estimate of what an entry holds: V8 strings take at most 2 bytes per UTF-16 unit, plus the objects around them. */
function entryBytes(id: string, r: ResolvedKey): number {
  const strings = id.length + r.raw.length + r.human.length + r.stored.length + r.objectName.length + (r.metadata.cachekey?.length ?? 0);
  return 2 * strings + 256;
}

/** Entries and estimated bytes held by the resolved-key cache (for tests and docs). */
export function resolvedCacheStats(): { entries: number; bytes: number } {
  return { entries: resolvedCache.size, bytes: resolvedBytes };
}

/** Throws CacheGateError invalid_key (400) when the key cannot be used. */
export function resolveKey(raw: string, ns: NamespaceInput, hashKeys: boolean): ResolvedKey {
  const id = `${hashKeys ? 1 : 0}\0${ns.shared ? 1 : 0}\0${ns.path}\0${ns.shortToken}\0${ns.projectId}\0${raw}`;
  const hit = resolvedCache.get(id);
  if (hit !== undefined) return hit.r;
  const r = resolveUncached(raw, ns, hashKeys);
  Object.freeze(r.metadata);
  Object.freeze(r);
  const bytes = entryBytes(id, r);
  if (bytes > RESOLVED_CACHE_BYTES / 64) return r; // one huge answer would push out dozens of ordinary ones
  while (resolvedCache.size > 0 && (resolvedCache.size >= RESOLVED_CACHE_ENTRIES || resolvedBytes + bytes > RESOLVED_CACHE_BYTES)) {
    const [oldest, e] = resolvedCache.entries().next().value as [string, { bytes: number }];
    resolvedCache.delete(oldest);
    resolvedBytes -= e.bytes;
  }
  resolvedCache.set(id, { r, bytes });
  resolvedBytes += bytes;
  return r;
}

function resolveUncached(raw: string, ns: NamespaceInput, hashKeys: boolean): ResolvedKey {
  if (raw === '') throw invalidKey('empty cache key');
  // JSON can carry lone UTF-16 surrogates; no storage backend can name an object with them.
  if (!raw.isWellFormed()) throw invalidKey(`cache key ${goQuote(raw)} is not valid Unicode`);
  let human: string;
  let stored: string;
  let changed = false;
  if (hashKeys) {
    human = raw;
    stored = hashKey(raw);
  } else {
    const s = sanitizeKey(raw);
    if (!s.ok) throw invalidKey(s.message);
    human = stored = s.key;
    changed = s.changed;
  }
  const name = objectName(ns, stored, hashKeys);
  if (!name.ok) throw invalidKey(name.message);
  if (Buffer.byteLength(name.objectName, 'utf8') > MAX_OBJECT_NAME_BYTES) {
    throw invalidKey(`cache key ${goQuote(raw.length > 64 ? raw.slice(0, 64) + '…' : raw)} is too long: the object name would exceed ${MAX_OBJECT_NAME_BYTES} bytes`);
  }
  return { raw, human, stored, changed, objectName: name.objectName, metadata: { cachekey: encodeHeaderValue(human) } };
}

/** SPEC §2.4: CACHE_FALLBACK_KEY must not end in -protected (after trimming trailing dots and spaces). */
export function checkFallbackKey(key: string): string | undefined {
  const trimmed = key.replace(/[. ]+$/, '');
  if (trimmed.endsWith('-protected')) {
    return `CACHE_FALLBACK_KEY ${goQuote(key)} not allowed to end in "-protected"`;
  }
  return undefined;
}

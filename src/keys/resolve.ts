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
 * pipeline of a branch): the last RESOLVED_CACHE_SIZE accepted ones are kept (about 0.5 KB each),
 * frozen so no caller can change a shared answer. Refusals are not kept.
 */
const RESOLVED_CACHE_SIZE = 10_000;
const resolvedCache = new Map<string, ResolvedKey>();

/** Throws CacheGateError invalid_key (400) when the key cannot be used. */
export function resolveKey(raw: string, ns: NamespaceInput, hashKeys: boolean): ResolvedKey {
  const id = `${hashKeys ? 1 : 0}\0${ns.shared ? 1 : 0}\0${ns.path}\0${ns.shortToken}\0${ns.projectId}\0${raw}`;
  let r = resolvedCache.get(id);
  if (r === undefined) {
    r = resolveUncached(raw, ns, hashKeys);
    Object.freeze(r.metadata);
    Object.freeze(r);
    if (resolvedCache.size >= RESOLVED_CACHE_SIZE) resolvedCache.delete(resolvedCache.keys().next().value as string);
    resolvedCache.set(id, r);
  }
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

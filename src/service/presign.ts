/**
 * POST /v1/presign (SPEC §4): from a job's cache key to a URL, the headers to send and, when a role
 * applies, scoped credentials. Pure of HTTP: the route in app.ts only parses and authenticates.
 */
import { z } from 'zod';
import type { CacheAdapter, Direction, PresignMethod } from '../adapter.ts';
import { issueMessage } from '../config/did-you-mean.ts';
import { CacheGateError, tooLarge } from '../errors.ts';
import { goQuote } from '../keys/go-quote.ts';
import { lastIsoMemo } from '../iso-time.ts';
import { checkFallbackKey, resolveKey, type ResolvedKey } from '../keys/resolve.ts';
import type { NamespaceInput } from '../keys/object-name.ts';
import type { Principal } from './state.ts';

export const MAX_KEY_LENGTH = 4096;
export const MAX_FALLBACK_KEYS = 16;

const key = z.string().max(MAX_KEY_LENGTH, `is longer than ${MAX_KEY_LENGTH} characters`);

export const presignRequestSchema = z.strictObject({
  operation: z.enum(['download', 'upload', 'head']),
  key,
  projectId: z.union([z.string(), z.number().int().nonnegative()]).transform(String)
    .pipe(z.string().regex(/^[0-9]{1,19}$/, 'must be a GitLab project id (digits)')),
  hashKeys: z.boolean().optional(),
  timeoutSeconds: z.number().int().positive().max(31 * 86400).optional(),
  contentLength: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  fallbackKeys: z.array(key).max(MAX_FALLBACK_KEYS).optional(),
  fallbackKey: key.optional(),
});

export type PresignRequest = z.infer<typeof presignRequestSchema>;

export interface PresignAnswer {
  objectName: string;
  key: { raw: string; human: string; stored: string; changed: boolean };
  url: string;
  method: PresignMethod;
  headers: Record<string, string>;
  expiresAt: string;
  metadata: { cachekey: string };
  maxUploadedArchiveSize: number;
  goCloudUrl?: string;
  env?: Record<string, string>;
  helperArgs?: string[];
  fallbacks?: PresignAnswer[];
  warnings?: string[];
}

export interface PresignContext {
  principal: Principal;
  adapter: CacheAdapter;
  defaultLifetime: number;
  maxLifetime: number;
  /** Called for every key the rules changed (logged as upstream does). */
  onSanitized?: (raw: string, human: string) => void;
  now?: number;
}

const METHODS: Record<PresignRequest['operation'], PresignMethod> = { download: 'GET', upload: 'PUT', head: 'HEAD' };

/** Turns zod's first issue into a 400 that names the field. */
export function parsePresignRequest(body: unknown): PresignRequest {
  const r = presignRequestSchema.safeParse(body);
  if (r.success) return r.data;
  // An unknown field first: it usually explains the "required" one (project_id → projectId).
  const issue = r.error.issues.find((i) => i.code === 'unrecognized_keys') ?? r.error.issues[0];
  const message = issueMessage(issue, presignRequestSchema, body);
  throw new CacheGateError('invalid_request', 400, `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${message}`);
}

export async function presign(req: PresignRequest, ctx: PresignContext): Promise<PresignAnswer> {
  if (req.operation === 'upload' && ctx.principal.readOnly) {
    throw new CacheGateError('forbidden', 403, 'this token is read-only: it cannot upload');
  }
  const { profile } = ctx.principal;
  const ns: NamespaceInput = { path: profile.cache.path, shared: profile.cache.shared, shortToken: profile.shortToken, projectId: req.projectId };
  const max = profile.cache.maxUploadedArchiveSize;
  if (req.operation === 'upload' && max > 0 && req.contentLength !== undefined && req.contentLength > max) {
    throw tooLarge(req.contentLength, max);
  }
  const lifetime = Math.min(req.timeoutSeconds ?? ctx.defaultLifetime, ctx.maxLifetime);
  const hashKeys = req.hashKeys ?? false;

  const answer = await presignOne(req.key, req, ns, hashKeys, lifetime, ctx);

  if (req.operation === 'download') {
    const warnings: string[] = [];
    const fallbacks: PresignAnswer[] = [];
    const candidates: Array<{ key: string; fromEnv: boolean }> = [
      ...(req.fallbackKeys ?? []).map((k) => ({ key: k, fromEnv: false })),
      ...(req.fallbackKey !== undefined && req.fallbackKey !== '' ? [{ key: req.fallbackKey, fromEnv: true }] : []),
    ];
    for (const c of candidates) {
      const refusal = c.fromEnv ? checkFallbackKey(c.key) : undefined;
      if (refusal) {
        warnings.push(refusal);
        continue;
      }
      try {
        fallbacks.push(await presignOne(c.key, req, ns, hashKeys, lifetime, ctx));
      } catch (err) {
        if (!(err instanceof CacheGateError) || err.status >= 500) throw err;
        warnings.push(`fallback key ${goQuote(c.key)} skipped: ${err.message}`);
      }
    }
    if (candidates.length > 0) answer.fallbacks = fallbacks;
    if (warnings.length > 0) answer.warnings = warnings;
  }
  return answer;
}

async function presignOne(
  rawKey: string, req: PresignRequest, ns: NamespaceInput, hashKeys: boolean, lifetime: number, ctx: PresignContext,
): Promise<PresignAnswer> {
  const resolved: ResolvedKey = resolveKey(rawKey, ns, hashKeys);
  if (resolved.changed) ctx.onSanitized?.(resolved.raw, resolved.human);
  const method = METHODS[req.operation];
  const signed = await ctx.adapter.presign({
    method,
    objectName: resolved.objectName,
    expiresIn: lifetime,
    metadata: method === 'PUT' ? resolved.metadata : {},
    contentLength: method === 'PUT' ? req.contentLength : undefined,
    now: ctx.now,
  });
  const maxUploadedArchiveSize = ctx.principal.profile.cache.maxUploadedArchiveSize;
  const answer: PresignAnswer = {
    objectName: resolved.objectName,
    key: { raw: resolved.raw, human: resolved.human, stored: resolved.stored, changed: resolved.changed },
    url: signed.url,
    method,
    headers: signed.headers,
    expiresAt: expiryIso(signed.expiresAt.getTime()),
    metadata: { cachekey: resolved.human },
    maxUploadedArchiveSize,
  };
  const direction: Direction | undefined = req.operation === 'upload' ? 'upload' : req.operation === 'download' ? 'download' : undefined;
  if (direction && ctx.adapter.scopedCredentials) {
    const creds = await ctx.adapter.scopedCredentials(resolved.objectName, direction);
    if (creds) {
      answer.goCloudUrl = creds.goCloudUrl;
      answer.env = creds.env;
    }
  }
  answer.helperArgs = helperArgs(req.operation, answer);
  return answer;
}

/** Presigns in the same second share their expiry, and its ISO string. */
const expiryIso = lastIsoMemo();

/** The argv of `cachegate cache-archiver` / `cache-extractor` that performs this transfer (SPEC §5). */
export function helperArgs(operation: PresignRequest['operation'], a: PresignAnswer): string[] | undefined {
  if (operation === 'head') return undefined;
  const remote = a.goCloudUrl ? ['--gocloud-url', a.goCloudUrl, '--env-file', 'cache.env'] : ['--url', a.url];
  if (operation === 'download') {
    // The extractor's limit on what an archive may expand to defaults to 10 x this (src/archive/limits.ts).
    const limit = a.maxUploadedArchiveSize > 0 ? ['--max-uploaded-archive-size', String(a.maxUploadedArchiveSize)] : [];
    return ['cache-extractor', '--file', 'cache.zip', ...remote, ...limit];
  }
  const args = ['cache-archiver', '--file', 'cache.zip', ...remote];
  if (!a.goCloudUrl) {
    for (const [k, v] of Object.entries(a.headers)) {
      if (k.toLowerCase() !== 'content-length') args.push('--header', `${k}: ${v}`);
    }
  }
  args.push('--metadata', JSON.stringify(a.metadata));
  if (a.maxUploadedArchiveSize > 0) args.push('--max-uploaded-archive-size', String(a.maxUploadedArchiveSize));
  return args;
}

/**
 * [cachegate.s3_api]: the S3-compatible front door (docs/s3-api.md). Its own listener; each access
 * key maps to one [[runners]] entry by name, whose cache profile stores the objects.
 */
import { z } from 'zod';
import { parseListen } from './listen.ts';
import { secretSetting } from './secret-setting.ts';
import type { CacheProfile, Finding } from './types.ts';

const s3ApiKeySchema = z.strictObject({
  access_key: z.string().min(1),
  secret_key: z.string().optional(),
  secret_key_env: z.string().min(1).optional(),
  runner: z.string().min(1),
  read_only: z.boolean().optional(),
});

export const s3ApiSchema = z.strictObject({
  listen: z.string(),
  bucket: z.string().min(1).optional(),
  /** Seconds after which an unfinished multipart upload is removed. */
  multipart_max_age: z.number().int().min(60).optional(),
  /** Seconds an idle keep-alive connection of the front door stays open (not [cachegate] keep_alive_timeout). */
  keep_alive_timeout: z.number().positive().optional(),
  /** Presigned GET/HEAD answered with 307 to the backend's own presigned URL (src/s3api/redirect.ts). */
  redirect_get: z.boolean().optional(),
  keys: z.array(s3ApiKeySchema).optional(),
});

export type RawS3Api = z.infer<typeof s3ApiSchema>;

export interface S3ApiKey {
  accessKey: string;
  /** Secret. */
  secretKey: string;
  /** Name of the runner profile whose backend stores the objects. */
  runner: string;
  readOnly: boolean;
}

export interface S3ApiSettings {
  /** host:port */
  listen: string;
  bucket: string;
  multipartMaxAge: number;
  /** Seconds; see DEFAULT_S3_API_KEEP_ALIVE. */
  keepAliveTimeout: number;
  /** Presigned GET/HEAD of an object on S3/GCS/Azure answered with 307 to the backend (redirect.ts). */
  redirectGet: boolean;
  keys: S3ApiKey[];
}

export const DEFAULT_S3_API_BUCKET = 'runner-cache';
export const DEFAULT_MULTIPART_MAX_AGE = 24 * 3600;
/**
 * S3 clients keep pools of idle connections for a long time (Go's net/http, which the runner's and
 * minio-go's clients use: 90 s) and send the next request on one without warning; a server that
 * closes sooner races with them, and a PUT whose body meets the closed socket fails (EPIPE). Under
 * load that happens with the service's 5 s: 200 clients through the front door on 2 cores waited
 * > 5 s between answers and their next request, and the mix of bench/s3api.ts lost requests that
 * way (docs/performance.md). Idle connections still count against max_connections, the idlest
 * closed first, so a longer keep-alive cannot exhaust descriptors.
 */
export const DEFAULT_S3_API_KEEP_ALIVE = 60;

/**
 * Validates the section against the profiles: an unknown or ambiguous runner name (two runners may
 * share a name; their tokens tell them apart, an access key cannot), a duplicate access key and a
 * missing secret are errors.
 */
export function s3ApiSettings(raw: RawS3Api | undefined, profiles: CacheProfile[], env: Record<string, string | undefined>, mainListen: string, findings: Finding[]): S3ApiSettings | undefined {
  if (!raw) return undefined;
  const field = 'cachegate.s3_api';
  if (!parseListen(raw.listen)) findings.push({ level: 'error', field: `${field}.listen`, message: `"${raw.listen}" is not HOST:PORT` });
  else if (raw.listen === mainListen && !raw.listen.endsWith(':0')) findings.push({ level: 'error', field: `${field}.listen`, message: `the S3 front door needs its own address; ${raw.listen} is the service's listen address` });
  const seen = new Set<string>();
  const keys: S3ApiKey[] = [];
  (raw.keys ?? []).forEach((k, i) => {
    const f = `${field}.keys[${i}]`;
    const secretKey = secretSetting({ field: f, name: 'secret_key', literal: k.secret_key, envVar: k.secret_key_env, env, required: true }, findings);
    if (seen.has(k.access_key)) findings.push({ level: 'error', field: `${f}.access_key`, message: `access key "${k.access_key}" is listed twice: each must map to one runner` });
    seen.add(k.access_key);
    const matches = profiles.filter((p) => p.name === k.runner).length;
    if (matches === 0) findings.push({ level: 'error', field: `${f}.runner`, message: `no runner named "${k.runner}" has a [runners.cache] section` });
    if (matches > 1) findings.push({ level: 'error', field: `${f}.runner`, message: `${matches} runners are named "${k.runner}": give them distinct names so the access key maps to one` });
    const tokenless = profiles.find((p) => p.name === k.runner && p.token === '' && !p.cache.shared);
    if (tokenless) {
      findings.push({ level: 'error', field: `${f}.runner`, message: `runner "${k.runner}" has no token, so its objects have no namespace of their own (runner/<short token>/): a front-door key for it would reach every runner's objects; give the runner its token or set Shared = true` });
    }
    if (secretKey !== '') keys.push({ accessKey: k.access_key, secretKey, runner: k.runner, readOnly: k.read_only ?? false });
  });
  if (keys.length === 0 && findings.every((x) => !x.field.startsWith(`${field}.keys`))) {
    findings.push({ level: 'warning', field: `${field}.keys`, message: 'no access keys: every request to the S3 front door is refused' });
  }
  return { listen: raw.listen, bucket: raw.bucket ?? DEFAULT_S3_API_BUCKET, multipartMaxAge: raw.multipart_max_age ?? DEFAULT_MULTIPART_MAX_AGE, keepAliveTimeout: raw.keep_alive_timeout ?? DEFAULT_S3_API_KEEP_ALIVE, redirectGet: raw.redirect_get ?? false, keys };
}

/** Options shared by upload and download, and how they pick a Remote. */
import { CacheGateError } from '../errors.ts';
import { parseGoCloudUrl, type S3Location } from './gocloud.ts';
import type { ProgressFn } from './meter.ts';
import { presignedRemote, s3Remote, type Remote } from './remote.ts';
import { credentialsFromEnv } from './s3-sign.ts';

export const MiB = 1024 * 1024;

export interface CommonOptions {
  /** The local archive. */
  file: string;
  /** Presigned URL (`--url`). Either this or `goCloudUrl`. */
  url?: string;
  /** Headers sent with every request to `url` (`--header`, or the presign answer's `headers`). */
  headers?: Record<string, string>;
  /** `--gocloud-url s3://bucket/object?…`, used with the credentials in `env`. */
  goCloudUrl?: string;
  /** Variables of `--env-file` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, CACHE_METADATA). */
  env?: Record<string, string>;
  /** Deadline for the whole transfer, all retries included (`--timeout`, minutes → ms). 0/undefined: none. */
  timeoutMs?: number;
  /** Retries after the first attempt, per request (`--retry`, default 2). */
  retries?: number;
  /** Pause before a retry (`--retry-time`, default 1000 ms). */
  retryDelayMs?: number;
  /** Part size (`--chunk-size`, default 16 MiB). */
  chunkSize?: number;
  /** Parts in flight (`--concurrency`, default 16). */
  concurrency?: number;
  onProgress?: ProgressFn;
  /** Called before each retry (for a warning line). */
  onRetry?: (err: unknown, attempt: number) => void;
  signal?: AbortSignal;
}

export interface Resolved {
  remote: Remote;
  s3?: S3Location;
  retries: number;
  retryDelayMs: number;
  chunkSize: number;
  concurrency: number;
}

export function resolveCommon(opts: CommonOptions): Resolved {
  const retries = Math.max(0, Math.floor(opts.retries ?? 2));
  const retryDelayMs = Math.max(0, opts.retryDelayMs ?? 1000);
  const chunkSize = Math.max(1, Math.floor(opts.chunkSize ?? 16 * MiB));
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 16));
  if (opts.goCloudUrl) {
    const s3 = parseGoCloudUrl(opts.goCloudUrl);
    const credentials = credentialsFromEnv(opts.env ?? {}, process.env);
    if (!credentials) throw new CacheGateError('invalid_request', 400, 'gocloud URL: no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the env file');
    return { remote: s3Remote(s3, credentials), s3, retries, retryDelayMs, chunkSize, concurrency };
  }
  if (!opts.url) throw new CacheGateError('invalid_request', 400, 'a URL or a gocloud URL is required');
  return { remote: presignedRemote(opts.url, opts.headers), retries, retryDelayMs, chunkSize, concurrency };
}

/**
 * `cache-archiver --server URL`: the helper asks cachegate for its upload URL itself, after the
 * archive is built, stating its size. cachegate then refuses an archive over MaxUploadedArchiveSize
 * (413) before signing anything, and signs the size into the URL where the storage can enforce it
 * (S3: Content-Length; local backend: content-length; GCS: x-goog-content-length-range), so the
 * URL cannot carry a bigger body. URLs presigned earlier (helperArgs) carry no size.
 */
import { CacheGateError } from '../errors.ts';
import { tooBigMessage } from './upload.ts';

export interface ServerUploadRequest {
  server: string;
  token: string;
  key: string;
  projectId: string;
  size: number;
  hashKeys?: boolean;
}

export type ServerUpload =
  | { status: 'signed'; url: string; headers: Record<string, string>; goCloudUrl?: string; env?: Record<string, string>; metadata: Record<string, string> }
  | { status: 'too-big'; message: string };

interface PresignAnswer {
  url: string;
  headers: Record<string, string>;
  goCloudUrl?: string;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
}

export async function presignUpload(r: ServerUploadRequest, timeoutMs = 30_000): Promise<ServerUpload> {
  const endpoint = `${r.server.replace(/\/+$/, '')}/v1/presign`;
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${r.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ operation: 'upload', key: r.key, projectId: r.projectId, contentLength: r.size, ...(r.hashKeys ? { hashKeys: true } : {}) }),
      signal: AbortSignal.timeout(timeoutMs),
      // Not followed: the answer names where the archive goes, so it must come from the server asked
      // (and a same-origin hop would carry the token to another path).
      redirect: 'manual',
    });
  } catch (err) {
    throw new CacheGateError('backend_unavailable', 503, `asking ${endpoint} for an upload URL failed: ${(err as Error).message}`);
  }
  const text = await boundedText(res, endpoint);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
  if (res.status === 413) {
    const limit = /limit is set to (\d+)/i.exec(error?.message ?? '')?.[1];
    return { status: 'too-big', message: limit !== undefined ? tooBigMessage(r.size, Number(limit)) : `${error?.message ?? 'archive too big'}. Cache will be stored only locally.` };
  }
  if (!res.ok) {
    const detail = error ? `${error.code}: ${error.message}` : text.slice(0, 200);
    throw new CacheGateError(res.status >= 500 ? 'backend_unavailable' : 'backend_error', res.status, `${endpoint} answered ${res.status} (${detail})`);
  }
  const a = body as PresignAnswer;
  return { status: 'signed', url: a.url, headers: a.headers, goCloudUrl: a.goCloudUrl, env: a.env, metadata: a.metadata ?? {} };
}

/** A presign answer is a few KiB; more is not one. */
export const MAX_ANSWER = 1024 * 1024;

async function boundedText(res: Response, endpoint: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      n += chunk.length;
      if (n > MAX_ANSWER) {
        await res.body?.cancel().catch(() => undefined);
        throw new CacheGateError('backend_error', 502, `${endpoint} answered ${res.status} with an answer over ${MAX_ANSWER} bytes: not a presign answer`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof CacheGateError) throw err;
    throw new CacheGateError('backend_unavailable', 503, `reading the answer of ${endpoint} failed: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

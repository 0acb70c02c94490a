/**
 * upload(): the archive to a presigned PUT URL, to Azure in blocks, or to S3 in multipart parts with
 * role credentials. The file is streamed from disk (a part is a byte range sent from four reused
 * 512 KiB buffers, file-body.ts), never read whole. Memory: 2 MiB per request in flight
 * (`concurrency` of them for parts and blocks), plus the sockets' own buffers.
 */
import { stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { CacheGateError } from '../errors.ts';
import { encodeHeaderValue } from '../keys/header-value.ts';
import { badAnswer, httpError, isAbort, parseErrorXml, timeoutError, xmlText } from './errors.ts';
import { createAgents, deadline, discard, readText, send, type Agents } from './http.ts';
import { runPool } from './pool.ts';
import type { Remote } from './remote.ts';
import { presignedRemote } from './remote.ts';
import { MiB, resolveCommon, type CommonOptions } from './resolve.ts';
import { withRetries, type RetryPolicy } from './retry.ts';

export interface UploadOptions extends CommonOptions {
  /** `--max-uploaded-archive-size` (bytes, 0/undefined = unlimited). */
  maxUploadedArchiveSize?: number;
  /**
   * Metadata for goCloud (S3 multipart) uploads, sent as `x-amz-meta-*`; default: CACHE_METADATA of
   * `env` (JSON). Presigned URLs carry theirs in `headers`.
   */
  metadata?: Record<string, string>;
}

export type UploadResult =
  | { status: 'uploaded'; size: number; mode: 'put' | 'azure-blocks' | 's3-multipart'; parts: number }
  | { status: 'too-big'; size: number; limit: number; message: string };

/** S3: parts are at least 5 MiB (except the last), at most 10,000 of them. */
const S3_MIN_PART = 5 * MiB;
const S3_MAX_PARTS = 10_000;
/** Azure: at most 50,000 blocks of at most 4000 MiB. */
const AZURE_MAX_BLOCKS = 50_000;
const AZURE_MAX_BLOCK = 4000 * MiB;

/** GitLab Runner's words for an archive over the limit (the command then exits 0). */
export function tooBigMessage(size: number, limit: number): string {
  return `Cache archive size (${size}) is too big (Limit is set to ${limit}). Cache will be stored only locally.`;
}

/** A SAS URL of Azure Blob Storage (or an emulator: a blob SAS has `sr=b` and `sig`). */
export function isAzureSasUrl(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return u.hostname.endsWith('.blob.core.windows.net') || (u.searchParams.get('sr') === 'b' && u.searchParams.has('sig'));
}

interface Ctx {
  file: string;
  remote: Remote;
  agents: Agents;
  policy: RetryPolicy;
  signal: AbortSignal | undefined;
  /** Reports bytes sent (negative to take back a failed attempt's). */
  progress: (n: number) => void;
}

function lower(h: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

/**
 * Sends one request whose body is `file[start, start+length)`, with retries; returns the response of
 * the successful attempt (2xx) with its body unread.
 */
async function sendRange(ctx: Ctx, what: string, method: string, start: number, length: number, headers: Record<string, string>, query: Record<string, string> | undefined, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  return withRetries({ ...ctx.policy, signal }, async () => {
    let sent = 0;
    const req = ctx.remote.request(method, { ...headers, 'content-length': String(length) }, query);
    try {
      const res = await send({
        method, url: req.url, headers: req.headers, agents: ctx.agents, signal,
        body: length === 0 ? Buffer.alloc(0) : {
          file: ctx.file, start, length,
          onSent: (n) => {
            sent += n;
            ctx.progress(n);
          },
        },
      });
      if ((res.statusCode ?? 0) >= 300) throw httpError(what, res.statusCode ?? 0, res.statusMessage ?? '', await readText(res));
      return res;
    } catch (err) {
      ctx.progress(-sent);
      throw err;
    }
  });
}

/** Sends a small in-memory body with retries; returns the 2xx answer's body text. */
async function sendSmall(ctx: Ctx, what: string, method: string, body: string, headers: Record<string, string>, query: Record<string, string>): Promise<string> {
  return withRetries(ctx.policy, async () => {
    const req = ctx.remote.request(method, { ...headers, 'content-length': String(Buffer.byteLength(body)) }, query);
    const res = await send({ method, url: req.url, headers: req.headers, agents: ctx.agents, signal: ctx.signal, body });
    const text = await readText(res, 1024 * 1024);
    if ((res.statusCode ?? 0) >= 300) throw httpError(what, res.statusCode ?? 0, res.statusMessage ?? '', text);
    return text;
  });
}

export async function upload(opts: UploadOptions): Promise<UploadResult> {
  const st = await stat(opts.file);
  if (!st.isFile()) throw new CacheGateError('invalid_request', 400, `${opts.file} is not a regular file`);
  const size = st.size;
  const limit = opts.maxUploadedArchiveSize ?? 0;
  if (limit > 0 && size > limit) return { status: 'too-big', size, limit, message: tooBigMessage(size, limit) };

  // Headers are given per request: Azure blocks must not carry x-ms-blob-type or the metadata.
  const r = resolveCommon({ ...opts, headers: undefined });
  const signal = deadline(opts.timeoutMs, opts.signal);
  const agents = createAgents(r.concurrency);
  let done = 0;
  const ctx: Ctx = {
    file: opts.file, remote: r.remote, agents, signal,
    policy: { retries: r.retries, delayMs: r.retryDelayMs, signal, onRetry: opts.onRetry },
    progress: (n) => {
      done += n;
      opts.onProgress?.(done, size);
    },
  };
  try {
    if (r.s3) {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...r.s3.sseHeaders };
      for (const [k, v] of Object.entries(opts.metadata ?? metadataFromEnv(opts.env))) headers[`x-amz-meta-${k.toLowerCase()}`] = encodeHeaderValue(v);
      const partSize = Math.max(r.chunkSize, S3_MIN_PART, Math.ceil(size / S3_MAX_PARTS));
      if (size <= partSize) {
        discard(await sendRange(ctx, 'upload', 'PUT', 0, size, headers, undefined, signal));
        return { status: 'uploaded', size, mode: 'put', parts: 1 };
      }
      const parts = await s3Multipart(ctx, size, partSize, r.concurrency, headers);
      return { status: 'uploaded', size, mode: 's3-multipart', parts };
    }
    const headers = lower(opts.headers);
    headers['content-type'] ??= 'application/octet-stream';
    if (isAzureSasUrl(opts.url as string) && size > r.chunkSize) {
      const blockSize = Math.min(AZURE_MAX_BLOCK, Math.max(r.chunkSize, Math.ceil(size / AZURE_MAX_BLOCKS)));
      const parts = await azureBlocks(ctx, size, blockSize, r.concurrency, headers);
      return { status: 'uploaded', size, mode: 'azure-blocks', parts };
    }
    discard(await sendRange(ctx, 'upload', 'PUT', 0, size, headers, undefined, signal));
    return { status: 'uploaded', size, mode: 'put', parts: 1 };
  } catch (err) {
    if (isAbort(err) && !opts.signal?.aborted && opts.timeoutMs) throw timeoutError('upload', opts.timeoutMs);
    throw err;
  } finally {
    agents.destroy();
  }
}

function metadataFromEnv(env: Record<string, string> | undefined): Record<string, string> {
  const raw = env?.CACHE_METADATA;
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  } catch {
    return {};
  }
}

function ranges(size: number, partSize: number): Array<{ n: number; start: number; length: number }> {
  const out = [];
  for (let start = 0, n = 1; start < size; start += partSize, n++) out.push({ n, start, length: Math.min(partSize, size - start) });
  return out;
}

/** CreateMultipartUpload → UploadPart × n (bounded concurrency) → CompleteMultipartUpload; abort on failure. */
async function s3Multipart(ctx: Ctx, size: number, partSize: number, concurrency: number, headers: Record<string, string>): Promise<number> {
  const created = await sendSmall(ctx, 'create multipart upload', 'POST', '', headers, { uploads: '' });
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created)?.[1];
  if (!uploadId) throw badAnswer('create multipart upload', 'no UploadId in the answer');
  const id = xmlText(uploadId);
  const list = ranges(size, partSize);
  const etags: string[] = [];
  try {
    await runPool(list, concurrency, async (p, sig) => {
      const res = await sendRange(ctx, `upload part ${p.n}`, 'PUT', p.start, p.length, {}, { partNumber: String(p.n), uploadId: id }, sig);
      discard(res);
      const etag = res.headers.etag;
      if (!etag) throw badAnswer(`upload part ${p.n}`, 'no ETag in the answer');
      etags[p.n - 1] = etag;
    }, ctx.signal);
    const body = `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${etags
      .map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</ETag></Part>`)
      .join('')}</CompleteMultipartUpload>`;
    await withRetries(ctx.policy, async () => {
      // S3 can answer 200 and still fail: the error is then in the body.
      const text = await sendSmall({ ...ctx, policy: { ...ctx.policy, retries: 0 } }, 'complete multipart upload', 'POST', body, { 'content-type': 'application/xml' }, { uploadId: id });
      if (/<Error>/.test(text)) {
        const xml = parseErrorXml(text);
        throw new CacheGateError('backend_unavailable', 502, `complete multipart upload failed: ${xml?.code ?? ''}: ${xml?.message ?? ''}`);
      }
    });
    return list.length;
  } catch (err) {
    await abortMultipart(ctx, id);
    throw err;
  }
}

/** Best effort, on its own short deadline (the transfer's may be what expired). */
async function abortMultipart(ctx: Ctx, uploadId: string): Promise<void> {
  try {
    const req = ctx.remote.request('DELETE', {}, { uploadId });
    const res = await send({ method: 'DELETE', url: req.url, headers: req.headers, agents: ctx.agents, signal: AbortSignal.timeout(30_000) });
    discard(res);
  } catch {
    // The bucket's lifecycle rule for incomplete uploads is the backstop.
  }
}

/** Put Block × n (bounded concurrency) → Put Block List with the metadata and content type. */
async function azureBlocks(ctx: Ctx, size: number, blockSize: number, concurrency: number, headers: Record<string, string>): Promise<number> {
  const list = ranges(size, blockSize);
  // Block ids: base64 of same-length strings (Azure requires equal lengths within a blob).
  const ids = list.map((p) => Buffer.from(`cachegate-block-${String(p.n).padStart(6, '0')}`).toString('base64'));
  const blockHeaders: Record<string, string> = {};
  const listHeaders: Record<string, string> = { 'content-type': 'application/xml', 'x-ms-blob-content-type': headers['content-type'] };
  for (const [k, v] of Object.entries(headers)) {
    if (k === 'content-type' || k === 'x-ms-blob-type' || k === 'content-length') continue;
    if (k.startsWith('x-ms-meta-') || k.startsWith('x-ms-blob-')) listHeaders[k] = v;
    else blockHeaders[k] = v;
  }
  for (const [k, v] of Object.entries(blockHeaders)) if (k.startsWith('x-ms-')) listHeaders[k] = v;
  await runPool(list, concurrency, async (p, sig) => {
    discard(await sendRange(ctx, `put block ${p.n}`, 'PUT', p.start, p.length, blockHeaders, { comp: 'block', blockid: ids[p.n - 1] }, sig));
  }, ctx.signal);
  const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
  await sendSmall(ctx, 'put block list', 'PUT', xml, listHeaders, { comp: 'blocklist' });
  return list.length;
}

export interface CheckRemoteOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  signal?: AbortSignal;
}

/** HEAD `--check-url`: does the remote archive exist? 5xx and network errors are retried; a 4xx other than 404 throws. */
export async function checkRemote(headUrl: string, opts: CheckRemoteOptions = {}): Promise<'exists' | 'missing'> {
  const remote = presignedRemote(headUrl, opts.headers);
  const signal = deadline(opts.timeoutMs, opts.signal);
  return withRetries({ retries: Math.max(0, opts.retries ?? 2), delayMs: opts.retryDelayMs ?? 1000, signal }, async () => {
    const req = remote.request('HEAD');
    const res = await send({ method: 'HEAD', url: req.url, headers: req.headers, signal });
    discard(res);
    const status = res.statusCode ?? 0;
    if (status === 404) return 'missing';
    if (status >= 200 && status < 300) return 'exists';
    throw httpError('check (HEAD)', status, res.statusMessage ?? '', '');
  });
}

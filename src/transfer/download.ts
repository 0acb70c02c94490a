/**
 * download(): presigned GET (or S3 GetObject with role credentials) into a temporary file next to
 * the archive, renamed into place only when every byte announced has arrived (and `verify`, when
 * given, has accepted the file).
 *
 * The first request asks for `bytes=0-(chunkSize-1)`. A 206 proves the server honours Range: the
 * remaining parts are fetched `concurrency` at a time and written at their offsets. A 200 means it
 * does not: that one response is streamed whole. Each part is retried (resuming where it stopped) on
 * 5xx, network errors and short bodies. Memory: one 256 KiB write buffer per part in flight, plus the
 * sockets' own buffers; never a whole part. The sockets' chunks are collected every 8 MiB
 * (young-gc.ts), not after ~64 MB of them have piled up.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { CacheGateError } from '../errors.ts';
import { badAnswer, httpError, isAbort, timeoutError } from './errors.ts';
import { createAgents, deadline, discard, header, readText, send, type Agents } from './http.ts';
import { metadataFromHeaders, metadataJsonText } from './metadata.ts';
import { runPool } from './pool.ts';
import { Arrival, type ArrivalRange } from './arrival.ts';
import { presignedRemote, type Remote } from './remote.ts';
import { resolveCommon, type CommonOptions } from './resolve.ts';
import { withRetries, type RetryPolicy } from './retry.ts';
import { youngGcPacer } from './young-gc.ts';

export interface DownloadOptions extends CommonOptions {
  /** `--head-url`: when the file exists, a HEAD decides "up to date" / "not found" without a GET. */
  headUrl?: string;
  /** Where to write metadata.json; default next to `file`; `false`: not at all. */
  metadataFile?: string | false;
  /**
   * Checks the temporary file before it replaces `file` (cache-extractor: the archive's CRCs and
   * checksums). Started as soon as the size is known, while the bytes are still arriving: `growing`
   * tells it when a byte range is on disk (its reads must wait for it). Without a known size
   * (no Content-Length) it runs once the file is complete, without `growing`. A throw fails the
   * download at once — not retried: the bytes arrived as announced, so the stored object itself is
   * bad — and leaves `file` untouched.
   */
  verify?: (tmpFile: string, growing?: Arrival) => Promise<void>;
  /**
   * The most bytes the object may have (cache-extractor: `--max-uploaded-archive-size`, the cap it
   * was uploaded under); 0/undefined: none, as GitLab's helper. A bigger announced size fails before
   * a byte is written; a body without a length is cut there.
   */
  maxSize?: number;
}

export type DownloadResult =
  | { status: 'downloaded'; size: number; lastModified: Date | undefined; ranged: boolean; parts: number; metadata: Record<string, string> }
  | { status: 'up-to-date'; lastModified: Date }
  | { status: 'not-found' };

/**
 * Write buffer per part in flight. 256 KiB, not 1 MiB: with the default 16 parts, 4 MiB of buffers
 * instead of 16 MiB, and less garbage for V8 to leave resident; cache-extractor with a download of
 * the bench tree's zip peaked at 155–170 MB instead of 208–229 MB, in about the same time (16.9 /
 * 17.0 s against 15.3 / 16.3 s, against a local `cachegate serve`; docs/archive.md).
 */
export const WRITE_BUFFER = 256 * 1024;

type Part = ArrivalRange;

/**
 * The verification run alongside the download (DownloadOptions.verify). A failure stops the
 * download; a download that fails or restarts from byte 0 abandons the run (its result is ignored).
 */
class Check {
  private readonly verify: DownloadOptions['verify'];
  private readonly tmp: string;
  private readonly stop: AbortController;
  private arrival: Arrival | undefined;
  private running: Promise<void> | undefined;
  failure: { err: unknown } | undefined;

  constructor(verify: DownloadOptions['verify'], tmp: string, stop: AbortController) {
    this.verify = verify;
    this.tmp = tmp;
    this.stop = stop;
  }

  start(size: number, ranges: readonly ArrivalRange[]): void {
    if (!this.verify) return;
    this.abandon();
    const arrival = new Arrival(size, ranges);
    const run = this.verify(this.tmp, arrival);
    run.catch((err: unknown) => {
      if (arrival.failed) return;
      this.failure ??= { err };
      this.stop.abort();
    });
    this.arrival = arrival;
    this.running = run;
  }

  update(): void {
    this.arrival?.update();
  }

  abandon(): void {
    this.arrival?.fail(new Error('download abandoned'));
    this.arrival = undefined;
    this.running = undefined;
  }

  /** After the last byte: the running verification's result (or a verification of the whole file). */
  async finish(): Promise<void> {
    if (!this.verify) return;
    await (this.running ?? this.verify(this.tmp));
  }
}

interface Ctx {
  maxSize: number | undefined;
  remote: Remote;
  agents: Agents;
  fh: FileHandle;
  policy: RetryPolicy;
  signal: AbortSignal | undefined;
  progress: (n: number) => void;
  check: Check;
}

function parseDate(v: string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** The local copy is current when its mtime (whole seconds, as Last-Modified has) is not older. */
async function upToDate(file: string, lastModified: Date | undefined): Promise<boolean> {
  if (lastModified === undefined) return false;
  const st = await stat(file).catch(() => undefined);
  return st !== undefined && st.isFile() && Math.floor(st.mtimeMs / 1000) >= Math.floor(lastModified.getTime() / 1000);
}

async function writeAll(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let off = 0;
  while (off < length) {
    const { bytesWritten } = await fh.write(buf, off, length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * Streams `res` to `fh` at `position` through `buf`; `onWritten` counts bytes that reached the file
 * (also when the body fails midway, so a retry resumes after them). At most `limit` bytes.
 */
async function writeBody(res: IncomingMessage, fh: FileHandle, position: number, limit: number, buf: Buffer, onWritten: (n: number) => void, signal: AbortSignal | undefined, over?: () => Error): Promise<void> {
  // The probe's response was requested before the download's own stop signal existed.
  const onAbort = (): void => void res.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let fill = 0;
  let pos = position;
  let received = 0;
  const flush = async (): Promise<void> => {
    if (fill === 0) return;
    await writeAll(fh, buf, fill, pos);
    pos += fill;
    const n = fill;
    fill = 0;
    onWritten(n);
  };
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (received + chunk.length > limit) throw over ? over() : badAnswer('download', 'the body is longer than announced');
      received += chunk.length;
      if (fill + chunk.length > buf.length) await flush();
      if (chunk.length >= buf.length) {
        await writeAll(fh, chunk, chunk.length, pos);
        pos += chunk.length;
        onWritten(chunk.length);
      } else {
        chunk.copy(buf, fill);
        fill += chunk.length;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await flush();
  }
}

async function failed(what: string, res: IncomingMessage): Promise<CacheGateError> {
  return httpError(what, res.statusCode ?? 0, res.statusMessage ?? '', await readText(res));
}

export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const r = resolveCommon(opts);
  const signal = deadline(opts.timeoutMs, opts.signal);
  const agents = createAgents(r.concurrency);
  const policy: RetryPolicy = { retries: r.retries, delayMs: r.retryDelayMs, signal, onRetry: opts.onRetry };
  try {
    return await run(opts, r.remote, r.chunkSize, r.concurrency, agents, policy, signal);
  } catch (err) {
    if (isAbort(err) && !opts.signal?.aborted && opts.timeoutMs) throw timeoutError('download', opts.timeoutMs);
    throw err;
  } finally {
    agents.destroy();
  }
}

async function run(opts: DownloadOptions, remote: Remote, chunkSize: number, concurrency: number, agents: Agents, policy: RetryPolicy, signal: AbortSignal | undefined): Promise<DownloadResult> {
  const file = opts.file;
  const exists = (await stat(file).catch(() => undefined)) !== undefined;

  if (exists && opts.headUrl) {
    const head = await withRetries(policy, async () => {
      const req = presignedRemote(opts.headUrl as string, opts.headers).request('HEAD');
      const res = await send({ method: 'HEAD', url: req.url, headers: req.headers, agents, signal });
      discard(res);
      if ((res.statusCode ?? 0) >= 500) throw httpError('download (HEAD)', res.statusCode ?? 0, res.statusMessage ?? '', '');
      return res;
    });
    if (head.statusCode === 404) return { status: 'not-found' };
    const lm = parseDate(header(head, 'last-modified'));
    if ((head.statusCode ?? 0) < 300 && lm && (await upToDate(file, lm))) return { status: 'up-to-date', lastModified: lm };
  }

  // The probe: the first part, which also tells whether Range is honoured.
  const firstEnd = chunkSize - 1;
  const probe = await withRetries(policy, async () => {
    let req = remote.request('GET', { range: `bytes=0-${firstEnd}` });
    let res = await send({ method: 'GET', url: req.url, headers: req.headers, agents, signal });
    if (res.statusCode === 416) {
      // An empty object has no byte 0: ask for it whole.
      discard(res);
      req = remote.request('GET');
      res = await send({ method: 'GET', url: req.url, headers: req.headers, agents, signal });
    }
    if (res.statusCode === 404) {
      discard(res);
      return undefined;
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) throw await failed('download', res);
    return res;
  });
  if (probe === undefined) return { status: 'not-found' };
  const lastModified = parseDate(header(probe, 'last-modified'));
  if (exists && (await upToDate(file, lastModified))) {
    probe.destroy();
    return { status: 'up-to-date', lastModified: lastModified as Date };
  }
  const metadata = metadataFromHeaders(probe.headers);

  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  let done = 0;
  let total = 0;
  const stop = new AbortController();
  const sig = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const check = new Check(opts.verify, tmp, stop);
  const scavenge = youngGcPacer();
  const ctx: Ctx = {
    maxSize: opts.maxSize || undefined, remote, agents, fh, policy: { ...policy, signal: sig }, signal: sig, check,
    progress: (n) => {
      done += n;
      if (n > 0) scavenge(n);
      check.update();
      opts.onProgress?.(done, total);
    },
  };
  try {
    let size: number;
    let parts = 1;
    const ranged = probe.statusCode === 206;
    if (ranged) {
      const cr = parseContentRange(header(probe, 'content-range'));
      if (!cr || cr.start !== 0 || cr.total === undefined) {
        probe.destroy();
        throw badAnswer('download', `unexpected Content-Range ${JSON.stringify(header(probe, 'content-range') ?? '')}`);
      }
      size = total = cr.total;
      if (ctx.maxSize !== undefined && size > ctx.maxSize) {
        probe.destroy();
        throw tooBig(size, ctx.maxSize);
      }
      const list: Part[] = [];
      for (let start = 0; start < size; start += chunkSize) list.push({ start, end: Math.min(start + chunkSize, size) - 1, done: 0 });
      parts = list.length;
      await fh.truncate(size);
      check.start(size, list);
      const etag = header(probe, 'etag');
      let first: IncomingMessage | undefined = probe;
      const buffers: Buffer[] = [];
      // The last part right after the first: a zip's central directory is at the end, and the
      // verification cannot start without it.
      const order = list.length > 2 ? [list[0], list[list.length - 1], ...list.slice(1, -1)] : list;
      await runPool(order, concurrency, async (part, partSignal, w) => {
        buffers[w] ??= Buffer.allocUnsafe(WRITE_BUFFER);
        const res = first;
        first = undefined;
        await fetchPart(ctx, part, size, etag, res, buffers[w], partSignal);
      }, sig);
    } else {
      size = await single(ctx, probe, (t) => (total = t));
    }
    await fh.close();
    await check.finish();
    if (lastModified) await utimes(tmp, lastModified, lastModified);
    await rename(tmp, file);
    if (opts.metadataFile !== false) await writeAtomic(opts.metadataFile ?? join(dir, 'metadata.json'), metadataJsonText(metadata));
    return { status: 'downloaded', size, lastModified, ranged, parts, metadata };
  } catch (err) {
    check.abandon();
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    // A verification failure stopped the download: report it, not the abort it caused.
    throw check.failure ? check.failure.err : err;
  }
}

/** A server that ignores Range: one stream, restarted from byte 0 on a retry. */
async function single(ctx: Ctx, probe: IncomingMessage, setTotal: (t: number) => void): Promise<number> {
  let first: IncomingMessage | undefined = probe;
  const buf = Buffer.allocUnsafe(WRITE_BUFFER);
  let written = 0;
  await withRetries(ctx.policy, async () => {
    let res = first;
    first = undefined;
    if (res === undefined) {
      const req = ctx.remote.request('GET');
      res = await send({ method: 'GET', url: req.url, headers: req.headers, agents: ctx.agents, signal: ctx.signal });
      if (res.statusCode !== 200) throw await failed('download', res);
    }
    const announced = header(res, 'content-length');
    const expected = announced === undefined ? undefined : Number(announced);
    if (expected !== undefined && ctx.maxSize !== undefined && expected > ctx.maxSize) {
      res.destroy();
      throw tooBig(expected, ctx.maxSize);
    }
    if (expected !== undefined) setTotal(expected);
    if (written > 0) {
      ctx.progress(-written);
      written = 0;
      await ctx.fh.truncate(0);
    }
    // A restart from byte 0 restarts the verification too: it may have read the earlier attempt's bytes.
    const range: ArrivalRange = { start: 0, end: (expected ?? 0) - 1, done: 0 };
    if (expected !== undefined) ctx.check.start(expected, [range]);
    else ctx.check.abandon();
    const over = expected === undefined && ctx.maxSize !== undefined ? () => tooBig(`more than ${ctx.maxSize}`, ctx.maxSize as number) : undefined;
    await writeBody(res, ctx.fh, 0, expected ?? ctx.maxSize ?? Number.MAX_SAFE_INTEGER, buf, (n) => {
      written += n;
      range.done = written;
      ctx.progress(n);
    }, ctx.signal, over);
    if (expected !== undefined && written !== expected) throw badAnswer('download', `the body ended after ${written} of ${expected} bytes`);
  });
  return written;
}

async function fetchPart(ctx: Ctx, part: Part, size: number, etag: string | undefined, initial: IncomingMessage | undefined, buf: Buffer, signal: AbortSignal): Promise<void> {
  const length = part.end - part.start + 1;
  await withRetries({ ...ctx.policy, signal }, async () => {
    let res = initial;
    initial = undefined;
    const from = part.start + part.done;
    if (res === undefined) {
      const req = ctx.remote.request('GET', { range: `bytes=${from}-${part.end}` });
      res = await send({ method: 'GET', url: req.url, headers: req.headers, agents: ctx.agents, signal });
      if (res.statusCode !== 206) {
        if ((res.statusCode ?? 0) >= 300) throw await failed('download', res);
        res.destroy();
        throw badAnswer('download', `expected 206 for bytes ${from}-${part.end}, got ${res.statusCode}`);
      }
      const cr = parseContentRange(header(res, 'content-range'));
      const tag = header(res, 'etag');
      if (!cr || cr.start !== from || cr.end !== part.end || cr.total !== size || (etag !== undefined && tag !== undefined && tag !== etag)) {
        res.destroy();
        // Not retryable: the object was replaced while it was being downloaded.
        throw new CacheGateError('backend_error', 409, 'download failed: the remote object changed during the download');
      }
    }
    await writeBody(res, ctx.fh, from, part.end - from + 1, buf, (n) => {
      part.done += n;
      ctx.progress(n);
    }, signal);
    if (part.done !== length) throw badAnswer('download', `bytes ${part.start}-${part.end}: the body ended after ${part.done} of ${length} bytes`);
  });
}

/** Not retried (413): the object is what it is. */
function tooBig(size: number | string, max: number): CacheGateError {
  return new CacheGateError('payload_too_large', 413, `download failed: the object's ${size} bytes are over --max-uploaded-archive-size (${max}), the limit the cache was uploaded under; raise it (CACHE_MAX_UPLOADED_ARCHIVE_SIZE) to download it`);
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

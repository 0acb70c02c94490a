/**
 * Small files of an extraction written several at a time, on libuv's threadpool, by the native
 * addon's writeFiles (native/deflate.c): creating a file is most of the time of extracting many
 * small ones, and the main thread made them one after another (docs/archive.md, "Against GitLab
 * Runner's helper", session 6). Used by the SafeWriter only; every decision about a path stays there
 * and is made on the main thread, in entry order, before a file is queued: the name is validated,
 * its parent directory resolved to a handle (extract-root.ts), the replace rules checked. A job only
 * does what the synchronous path does, relative to that handle (openat O_CREAT|O_EXCL|O_NOFOLLOW,
 * write, fchown, fchmod, futimens, close; a failure unlinks the file it created).
 *
 * What keeps the order of the entries: a queued file's name is `pending` until its job is done, and
 * an entry that is, or goes through, a pending name waits for every job first (`conflicts`, the
 * readers' `ready()`); links and directory modes are made in finish(), after every job. The handles
 * a job uses are pinned (never closed, so never reused, under it).
 *
 * Memory: ≤ inFlight + 1 batches of batchBytes (reused), and per threadpool thread that ran a job a
 * libdeflate decompressor and a buffer the size of the largest file it decoded (≤ the small-entry
 * limit, 1 MiB).
 */
import util from 'node:util';
import type { ExtractRoot } from './extract-root.ts';
import { WF_BAD_CRC, WF_BAD_DATA, WF_BAD_SIZE, WF_DIR_IN_WAY, WF_NOT_RUN, WF_SLOTS, type NativeDeflate } from './native-deflate.ts';

export interface WriteBatchOptions {
  /** Batches being written at once (default 3: the threadpool's 4 threads less one for reads). */
  inFlight?: number;
  /** Bytes of file data (compressed, for zip) per batch (default 1 MiB: a small entry always fits). */
  batchBytes?: number;
  /** Files per batch (default 32). */
  batchFiles?: number;
}

export interface BatchFile {
  rel: string;
  /** The entry's name in the archive, for errors. */
  entry: string;
  dirFd: number;
  base: string;
  mode: number;
  chmod: boolean;
  atimeS: number;
  mtimeMs: number;
  /** 0: `data` is the file; 8: raw deflate of `size` bytes. */
  method: 0 | 8;
  size: number;
  /** Expected CRC-32, or -1 (tar: zstd checks its frames). */
  crc: number;
  /** Owner to fchown to before the mode is set, or -1 each: none (owners.ts decides). */
  uid: number;
  gid: number;
}

/** Turns a failed status into the error the extraction reports. */
export type BatchError = (file: BatchFile, status: number, decoded: number) => Error;

interface Batch {
  buf: Buffer;
  bytes: number;
  meta: Float64Array;
  results: Int32Array;
  names: string[];
  files: BatchFile[];
}

type WriteFiles = NonNullable<NativeDeflate['writeFiles']>;

export class FileBatches {
  /** Names queued or being written. */
  readonly pending = new Set<string>();
  /** The first failure; every later call throws it. */
  error: Error | null = null;
  private readonly write: WriteFiles;
  private readonly root: ExtractRoot;
  private readonly toError: BatchError;
  private readonly max: number;
  readonly batchBytes: number;
  private readonly batchFiles: number;
  private readonly spare: Batch[] = [];
  private current: Batch | null = null;
  private readonly running = new Set<Promise<void>>();

  constructor(write: WriteFiles, root: ExtractRoot, toError: BatchError, opts: WriteBatchOptions = {}) {
    this.write = write;
    this.root = root;
    this.toError = toError;
    this.max = Math.max(1, opts.inFlight ?? 3);
    this.batchBytes = opts.batchBytes ?? 1 << 20;
    this.batchFiles = Math.max(1, opts.batchFiles ?? 32);
  }

  /** Whether `rel` or one of its parents is a file still being written. */
  conflicts(rel: string): boolean {
    if (this.pending.size === 0) return false;
    if (this.pending.has(rel)) return true;
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) if (this.pending.has(rel.slice(0, i))) return true;
    return false;
  }

  /** Before the entry `rel`: a promise when it must wait (a conflict, or every batch busy). */
  ready(rel: string): Promise<void> | null {
    if (this.error) throw this.error;
    if (this.conflicts(rel)) return this.drain();
    if (this.running.size >= this.max) return Promise.race(this.running);
    return null;
  }

  /** Queues a file (its data is copied); false when it is larger than a batch (write it directly). */
  add(file: BatchFile, data: Uint8Array): boolean {
    if (this.error) throw this.error;
    if (data.length > this.batchBytes) return false;
    let b = this.current;
    if (b && b.bytes + data.length > this.batchBytes) {
      this.submit();
      b = null;
    }
    b ??= this.current = this.spare.pop() ?? this.newBatch();
    const i = b.files.length;
    b.buf.set(data, b.bytes);
    b.bytes += data.length;
    const m = b.meta;
    const o = i * WF_SLOTS;
    m[o] = file.dirFd;
    m[o + 1] = data.length;
    m[o + 2] = file.method;
    m[o + 3] = file.size;
    m[o + 4] = file.crc;
    m[o + 5] = file.mode;
    m[o + 6] = file.chmod ? 1 : 0;
    m[o + 7] = file.atimeS;
    m[o + 8] = file.mtimeMs;
    m[o + 9] = file.uid;
    m[o + 10] = file.gid;
    b.files.push(file);
    b.names.push(file.base);
    this.root.pin(file.dirFd);
    this.pending.add(file.rel);
    if (b.files.length >= this.batchFiles) this.submit();
    return true;
  }

  /** Writes what is queued and waits for every job; throws the first failure. */
  async drain(): Promise<void> {
    this.submit();
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.error) throw this.error;
  }

  /**
   * Writes what is queued (complete, verified files of earlier entries: the synchronous path would
   * have written them too) and waits for every job, whatever happened; before the handles close.
   */
  async settle(): Promise<void> {
    this.submit();
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private newBatch(): Batch {
    return {
      buf: Buffer.allocUnsafe(this.batchBytes),
      bytes: 0,
      meta: new Float64Array(this.batchFiles * WF_SLOTS),
      results: new Int32Array(this.batchFiles * 2),
      names: [],
      files: [],
    };
  }

  private submit(): void {
    const b = this.current;
    this.current = null;
    if (!b || b.files.length === 0) return;
    const n = b.files.length;
    const results = b.results.subarray(0, 2 * n);
    const job = this.write(b.buf.subarray(0, b.bytes), b.meta.subarray(0, n * WF_SLOTS), Buffer.from(`${b.names.join('\0')}\0`), results).then(
      () => this.finished(b, n),
      (err: Error) => {
        this.error ??= err;
        this.finished(b, 0);
      },
    );
    const tracked: Promise<void> = job.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  /** Records the first failure among the batch's first `checked` files and frees the batch. */
  private finished(b: Batch, checked: number): void {
    for (let i = 0; i < checked && this.error === null; i++) {
      const status = b.results[2 * i];
      if (status !== 0 && status !== WF_NOT_RUN) this.error = this.toError(b.files[i], status, b.results[2 * i + 1]);
    }
    for (const f of b.files) {
      this.pending.delete(f.rel);
      this.root.unpin(f.dirFd);
    }
    b.files.length = 0;
    b.names.length = 0;
    b.bytes = 0;
    this.spare.push(b);
  }
}

/** An errno status as Node reports a failed call. */
export function errnoError(status: number, rel: string): Error {
  const code = util.getSystemErrorName(-status);
  return Object.assign(new Error(`${code}: cannot write '${rel}'`), { errno: -status, code, syscall: 'open' });
}

export { WF_BAD_CRC, WF_BAD_DATA, WF_BAD_SIZE, WF_DIR_IN_WAY };
